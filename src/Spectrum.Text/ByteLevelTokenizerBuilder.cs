// Trains a small byte-level BPE tokenizer on a corpus and writes it as Hugging Face tokenizer files (for offline demos).
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Spectrum.Text;

/// <summary>
/// Writes tokenizer.json (GPT-2 layout: ByteLevel pre-tokenizer with its regex, BPE over the 256 byte symbols, no
/// normalizer, a ByteLevel post-processor) and tokenizer_config.json (ChatML tokens, BOS/EOS/PAD, a ChatML chat template) that
/// <see cref="ModelTokenizer.Load"/> reads. The trainer is the plain greedy algorithm: count adjacent symbol pairs over
/// the corpus's pre-tokenized words, merge the most frequent (ties to the ordinally smallest pair, as
/// tests/reference/make_tokenizer_fixtures.py does), repeat. It recounts every pair each round, which is fine for the
/// demo's corpora of a few hundred kilobytes and a few thousand tokens, not for real-size tokenizer training. Written
/// here because Microsoft.ML.Tokenizers only applies BPE models; it does not train them.
/// </summary>
public static class ByteLevelTokenizerBuilder
{
    public const string EndOfTextToken = "<|endoftext|>";
    public const string ImStartToken = "<|im_start|>";
    public const string ImEndToken = "<|im_end|>";

    /// <summary>Added after the BPE vocabulary, in this order, so the model's own ids are untouched by them.</summary>
    public static IReadOnlyList<string> SpecialTokens { get; } = [EndOfTextToken, ImStartToken, ImEndToken];

    /// <summary>The smallest vocabulary: the 256 byte symbols and the special tokens, no merges.</summary>
    public static int MinimumVocabularySize => 256 + SpecialTokens.Count;

    private const string ChatMlTemplate =
        "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}" +
        "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

    /// <param name="folder">Created if missing; tokenizer.json and tokenizer_config.json there are overwritten.</param>
    /// <param name="corpus">Training texts. Special tokens written in them are cut out before counting, as at encode time.</param>
    /// <param name="vocabularySize">
    /// Total ids including the special tokens (what the model's embedding needs). Fewer when the corpus runs out of pairs
    /// to merge first; <see cref="ModelTokenizer.VocabSize"/> of the loaded folder says how many there are.
    /// </param>
    public static void Write(string folder, IEnumerable<string> corpus, int vocabularySize)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        ArgumentNullException.ThrowIfNull(corpus);
        ArgumentOutOfRangeException.ThrowIfLessThan(vocabularySize, MinimumVocabularySize);

