#!/usr/bin/env python3
"""Independent reference for Spectrum.Text's tokenizers: tiny real tokenizer files and the ids they must produce.

Writes tests/reference/fixtures/tokenizers/:
  sentencepiece-bpe/tokenizer.model + tokenizer_config.json   SentencePiece BPE with byte fallback, trained here by
                                                              Debian's python3-sentencepiece with Llama 2's settings;
                                                              the config adds ChatML tokens after the model's pieces
  sentencepiece-unigram/tokenizer.model                       SentencePiece unigram without byte fallback (unknown
                                                              characters become <unk>), no config: defaults are tested
  sentencepiece-unigram-byte-fallback/tokenizer.model         unigram with byte fallback, which Microsoft.ML.Tokenizers
                                                              2.0.1 encodes wrongly (byte ids shifted by 255): the C#
                                                              loader must refuse it, so no ids are recorded
  byte-level-bpe/tokenizer.json + tokenizer_config.json       GPT-2 style byte-level BPE in Hugging Face's layout
                                                              (Llama 3's split regex, ignore_merges, added special
                                                              tokens, a TemplateProcessing post-processor adding BOS)
  byte-level-bpe-digits/tokenizer.json                        the same vocabulary with SmolLM's pre-tokenizer (digits
                                                              one by one, then GPT-2's ByteLevel regex), merges always
                                                              applied, no config
  expected_ids.json                                           {folder: [{"text", "ids", "decoded"}]}

Not our C# code and not Microsoft.ML.Tokenizers: SentencePiece ids come from Google's own encoder, byte-level ids from
the plain encoder below, written from the algorithm (bytes -> unicode map, regex pre-split, lowest-rank merge first).
The byte-level vocabulary is trained by the small BPE trainer below (most frequent pair first, ties to the smaller
pair), so every file is reproducible from this script alone.

Special tokens written in the text are split out first and each remaining segment is encoded on its own, as Hugging
Face tokenizers do with added tokens (for SentencePiece that is the "legacy" behaviour: each segment gets SentencePiece's
dummy-prefix space).

Run:   /usr/bin/python3 tests/reference/make_tokenizer_fixtures.py           (rewrite the fixtures)
       /usr/bin/python3 tests/reference/make_tokenizer_fixtures.py --check   (regenerate in a temp folder and compare)
Needs Debian's python3-sentencepiece (0.1.97) and python3-regex (for \\p{L} in the pre-tokenizer pattern).
"""
import io, json, os, random, shutil, sys, tempfile

try:
    import regex
    import sentencepiece as spm
except ImportError as missing:
    sys.exit(f"{missing}: install Debian's packages with `apt-get install -y python3-sentencepiece python3-regex`")

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "fixtures", "tokenizers")

# Llama 3's pre-tokenizer split pattern, exactly as its tokenizer.json ships it.
LLAMA3_SPLIT_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                        r"|\s*[\r\n]+|\s+(?!\S)|\s+")
BYTE_LEVEL_MERGES = 320
# Vocabulary entries that no merge builds, as in vocabularies converted from tiktoken (Llama 3): only ignore_merges
# (look the whole pre-token up first) finds them.
WHOLE_WORD_TOKENS = [" xylophone"]
SPM_BPE_VOCAB = 420
SPM_UNIGRAM_VOCAB = 360
SPM_UNIGRAM_NO_BYTES_VOCAB = 150
CHATML_START, CHATML_END = "<|im_start|>", "<|im_end|>"
BYTE_LEVEL_SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", CHATML_START, CHATML_END]
CHATML_JINJA = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
                "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")

