// Typed, strict access to the keys of a Hugging Face JSON config file, with errors that name the file, the key and what was expected.
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Spectrum.Checkpoints;

/// <summary>Typed access to one JSON object's keys; JSON null counts as absent for optional keys.</summary>
internal sealed class JsonConfigReader(JsonObject json, string sourcePath, string keyPrefix = "")
{
    /// <summary>The file's text as one JSON object (duplicate keys and comments refused).</summary>
    public static JsonObject ParseObject(string json, string sourcePath)
    {
        JsonNode? node;
        try
        {
            node = JsonNode.Parse(json, nodeOptions: null,
                new JsonDocumentOptions { AllowDuplicateProperties = false, CommentHandling = JsonCommentHandling.Disallow });
        }
        catch (JsonException syntax)
        {
            throw new CheckpointException(CheckpointError.ConfigInvalid, sourcePath, null,
                $"{sourcePath}: not valid JSON at line {syntax.LineNumber + 1}, byte {syntax.BytePositionInLine + 1} " +
                $"of that line ({syntax.Message}). Fix or re-download {Path.GetFileName(sourcePath)}.", syntax);
        }
        if (node is not JsonObject root)
        {
            throw new CheckpointException(CheckpointError.ConfigInvalid, sourcePath, null,
                $"{sourcePath}: expected a JSON object; found {node?.GetValueKind().ToString() ?? "null"}. Fix or " +
                $"re-download {Path.GetFileName(sourcePath)}.");
        }
        return root;
    }

    public string RequiredString(string key) =>
        OptionalString(key) ?? throw Invalid(key, "a string", "nothing (missing or null)");

    public string? OptionalString(string key) =>
        Value(key, JsonValueKind.String, "a string") is { } node ? node.GetValue<string>() : null;

    public int RequiredPositiveInt(string key) =>
        OptionalPositiveInt(key) ?? throw Invalid(key, "a positive integer", "nothing (missing or null)");

    public int? OptionalPositiveInt(string key)
    {
        if (Value(key, JsonValueKind.Number, "a positive integer") is not { } node)
        {
            return null;
        }
        if (node.AsValue().TryGetValue(out int value) && value > 0)
        {
            return value;
        }
        throw Invalid(key, "a positive integer", node.ToJsonString());
    }

    /// <summary>0 or more; null when absent.</summary>
    public int? OptionalNonNegativeInt(string key)
    {
        if (Value(key, JsonValueKind.Number, "an integer ≥ 0") is not { } node)
        {
            return null;
        }
        if (node.AsValue().TryGetValue(out int value) && value >= 0)
        {
            return value;
        }
        throw Invalid(key, "an integer ≥ 0", node.ToJsonString());
    }

    /// <summary>A token id or a list of them (as eos_token_id may be); null when absent.</summary>
    public IReadOnlyList<int>? OptionalIds(string key)
    {
        var node = json[key];
        if (node is null)
        {
            return null;
        }
        static int? Id(JsonNode? item) => item is JsonValue value && value.TryGetValue(out int id) && id >= 0 ? id : null;
        if (Id(node) is { } single)
        {
            return [single];
        }
        if (node is JsonArray array && array.All(item => Id(item) is not null))
        {
            return array.Select(item => Id(item)!.Value).ToArray();
        }
        throw Invalid(key, "a token id (an integer ≥ 0) or a list of them", node.ToJsonString());
    }

    public double? OptionalDouble(string key) =>
        Value(key, JsonValueKind.Number, "a number") is { } node ? node.GetValue<double>() : null;

    public bool? OptionalBool(string key)
    {
        var node = json[key];
        if (node is null)
        {
            return null;
        }
        return node.GetValueKind() switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Invalid(key, "true or false", node.ToJsonString()),
        };
    }

    public JsonObject? OptionalObject(string key) => json[key] switch
    {
        null => null,
        JsonObject found => found,
        var other => throw Invalid(key, "an object or null", other.ToJsonString()),
    };

    public IReadOnlyList<string>? OptionalStringArray(string key)
    {
        var node = json[key];
        if (node is null)
        {
            return null;
        }
        if (node is JsonArray array && array.All(item => item?.GetValueKind() == JsonValueKind.String))
        {
            return array.Select(item => item!.GetValue<string>()).ToArray();
        }
        throw Invalid(key, "an array of strings", node.ToJsonString());
    }

    public CheckpointException Invalid(string key, string expected, string found) =>
        new(CheckpointError.ConfigInvalid, sourcePath, null,
            $"{sourcePath}: key \"{keyPrefix}{key}\" must be {expected}; found {found}. Fix {Path.GetFileName(sourcePath)} so " +
            "it matches the model's Hugging Face files.");

    private JsonNode? Value(string key, JsonValueKind kind, string expected)
    {
        var node = json[key];
        if (node is null)
        {
            return null;
        }
        if (node.GetValueKind() != kind)
        {
            throw Invalid(key, expected, node.ToJsonString());
        }
        return node;
    }
}