        (List<string> vocabulary, List<(string Left, string Right)> merges) =
            Train(corpus, vocabularySize - SpecialTokens.Count);
        Directory.CreateDirectory(folder);
        File.WriteAllBytes(Path.Combine(folder, HuggingFaceTokenizerFile.FileName), TokenizerJson(vocabulary, merges));
        File.WriteAllBytes(Path.Combine(folder, TokenizerConfig.FileName), TokenizerConfigJson(vocabulary.Count));
    }

    /// <summary>Returns the vocabulary in id order (bytes first, in byte order, then one entry per new merged token).</summary>
    private static (List<string> Vocabulary, List<(string Left, string Right)> Merges) Train(
        IEnumerable<string> corpus, int bpeVocabularySize)
    {
        var vocabulary = new List<string>(bpeVocabularySize);
        for (int b = 0; b < 256; b++)
        {
            vocabulary.Add(ByteLevelAlphabet.Map((byte)b).ToString());
        }
        var known = new HashSet<string>(vocabulary, StringComparer.Ordinal);

        // Each distinct pre-tokenized word once, as its current symbols, with how often the corpus holds it.
        var words = new List<(List<string> Symbols, long Count)>();
        foreach ((string word, long count) in CountWords(corpus).OrderBy(w => w.Key, StringComparer.Ordinal))
        {
            words.Add((word.Select(c => c.ToString()).ToList(), count));
        }

        var merges = new List<(string Left, string Right)>();
        while (vocabulary.Count < bpeVocabularySize)
        {
            var pairCounts = new Dictionary<(string, string), long>();
            foreach ((List<string> symbols, long count) in words)
            {
                for (int i = 0; i + 1 < symbols.Count; i++)
                {
                    pairCounts[(symbols[i], symbols[i + 1])] = pairCounts.GetValueOrDefault((symbols[i], symbols[i + 1])) + count;
                }
            }
            if (pairCounts.Count == 0)
            {
                break;
            }
            (string Left, string Right) best = ("", "");
            long bestCount = 0;
            foreach (((string left, string right), long count) in pairCounts)
            {
                if (count > bestCount || (count == bestCount && ComparePairs((left, right), best) < 0))
                {
                    (best, bestCount) = ((left, right), count);
                }
            }
            merges.Add(best);
            string merged = best.Left + best.Right;
            // Two different splits can build the same string; it keeps its first id, as Hugging Face's trainer does.
            if (known.Add(merged))
            {
                vocabulary.Add(merged);
            }
            foreach ((List<string> symbols, _) in words)
            {
                ApplyMerge(symbols, best.Left, best.Right, merged);
            }
        }
        return (vocabulary, merges);
    }

    private static Dictionary<string, long> CountWords(IEnumerable<string> corpus)
    {
        var steps = new PreTokenizerSteps([new Regex(PreTokenizerSteps.Gpt2Pattern, RegexOptions.CultureInvariant)]);
        var specials = new Regex(string.Join("|", SpecialTokens.Select(Regex.Escape)), RegexOptions.CultureInvariant);
        var counts = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (string text in corpus)
        {
            ArgumentNullException.ThrowIfNull(text, nameof(corpus));
            foreach (string segment in specials.Split(text))
            {
                foreach ((int start, int length) in steps.Split(segment))
                {
                    string word = ByteLevelAlphabet.Map(segment.Substring(start, length));
                    counts[word] = counts.GetValueOrDefault(word) + 1;
                }
            }
        }
        return counts;
    }

    private static int ComparePairs((string Left, string Right) a, (string Left, string Right) b)
    {
        int left = string.CompareOrdinal(a.Left, b.Left);
        return left != 0 ? left : string.CompareOrdinal(a.Right, b.Right);
    }

    /// <summary>Left to right, non-overlapping: "aaa" with (a, a) becomes "aa a", as the encoder applies a merge.</summary>
    private static void ApplyMerge(List<string> symbols, string left, string right, string merged)
    {
        int write = 0;
        for (int read = 0; read < symbols.Count; read++)
        {
            if (read + 1 < symbols.Count && symbols[read] == left && symbols[read + 1] == right)
            {
                symbols[write++] = merged;
                read++;
            }
            else
            {
                symbols[write++] = symbols[read];
            }
        }
        symbols.RemoveRange(write, symbols.Count - write);
    }

    private static byte[] TokenizerJson(List<string> vocabulary, List<(string Left, string Right)> merges)
    {
        using var stream = new MemoryStream();
        using (var json = NewWriter(stream))
        {
            json.WriteStartObject();
            json.WriteString("version", "1.0");
            json.WriteNull("truncation");
            json.WriteNull("padding");
            json.WriteStartArray("added_tokens");
            for (int i = 0; i < SpecialTokens.Count; i++)
            {
                json.WriteStartObject();
                json.WriteNumber("id", vocabulary.Count + i);
                WriteAddedTokenFields(json, SpecialTokens[i]);
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteNull("normalizer");
            // add_prefix_space false: the loader refuses true, and text is encoded exactly as given.
            json.WriteStartObject("pre_tokenizer");
            json.WriteString("type", "ByteLevel");
            json.WriteBoolean("add_prefix_space", false);
            json.WriteBoolean("trim_offsets", true);
            json.WriteBoolean("use_regex", true);
            json.WriteEndObject();
            json.WriteStartObject("post_processor");
            json.WriteString("type", "ByteLevel");
            json.WriteBoolean("add_prefix_space", true);
            json.WriteBoolean("trim_offsets", false);
            json.WriteBoolean("use_regex", true);
            json.WriteEndObject();
            json.WriteStartObject("decoder");
            json.WriteString("type", "ByteLevel");
            json.WriteBoolean("add_prefix_space", true);
            json.WriteBoolean("trim_offsets", true);
            json.WriteBoolean("use_regex", true);
            json.WriteEndObject();
            json.WriteStartObject("model");
            json.WriteString("type", "BPE");
            json.WriteNull("dropout");
            json.WriteNull("unk_token");
            json.WriteNull("continuing_subword_prefix");
            json.WriteNull("end_of_word_suffix");
            json.WriteBoolean("fuse_unk", false);
            json.WriteBoolean("byte_fallback", false);
            json.WriteBoolean("ignore_merges", false);
            json.WriteStartObject("vocab");
            for (int id = 0; id < vocabulary.Count; id++)
            {
                json.WriteNumber(vocabulary[id], id);
            }
            json.WriteEndObject();
            // The ["left", "right"] form of tokenizers ≥ 0.20; byte-level symbols never contain a space either way.
            json.WriteStartArray("merges");
            foreach ((string left, string right) in merges)
            {
                json.WriteStartArray();
                json.WriteStringValue(left);
                json.WriteStringValue(right);
                json.WriteEndArray();
            }
            json.WriteEndArray();
            json.WriteEndObject();
            json.WriteEndObject();
        }
        return stream.ToArray();
    }

    private static byte[] TokenizerConfigJson(int firstSpecialId)
    {
        using var stream = new MemoryStream();
        using (var json = NewWriter(stream))
        {
            json.WriteStartObject();
            // Neither BOS nor EOS is added by Encode: documents and chat turns end with tokens the caller writes
            // (ChatTemplate ends each turn with <|im_end|>), as Qwen2 and SmolLM tokenizers do.
            json.WriteBoolean("add_bos_token", false);
            json.WriteBoolean("add_eos_token", false);
            json.WriteStartObject("added_tokens_decoder");
            for (int i = 0; i < SpecialTokens.Count; i++)
            {
                json.WriteStartObject((firstSpecialId + i).ToString(System.Globalization.CultureInfo.InvariantCulture));
                WriteAddedTokenFields(json, SpecialTokens[i]);
                json.WriteEndObject();
            }
            json.WriteEndObject();
            json.WriteString("bos_token", EndOfTextToken);
            json.WriteString("eos_token", ImEndToken);
            json.WriteString("pad_token", EndOfTextToken);
            json.WriteString("chat_template", ChatMlTemplate);
            json.WriteBoolean("clean_up_tokenization_spaces", false);
            json.WriteNumber("model_max_length", 2048);
            json.WriteString("tokenizer_class", "PreTrainedTokenizerFast");
            json.WriteEndObject();
        }
        return stream.ToArray();
    }

    private static void WriteAddedTokenFields(Utf8JsonWriter json, string content)
    {
        json.WriteString("content", content);
        json.WriteBoolean("single_word", false);
        json.WriteBoolean("lstrip", false);
        json.WriteBoolean("rstrip", false);
        json.WriteBoolean("normalized", false);
        json.WriteBoolean("special", true);
    }

    // Unescaped non-ASCII keeps the vocabulary readable ('Ġthe', not '\u0120the'), as Hugging Face writes it.
    private static Utf8JsonWriter NewWriter(Stream stream) =>
        new(stream, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
}