# Strings whose ids the C# tokenizers must reproduce: plain words, whitespace runs, digits (Llama 3 groups them by three,
# SentencePiece here splits them one by one), accents, scripts and emoji absent from the corpus (byte fallback), special
# tokens inside text, letters and digits outside the BMP (one code point, two UTF-16 units), and an empty string.
TEST_STRINGS = [
    "Hello world",
    "The quick brown fox jumps over the lazy dog.",
    "  leading and trailing spaces  ",
    "tabs\tand\nnew lines\r\n\r\nhere",
    "many     spaces   between",
    "12345 + 678 = 13023",
    "version 3.14159, year 2024",
    "café naïve façade résumé",
    "Ελληνικά και русский текст",
    "日本語のテキスト",
    "emoji 🦙🚀 and ✓ marks",
    "it's they're we've I'm you'll he'd",
    "def train(model):\n    return model.loss()",
    "SHOUTING AND MiXeD CaSe",
    "word" * 12,
    "Zebra quagga xylophone",
    "\n\n\n",
    "",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n",
    "text <|im_end|>tail",
    "x\U0001D7D79123 \U00020000\U00020001's \U0001D538'd",
]


def corpus_lines():
    """A few kilobytes of English-like text: fixed sentences plus seeded template sentences for volume."""
    fixed = [
        "Spectrum selects the layers with the highest signal to noise ratio and trains only those.",
        "The model reads a prompt, predicts the next token, and learns from its mistakes.",
        "Hello there! How are you today? I'm fine, thanks; and you?",
        "Numbers like 1, 22, 333, 4444 and 55555 appear in tables, dates such as 2023-11-05, and prices of $19.99.",
        "Whitespace matters:   several spaces, a\ttab, and\nline breaks.",
        "def add(a, b):\n    return a + b\n",
        "for i in range(10): print(i * i)",
        "It's a truth universally acknowledged that they'd rather we've finished what you'll start.",
        "The café served crème brûlée to a naïve critic from Zürich.",
        "A quick brown fox jumps over the lazy dog while the cat sleeps in the warm sun.",
        "Training data is stored as JSON lines, one record on each line, with text or messages.",
        "The assistant answers questions clearly and the user asks follow up questions.",
    ]
    subjects = ["the model", "a student", "the teacher", "our team", "the network", "a researcher", "the system"]
    verbs = ["learns", "reads", "writes", "predicts", "computes", "explains", "measures", "trains", "tests"]
    objects = ["the answer", "a sentence", "long documents", "small numbers", "every layer", "the loss",
               "new words", "hidden states", "the gradient", "simple questions"]
    endings = ["quickly.", "with care.", "every day.", "in the morning.", "without errors.", "again and again.",
               "before lunch.", "on a small computer."]
    rng = random.Random(20240611)
    lines = list(fixed)
    for _ in range(260):
        lines.append(" ".join([rng.choice(subjects).capitalize(), rng.choice(verbs), rng.choice(objects),
                               rng.choice(endings)]))
        if rng.random() < 0.3:
            lines.append(f"Item {rng.randint(0, 999)} costs {rng.randint(1, 99)}.{rng.randint(10, 99)} and weighs "
                         f"{rng.randint(1, 5000)} grams.")
    return lines


# ---------------------------------------------------------------------------------------------------------------------
# SentencePiece: trained and applied by Google's library.

def train_sentencepiece(model_type, vocab_size, byte_fallback):
    """Returns the serialized model. Paths never enter the model (iterator in, bytes out) so output is reproducible."""
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus_lines()), model_writer=model, model_type=model_type, vocab_size=vocab_size,
        # Llama 2's trainer settings that change encoding: bytes for unseen characters, digits split, no whitespace
        # folding, identity normalization, unk/bos/eos at 0/1/2 and no pad piece.
        byte_fallback=byte_fallback, split_digits=True, remove_extra_whitespaces=False, normalization_rule_name="identity",
        allow_whitespace_only_pieces=True, character_coverage=1.0, add_dummy_prefix=True,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, num_threads=1, minloglevel=2)
    return model.getvalue()


def split_on_special_tokens(text, specials):
    """[(segment, is_special)] with the longest special token winning at each position, as added tokens are split."""
    if not text:
        return []
    pattern = regex.compile("|".join(regex.escape(s) for s in sorted(specials, key=len, reverse=True)))
    parts, last = [], 0
    for match in pattern.finditer(text):
        if match.start() > last:
            parts.append((text[last:match.start()], False))
        parts.append((match.group(0), True))
        last = match.end()
    if last < len(text):
        parts.append((text[last:], False))
    return parts


