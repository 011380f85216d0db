// What tokenizer_config.json (and the older special_tokens_map.json) say about BOS/EOS/PAD, added tokens and chat template.
using System.Text.Json;

namespace Spectrum.Text;

/// <summary>
/// The parts of Hugging Face's tokenizer_config.json that change how training text is encoded. Every field is optional:
/// a folder with only tokenizer.json or tokenizer.model still loads, with the model's own defaults.
/// </summary>
internal sealed record TokenizerConfig(
    string? BosToken,
    string? EosToken,
    string? PadToken,
    bool? AddBosToken,
    bool? AddEosToken,
    IReadOnlyList<AddedToken> AddedTokens,
    string? ChatTemplate,
    string? BosSource,
    string? EosSource,
    string? PadSource)
{
    public const string FileName = "tokenizer_config.json";
    public const string SpecialTokensMapFileName = "special_tokens_map.json";
    private const string WhatToDo = "Fix the file (it is Hugging Face's tokenizer configuration) or remove it to use the tokenizer's defaults.";

    public static TokenizerConfig Empty { get; } = new(null, null, null, null, null, [], null, null, null, null);

    public static TokenizerConfig Read(string modelFolder)
    {
        string configPath = Path.Combine(modelFolder, FileName);
        string mapPath = Path.Combine(modelFolder, SpecialTokensMapFileName);
        TokenizerConfig config = File.Exists(configPath) ? ReadConfig(configPath) : Empty;
        if (!File.Exists(mapPath))
        {
            return config;
        }
        // Older checkpoints keep the special tokens only in special_tokens_map.json; tokenizer_config.json wins where both say.
        using JsonDocument map = JsonFields.ParseFile(mapPath, WhatToDo);
        var fields = new JsonFields(mapPath, null, WhatToDo);
        JsonElement root = fields.Object(map.RootElement, "(root)");
        string? bos = TokenText(fields, root, "bos_token");
        string? eos = TokenText(fields, root, "eos_token");
        string? pad = TokenText(fields, root, "pad_token");
        return config with
        {
            BosToken = config.BosToken ?? bos,
            BosSource = config.BosToken is null && bos is not null ? mapPath : config.BosSource,
            EosToken = config.EosToken ?? eos,
            EosSource = config.EosToken is null && eos is not null ? mapPath : config.EosSource,
            PadToken = config.PadToken ?? pad,
            PadSource = config.PadToken is null && pad is not null ? mapPath : config.PadSource,
        };
    }

    private static TokenizerConfig ReadConfig(string path)
    {
        using JsonDocument document = JsonFields.ParseFile(path, WhatToDo);
        var fields = new JsonFields(path, null, WhatToDo);
        JsonElement root = fields.Object(document.RootElement, "(root)");

        var added = new List<AddedToken>();
        if (root.TryGetProperty("added_tokens_decoder", out JsonElement decoder) && decoder.ValueKind != JsonValueKind.Null)
        {
            foreach (JsonProperty entry in fields.Object(decoder, "added_tokens_decoder").EnumerateObject())
            {
                string field = $"added_tokens_decoder.{entry.Name}";
                if (!int.TryParse(entry.Name, out int id) || id < 0)
                {
                    throw fields.Error(field, "a key that is a token id (a whole number ≥ 0)", $"the key \"{entry.Name}\"");
                }
                JsonElement token = fields.Object(entry.Value, field);
                string content = fields.RequiredString(token, "content", field + ".content", "the token's text");
                bool special = fields.OptionalBool(token, "special", field + ".special") ?? false;
                added.Add(new AddedToken(content, id, special));
            }
        }

        string? bosToken = TokenText(fields, root, "bos_token");
        string? eosToken = TokenText(fields, root, "eos_token");
        string? padToken = TokenText(fields, root, "pad_token");
        return new TokenizerConfig(
            bosToken, eosToken, padToken,
            fields.OptionalBool(root, "add_bos_token", "add_bos_token"),
            fields.OptionalBool(root, "add_eos_token", "add_eos_token"),
            added,
            ChatTemplateText(fields, root),
            bosToken is null ? null : path, eosToken is null ? null : path, padToken is null ? null : path);
    }

    /// <summary>Special tokens are written either as their text or as an AddedToken object with a "content" field.</summary>
    private static string? TokenText(JsonFields fields, JsonElement root, string name)
    {
        if (!root.TryGetProperty(name, out JsonElement value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        return value.ValueKind switch
        {
            JsonValueKind.String => value.GetString(),
            JsonValueKind.Object => fields.RequiredString(value, "content", name + ".content", "the token's text"),
            _ => throw fields.Error(name, "a token string, an object with \"content\", or null", JsonFields.Describe(value)),
        };
    }

    /// <summary>A single Jinja template, or a list of named ones of which "default" (else the first) is the chat template.</summary>
    private static string? ChatTemplateText(JsonFields fields, JsonElement root)
    {
        if (!root.TryGetProperty("chat_template", out JsonElement value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        if (value.ValueKind == JsonValueKind.String)
        {
            return value.GetString();
        }
        var named = new List<(string Name, string Template)>();
        int index = 0;
        foreach (JsonElement item in fields.Array(value, "chat_template").EnumerateArray())
        {
            string field = $"chat_template[{index++}]";
            fields.Object(item, field);
            named.Add((fields.RequiredString(item, "name", field + ".name", "the template's name"),
                fields.RequiredString(item, "template", field + ".template", "the Jinja template")));
        }
        return named.Count == 0 ? null : named.FirstOrDefault(t => t.Name == "default", named[0]).Template;
    }
}
