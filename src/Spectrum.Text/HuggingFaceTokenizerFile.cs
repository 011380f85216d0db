// Reads Hugging Face's tokenizer.json: added tokens, the post-processor's BOS/EOS, and (for byte-level BPE) the model.
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace Spectrum.Text;

/// <summary>
/// tokenizer.json as Llama 3, SmolLM and Qwen2 ship it: a BPE model over GPT-2's byte alphabet, a pre-tokenizer that
/// splits text by a regex, and added tokens. SentencePiece-style files (Llama 2's Metaspace layout) are recognised so
/// the loader can use tokenizer.model for them instead.
/// </summary>
internal sealed class HuggingFaceTokenizerFile
{
    public const string FileName = "tokenizer.json";
    private const string WhatToDo = "Use the tokenizer.json that came with the model, or fix the field named.";

    private readonly JsonElement _root;
    private readonly JsonFields _fields;

    private HuggingFaceTokenizerFile(string path, JsonElement root)
    {
        Path = path;
        _root = root;
        _fields = new JsonFields(path, null, WhatToDo);
        _fields.Object(root, "(root)");
        AddedTokens = ReadAddedTokens();
        (TemplateBosToken, TemplateEosToken) = ReadTemplateSpecialTokens();
        IsByteLevel = root.TryGetProperty("pre_tokenizer", out JsonElement pre) && MentionsByteLevel(pre);
    }

    public string Path { get; }

    public IReadOnlyList<AddedToken> AddedTokens { get; }

    /// <summary>The special token a TemplateProcessing post-processor puts before the text (Llama 3's BOS), if any.</summary>
    public string? TemplateBosToken { get; }

    /// <summary>The special token a TemplateProcessing post-processor puts after the text, if any.</summary>
    public string? TemplateEosToken { get; }

    public bool IsByteLevel { get; }

    public string ModelDescription =>
        _root.TryGetProperty("model", out JsonElement model) && model.ValueKind == JsonValueKind.Object &&
        model.TryGetProperty("type", out JsonElement type) ? $"model type {type.GetRawText()}" : "no model type";

    public static HuggingFaceTokenizerFile Read(string path)
    {
        using JsonDocument document = JsonFields.ParseFile(path, WhatToDo);
        // Clone detaches the tree from the pooled document, which is disposed before the file object is used.
        return new HuggingFaceTokenizerFile(path, document.RootElement.Clone());
    }

    public ITokenModel CreateByteLevelModel()
    {
        JsonElement model = _fields.Object(Property(_root, "model"), "model");
        string type = _fields.RequiredString(model, "type", "model.type", "the model kind");
        if (type != "BPE")
        {
            throw _fields.Error("model.type", "\"BPE\" (byte-level BPE as Llama 3, SmolLM and Qwen2 ship)", $"\"{type}\"");
        }
        foreach (string affix in new[] { "continuing_subword_prefix", "end_of_word_suffix" })
        {
            if (!string.IsNullOrEmpty(_fields.OptionalString(model, affix, $"model.{affix}")))
            {
                throw _fields.Error($"model.{affix}", "null (byte-level BPE marks word starts with 'Ġ', not affixes)",
                    JsonFields.Describe(model.GetProperty(affix)));
            }
        }

        var vocabulary = new List<KeyValuePair<string, int>>();
        foreach (JsonProperty entry in _fields.Object(Property(model, "vocab"), "model.vocab").EnumerateObject())
        {
            int id = _fields.Int(entry.Value, $"model.vocab[\"{entry.Name}\"]");
            if (id < 0)
            {
                throw _fields.Error($"model.vocab[\"{entry.Name}\"]", "an id ≥ 0", id.ToString());
            }
            vocabulary.Add(new(entry.Name, id));
        }
        if (vocabulary.Count == 0)
        {
            throw _fields.Error("model.vocab", "at least one token", "an empty vocabulary");
        }

        var merges = new List<string>();
        int index = 0;
        foreach (JsonElement merge in _fields.Array(Property(model, "merges"), "model.merges").EnumerateArray())
        {
            merges.Add(ReadMerge(merge, $"model.merges[{index++}]"));
        }

        BpeTokenizer bpe;
        try
        {
            bpe = BpeTokenizer.Create(new BpeOptions(vocabulary) { Merges = merges, ByteLevel = true });
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException)
        {
            throw new DataFormatException(Path, null, "model", "a vocabulary holding every token the merges use and make",
                $"Microsoft.ML.Tokenizers rejecting it ({e.Message})", WhatToDo, e);
        }

        bool ignoreMerges = _fields.OptionalBool(model, "ignore_merges", "model.ignore_merges") ?? false;
        (Func<string, string> normalize, string? normalizationWarning) = ReadNormalizer();
        var steps = new List<Regex>();
        ReadPreTokenizer(Property(_root, "pre_tokenizer"), "pre_tokenizer", steps);
        return new ByteLevelBpeModel(bpe, vocabulary, new PreTokenizerSteps(steps), ignoreMerges, normalize,
            normalizationWarning is null ? [] : [normalizationWarning]);
    }