def sentencepiece_expectations(model_bytes, specials):
    processor = spm.SentencePieceProcessor(model_proto=model_bytes)
    expected = []
    for text in TEST_STRINGS:
        ids = []
        for segment, is_special in split_on_special_tokens(text, specials):
            ids += [specials[segment]] if is_special else processor.encode(segment)
        decoded = "".join(segment if is_special else processor.decode(processor.encode(segment))
                          for segment, is_special in split_on_special_tokens(text, specials))
        expected.append({"text": text, "ids": ids, "decoded": decoded})
    return expected


# ---------------------------------------------------------------------------------------------------------------------
# Byte-level BPE: a plain trainer and a plain encoder, independent of any tokenizer library.

def bytes_to_unicode():
    """GPT-2's reversible map from the 256 byte values to printable characters (space -> 'Ġ', newline -> 'Ċ')."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    mapping, shifted = {}, 0
    for byte in range(256):
        if byte in printable:
            mapping[byte] = chr(byte)
        else:
            mapping[byte] = chr(256 + shifted)
            shifted += 1
    return mapping


BYTE_TO_CHAR = bytes_to_unicode()
SPLIT_REGEX = regex.compile(LLAMA3_SPLIT_PATTERN)
GPT2_REGEX = regex.compile(r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+")
DIGIT_RUNS = regex.compile(r"\p{N}|[^\p{N}]+")


def llama3_pre_split(segment):
    return SPLIT_REGEX.findall(segment)


def digits_then_gpt2_pre_split(segment):
    """SmolLM's Sequence[Digits(individual_digits), ByteLevel(use_regex)]: each step splits every piece of the last."""
    return [piece for run in DIGIT_RUNS.findall(segment) for piece in GPT2_REGEX.findall(run)]


def to_byte_chars(piece):
    return "".join(BYTE_TO_CHAR[b] for b in piece.encode("utf-8"))


def train_byte_level_bpe():
    """Returns (vocab {token: id}, merges [(left, right)]): bytes in byte order, one token per merge, whole words."""
    word_counts = {}
    for line in corpus_lines():
        for piece in SPLIT_REGEX.findall(line + "\n"):
            word = tuple(to_byte_chars(piece))
            word_counts[word] = word_counts.get(word, 0) + 1
    vocab = {BYTE_TO_CHAR[b]: b for b in range(256)}
    merges = []
    words = dict(word_counts)
    for _ in range(BYTE_LEVEL_MERGES):
        pair_counts = {}
        for word, count in words.items():
            for pair in zip(word, word[1:]):
                pair_counts[pair] = pair_counts.get(pair, 0) + count
        if not pair_counts:
            break
        best = min(pair_counts, key=lambda pair: (-pair_counts[pair], pair))
        merged_token = best[0] + best[1]
        merges.append(best)
        vocab[merged_token] = len(vocab)
        words = {merge_pair(word, best): count for word, count in words.items()}
    for word in WHOLE_WORD_TOKENS:
        vocab[to_byte_chars(word)] = len(vocab)
    return vocab, merges


def merge_pair(word, pair):
    merged, i = [], 0
    while i < len(word):
        if i + 1 < len(word) and (word[i], word[i + 1]) == pair:
            merged.append(word[i] + word[i + 1])
            i += 2
        else:
            merged.append(word[i])
            i += 1
    return tuple(merged)


def byte_level_encode_piece(piece, vocab, ranks, ignore_merges):
    symbols = tuple(to_byte_chars(piece))
    if ignore_merges and "".join(symbols) in vocab:
        return [vocab["".join(symbols)]]
    while len(symbols) > 1:
        ranked = [(ranks[pair], pair) for pair in zip(symbols, symbols[1:]) if pair in ranks]
        if not ranked:
            break
        symbols = merge_pair(symbols, min(ranked)[1])
    return [vocab[s] for s in symbols]


def byte_level_encode(text, vocab, ranks, specials, pre_split, ignore_merges):
    ids = []
    for segment, is_special in split_on_special_tokens(text, specials):
        if is_special:
            ids.append(specials[segment])
        else:
            for piece in pre_split(segment):
                ids += byte_level_encode_piece(piece, vocab, ranks, ignore_merges)
    return ids


