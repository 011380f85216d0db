#!/usr/bin/env node
// Encodes and decodes with Hugging Face's tokenizers library (the Rust core behind transformers' fast tokenizers), for the C# tests to compare against.
//
// Usage: node encode.js REQUEST.json   (install once with `npm ci` in this folder, as .ci/run does)
// REQUEST: {"folder": a folder with tokenizer.json (and optionally tokenizer_config.json),
//           "texts": [...], "add_special_tokens": bool, "decode": [[id, ...], ...]}
// Prints:  {"encoded": [[id, ...] per text], "decoded": [text per id list in "decode"], "vocab_size": n}
//
// Tokens that tokenizer_config.json's added_tokens_decoder lists and tokenizer.json lacks are added first, as
// transformers' PreTrainedTokenizerFast does when it loads a folder.
'use strict';
const fs = require('fs');
const path = require('path');
const { Tokenizer } = require('tokenizers');

async function main() {
  const request = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const tokenizer = Tokenizer.fromFile(path.join(request.folder, 'tokenizer.json'));
  const configPath = path.join(request.folder, 'tokenizer_config.json');
  if (fs.existsSync(configPath)) {
    const config = JSON.parse(fs.readFileSync(configPath, 'utf8'));
    const missing = Object.values(config.added_tokens_decoder || {})
      .filter(token => tokenizer.tokenToId(token.content) == null);
    const special = missing.filter(token => token.special).map(token => token.content);
    if (special.length > 0) tokenizer.addSpecialTokens(special);
    const plain = missing.filter(token => !token.special).map(token => token.content);
    if (plain.length > 0) tokenizer.addTokens(plain);
  }
  const encoded = [];
  for (const text of request.texts || []) {
    const encoding = await tokenizer.encode(text, null, { addSpecialTokens: !!request.add_special_tokens });
    encoded.push(encoding.getIds());
  }
  const decoded = [];
  for (const ids of request.decode || []) {
    decoded.push(await tokenizer.decode(ids, false));
  }
  process.stdout.write(JSON.stringify({ encoded, decoded, vocab_size: tokenizer.getVocabSize(true) }));
}

main().catch(error => {
  process.stderr.write(String(error && error.stack || error) + '\n');
  process.exit(1);
});