    private string ReadMerge(JsonElement merge, string field)
    {
        // Older files write "left right"; tokenizers ≥ 0.20 write ["left", "right"]. The library takes the first form.
        if (merge.ValueKind == JsonValueKind.String)
        {
            string text = merge.GetString()!;
            int space = text.IndexOf(' ');
            if (space <= 0 || space == text.Length - 1 || text.IndexOf(' ', space + 1) >= 0)
            {
                throw _fields.Error(field, "two tokens separated by one space", JsonFields.Describe(merge));
            }
            return text;
        }
        if (merge.ValueKind == JsonValueKind.Array && merge.GetArrayLength() == 2 &&
            merge.EnumerateArray().All(part => part.ValueKind == JsonValueKind.String &&
                part.GetString() is { Length: > 0 } s && !s.Contains(' ')))
        {
            return $"{merge[0].GetString()} {merge[1].GetString()}";
        }
        throw _fields.Error(field, "\"left right\" or [\"left\", \"right\"] with space-free, non-empty tokens",
            JsonFields.Describe(merge));
    }

    private (Func<string, string> Normalize, string? Warning) ReadNormalizer()
    {
        var forms = new List<(string Name, NormalizationForm Form)>();
        CollectNormalizationForms(Property(_root, "normalizer"), "normalizer", forms);
        if (forms.Count == 0)
        {
            return (static text => text, null);
        }
        // .NET cannot normalize non-ASCII text when globalization is invariant (as this repository builds): detect
        // that once, say so, and encode text as given, which is identical for text already in the requested form.
        bool normalizationWorks = "e\u0301".Normalize(NormalizationForm.FormC) == "\u00e9";
        if (!normalizationWorks)
        {
            return (static text => text,
                $"{Path}: normalizer asks for {string.Join(", then ", forms.Select(f => f.Name))}, which .NET cannot apply with " +
                "InvariantGlobalization=true; text is encoded as given (the same ids for text already in that form).");
        }
        return (text => forms.Aggregate(text, (current, step) => current.Normalize(step.Form)), null);
    }

    private void CollectNormalizationForms(JsonElement node, string field, List<(string Name, NormalizationForm Form)> forms)
    {
        if (node.ValueKind == JsonValueKind.Null || node.ValueKind == JsonValueKind.Undefined)
        {
            return;
        }
        _fields.Object(node, field);
        string type = _fields.RequiredString(node, "type", field + ".type", "the normalizer kind");
        switch (type)
        {
            case "Sequence":
                int index = 0;
                foreach (JsonElement inner in _fields.Array(Property(node, "normalizers"), field + ".normalizers").EnumerateArray())
                {
                    CollectNormalizationForms(inner, $"{field}.normalizers[{index++}]", forms);
                }
                break;
            case "NFC": forms.Add((type, NormalizationForm.FormC)); break;
            case "NFD": forms.Add((type, NormalizationForm.FormD)); break;
            case "NFKC": forms.Add((type, NormalizationForm.FormKC)); break;
            case "NFKD": forms.Add((type, NormalizationForm.FormKD)); break;
            default:
                throw _fields.Error(field + ".type", "null, NFC, NFD, NFKC, NFKD or a Sequence of them", $"\"{type}\"");
        }
    }

    private void ReadPreTokenizer(JsonElement node, string field, List<Regex> steps)
    {
        _fields.Object(node, field);
        string type = _fields.RequiredString(node, "type", field + ".type", "the pre-tokenizer kind");
        switch (type)
        {
            case "Sequence":
                int index = 0;
                foreach (JsonElement inner in _fields.Array(Property(node, "pretokenizers"), field + ".pretokenizers").EnumerateArray())
                {
                    ReadPreTokenizer(inner, $"{field}.pretokenizers[{index++}]", steps);
                }
                break;
            case "Split":
                string behavior = _fields.RequiredString(node, "behavior", field + ".behavior", "how matches are kept");
                if (behavior != "Isolated")
                {
                    throw _fields.Error(field + ".behavior", "\"Isolated\" (the only split byte-level models use)", $"\"{behavior}\"");
                }
                if (_fields.OptionalBool(node, "invert", field + ".invert") == true)
                {
                    throw _fields.Error(field + ".invert", "false", "true");
                }
                JsonElement pattern = _fields.Object(Property(node, "pattern"), field + ".pattern");
                if (_fields.OptionalString(pattern, "Regex", field + ".pattern.Regex") is { } regex)
                {
                    steps.Add(CompileSplitRegex(regex, field + ".pattern.Regex"));
                }
                else if (_fields.OptionalString(pattern, "String", field + ".pattern.String") is { } literal)
                {
                    steps.Add(CompileSplitRegex(Regex.Escape(literal), field + ".pattern.String"));
                }
                else
                {
                    throw _fields.Error(field + ".pattern", "{\"Regex\": …} or {\"String\": …}", JsonFields.Describe(pattern));
                }
                break;
            case "ByteLevel":
                // Hugging Face's default for a missing add_prefix_space is true, which changes the first word's ids.
                if (_fields.OptionalBool(node, "add_prefix_space", field + ".add_prefix_space") != false)
                {
                    throw _fields.Error(field + ".add_prefix_space",
                        "false (a leading space added to every text is not supported)",
                        node.TryGetProperty("add_prefix_space", out JsonElement given) ? JsonFields.Describe(given) : "no such field (default true)");
                }
                if (_fields.OptionalBool(node, "use_regex", field + ".use_regex") ?? true)
                {
                    steps.Add(CompileSplitRegex(PreTokenizerSteps.Gpt2Pattern, field));
                }
                break;
            case "Digits":
                bool individual = _fields.OptionalBool(node, "individual_digits", field + ".individual_digits") ?? false;
                steps.Add(CompileSplitRegex(individual ? @"\p{N}" : @"\p{N}+", field));
                break;
            default:
                throw _fields.Error(field + ".type", "Sequence, Split, ByteLevel or Digits (the byte-level BPE pre-tokenizers)",
                    $"\"{type}\"");
        }
    }