def byte_level_decode(ids, vocab, specials):
    char_to_byte = {c: b for b, c in BYTE_TO_CHAR.items()}
    by_id = {i: t for t, i in vocab.items()}
    special_by_id = {i: t for t, i in specials.items()}
    out, pending = [], bytearray()
    for token_id in ids:
        if token_id in special_by_id:
            out.append(pending.decode("utf-8", errors="replace"))
            pending = bytearray()
            out.append(special_by_id[token_id])
        else:
            pending += bytes(char_to_byte[c] for c in by_id[token_id])
    out.append(pending.decode("utf-8", errors="replace"))
    return "".join(out)


def byte_level_tokenizer_json(vocab, merges, specials):
    begin = BYTE_LEVEL_SPECIALS[0]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [{"id": specials[t], "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True} for t in BYTE_LEVEL_SPECIALS],
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": LLAMA3_SPLIT_PATTERN}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
        "post_processor": {"type": "Sequence", "processors": [
            {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
            {"type": "TemplateProcessing",
             "single": [{"SpecialToken": {"id": begin, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
             "pair": [{"SpecialToken": {"id": begin, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                      {"SpecialToken": {"id": begin, "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
             "special_tokens": {begin: {"id": begin, "ids": [specials[begin]], "tokens": [begin]}}}]},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": True,
                  "vocab": vocab, "merges": [f"{a} {b}" for a, b in merges]},
    }


def byte_level_expectations(vocab, merges, specials, pre_split, ignore_merges):
    ranks = {pair: rank for rank, pair in enumerate(merges)}
    expected, ignore_merges_mattered = [], False
    for text in TEST_STRINGS:
        ids = byte_level_encode(text, vocab, ranks, specials, pre_split, ignore_merges)
        ignore_merges_mattered |= ids != byte_level_encode(text, vocab, ranks, specials, pre_split, not ignore_merges)
        expected.append({"text": text, "ids": ids, "decoded": byte_level_decode(ids, vocab, specials)})
    if not ignore_merges_mattered:
        sys.exit("no test string tells ignore_merges on from off: add one containing a word of WHOLE_WORD_TOKENS")
    return expected


# ---------------------------------------------------------------------------------------------------------------------

def write_json(path, value):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        json.dump(value, f, ensure_ascii=False, indent=1)
        f.write("\n")


def generate(out):
    expected = {}

    bpe_folder = os.path.join(out, "sentencepiece-bpe")
    os.makedirs(bpe_folder)
    bpe_model = train_sentencepiece("bpe", SPM_BPE_VOCAB, byte_fallback=True)
    with open(os.path.join(bpe_folder, "tokenizer.model"), "wb") as f:
        f.write(bpe_model)
    piece_count = spm.SentencePieceProcessor(model_proto=bpe_model).get_piece_size()
    # Fine-tuned Llama 2 derivatives add ChatML tokens after the SentencePiece pieces, declared only in this config.
    spm_specials = {"<unk>": 0, "<s>": 1, "</s>": 2, CHATML_START: piece_count, CHATML_END: piece_count + 1}
    write_json(os.path.join(bpe_folder, "tokenizer_config.json"), {
        "add_bos_token": True,
        "add_eos_token": False,
        "added_tokens_decoder": {str(i): {"content": t, "lstrip": False, "normalized": False, "rstrip": False,
                                          "single_word": False, "special": True} for t, i in spm_specials.items()},
        "bos_token": "<s>",
        "eos_token": "</s>",
        "pad_token": None,
        "unk_token": "<unk>",
        "model_max_length": 2048,
        "tokenizer_class": "LlamaTokenizer",
    })
    expected["sentencepiece-bpe"] = sentencepiece_expectations(bpe_model, spm_specials)

    unigram_folder = os.path.join(out, "sentencepiece-unigram")
    os.makedirs(unigram_folder)
    unigram_model = train_sentencepiece("unigram", SPM_UNIGRAM_NO_BYTES_VOCAB, byte_fallback=False)
    with open(os.path.join(unigram_folder, "tokenizer.model"), "wb") as f:
        f.write(unigram_model)
    # Without a config only the model's own control pieces are special.
    expected["sentencepiece-unigram"] = sentencepiece_expectations(unigram_model, {"<unk>": 0, "<s>": 1, "</s>": 2})

    refused_folder = os.path.join(out, "sentencepiece-unigram-byte-fallback")
    os.makedirs(refused_folder)
    with open(os.path.join(refused_folder, "tokenizer.model"), "wb") as f:
        f.write(train_sentencepiece("unigram", SPM_UNIGRAM_VOCAB, byte_fallback=True))

    byte_folder = os.path.join(out, "byte-level-bpe")
    os.makedirs(byte_folder)
    vocab, merges = train_byte_level_bpe()
    specials = {t: len(vocab) + i for i, t in enumerate(BYTE_LEVEL_SPECIALS)}
    write_json(os.path.join(byte_folder, "tokenizer.json"), byte_level_tokenizer_json(vocab, merges, specials))
    write_json(os.path.join(byte_folder, "tokenizer_config.json"), {
        "added_tokens_decoder": {str(i): {"content": t, "lstrip": False, "normalized": False, "rstrip": False,
                                          "single_word": False, "special": True} for t, i in specials.items()},
        "bos_token": BYTE_LEVEL_SPECIALS[0],
        "chat_template": CHATML_JINJA,
        "clean_up_tokenization_spaces": True,
        "eos_token": CHATML_END,
        "pad_token": BYTE_LEVEL_SPECIALS[1],
        "model_max_length": 4096,
        "tokenizer_class": "PreTrainedTokenizerFast",
    })
    expected["byte-level-bpe"] = byte_level_expectations(vocab, merges, specials, llama3_pre_split, True)

    digits_folder = os.path.join(out, "byte-level-bpe-digits")
    os.makedirs(digits_folder)
    digits_json = byte_level_tokenizer_json(vocab, merges, specials)
    digits_json["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Digits", "individual_digits": True},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]}
    digits_json["post_processor"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False,
                                     "use_regex": True}
    digits_json["model"]["ignore_merges"] = False
    write_json(os.path.join(digits_folder, "tokenizer.json"), digits_json)
    expected["byte-level-bpe-digits"] = byte_level_expectations(vocab, merges, specials, digits_then_gpt2_pre_split,
                                                                False)

    write_json(os.path.join(out, "expected_ids.json"), expected)


def compare_folders(regenerated, committed):
    problems = []
    for root, _, files in os.walk(regenerated):
        for name in sorted(files):
            fresh = os.path.join(root, name)
            relative = os.path.relpath(fresh, regenerated)
            kept = os.path.join(committed, relative)
            if not os.path.exists(kept):
                problems.append(f"{relative}: missing from {committed}")
                continue
            with open(fresh, "rb") as a, open(kept, "rb") as b:
                fresh_bytes, kept_bytes = a.read(), b.read()
            if fresh_bytes != kept_bytes:
                at = next((i for i, (x, y) in enumerate(zip(fresh_bytes, kept_bytes)) if x != y),
                          min(len(fresh_bytes), len(kept_bytes)))
                problems.append(f"{relative}: differs from the committed file at byte {at} "
                                f"(regenerated {len(fresh_bytes)} bytes, committed {len(kept_bytes)})")
    for root, _, files in os.walk(committed):
        for name in sorted(files):
            relative = os.path.relpath(os.path.join(root, name), committed)
            if not os.path.exists(os.path.join(regenerated, relative)):
                problems.append(f"{relative}: committed but no longer generated")
    return problems


def main():
    if "--check" in sys.argv[1:]:
        with tempfile.TemporaryDirectory() as temp:
            out = os.path.join(temp, "tokenizers")
            generate(out)
            problems = compare_folders(out, FIXTURE)
        if problems:
            print("tokenizer fixtures are stale; rerun without --check and commit the result:\n  " +
                  "\n  ".join(problems))
            sys.exit(1)
        print(f"tokenizer fixtures match {FIXTURE}")
        return
    if os.path.exists(FIXTURE):
        shutil.rmtree(FIXTURE)
    generate(FIXTURE)
    print(f"wrote {FIXTURE}")


if __name__ == "__main__":
    main()