    private Regex CompileSplitRegex(string pattern, string field)
    {
        // .NET matches UTF-16 code units: letters outside the Basic Multilingual Plane (rare scripts, math letters)
        // are surrogate pairs that \p{L} does not match, so they split like symbols, unlike in the Rust reference.
        try
        {
            return new Regex(pattern, RegexOptions.CultureInvariant | RegexOptions.Compiled);
        }
        catch (ArgumentException e)
        {
            throw new DataFormatException(Path, null, field, "a regular expression .NET can compile",
                $"{JsonFields.Quote(pattern)} ({e.Message})", WhatToDo, e);
        }
    }

    private List<AddedToken> ReadAddedTokens()
    {
        var tokens = new List<AddedToken>();
        if (!_root.TryGetProperty("added_tokens", out JsonElement array) || array.ValueKind == JsonValueKind.Null)
        {
            return tokens;
        }
        int index = 0;
        foreach (JsonElement item in _fields.Array(array, "added_tokens").EnumerateArray())
        {
            string field = $"added_tokens[{index++}]";
            _fields.Object(item, field);
            int id = _fields.Int(Property(item, "id"), field + ".id");
            string content = _fields.RequiredString(item, "content", field + ".content", "the token's text");
            bool special = _fields.OptionalBool(item, "special", field + ".special") ?? false;
            tokens.Add(new AddedToken(content, id, special));
        }
        return tokens;
    }

    private (string? Bos, string? Eos) ReadTemplateSpecialTokens()
    {
        JsonElement? template = FindTemplateProcessing(Property(_root, "post_processor"));
        if (template is not { } processor || !processor.TryGetProperty("single", out JsonElement single) ||
            single.ValueKind != JsonValueKind.Array)
        {
            return (null, null);
        }
        string? bos = null, eos = null;
        bool textSeen = false;
        foreach (JsonElement item in single.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Object)
            {
                continue;
            }
            if (item.TryGetProperty("Sequence", out _))
            {
                textSeen = true;
            }
            else if (item.TryGetProperty("SpecialToken", out JsonElement special) &&
                     special.ValueKind == JsonValueKind.Object &&
                     special.TryGetProperty("id", out JsonElement id) && id.ValueKind == JsonValueKind.String)
            {
                if (textSeen)
                {
                    eos ??= id.GetString();
                }
                else
                {
                    bos ??= id.GetString();
                }
            }
        }
        return (bos, eos);
    }

    private static JsonElement? FindTemplateProcessing(JsonElement node)
    {
        if (node.ValueKind != JsonValueKind.Object || !node.TryGetProperty("type", out JsonElement type))
        {
            return null;
        }
        if (type.ValueEquals("TemplateProcessing"))
        {
            return node;
        }
        if (type.ValueEquals("Sequence") && node.TryGetProperty("processors", out JsonElement processors) &&
            processors.ValueKind == JsonValueKind.Array)
        {
            foreach (JsonElement inner in processors.EnumerateArray())
            {
                if (FindTemplateProcessing(inner) is { } found)
                {
                    return found;
                }
            }
        }
        return null;
    }

    private static bool MentionsByteLevel(JsonElement node) => node.ValueKind switch
    {
        JsonValueKind.Object => node.EnumerateObject().Any(p =>
            (p.Name == "type" && p.Value.ValueEquals("ByteLevel")) || MentionsByteLevel(p.Value)),
        JsonValueKind.Array => node.EnumerateArray().Any(MentionsByteLevel),
        _ => false,
    };

    /// <summary>A missing property reads as Undefined, which the typed readers report as "found no such field".</summary>
    private static JsonElement Property(JsonElement parent, string name) =>
        parent.TryGetProperty(name, out JsonElement value) ? value : default;
}
