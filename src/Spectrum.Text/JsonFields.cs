// Typed access to fields of parsed JSON that fails with a DataFormatException naming the file, line and field path.
using System.Text.Json;

namespace Spectrum.Text;

/// <summary>
/// Reads fields of one JSON document (a JSONL record or a tokenizer file) strictly: wrong kinds are reported, never
/// coerced, because a silently skipped field in training data trains the wrong thing.
/// </summary>
internal readonly struct JsonFields(string filePath, int? lineNumber, string whatToDo)
{
    public string FilePath => filePath;

    public DataFormatException Error(string? field, string expected, string found) =>
        new(filePath, lineNumber, field, expected, found, whatToDo);

    public JsonElement Object(JsonElement element, string field)
    {
        if (element.ValueKind != JsonValueKind.Object)
        {
            throw Error(field, "a JSON object", Describe(element));
        }
        return element;
    }

    public JsonElement Array(JsonElement element, string field)
    {
        if (element.ValueKind != JsonValueKind.Array)
        {
            throw Error(field, "a JSON array", Describe(element));
        }
        return element;
    }

    public string RequiredString(JsonElement parent, string name, string fieldPath, string why)
    {
        if (!parent.TryGetProperty(name, out JsonElement value))
        {
            throw Error(fieldPath, $"a string ({why})", "no such field");
        }
        if (value.ValueKind != JsonValueKind.String)
        {
            throw Error(fieldPath, $"a string ({why})", Describe(value));
        }
        return value.GetString()!;
    }

    /// <summary>Absent and null both mean "not given"; any other non-string kind is an error.</summary>
    public string? OptionalString(JsonElement parent, string name, string fieldPath)
    {
        if (!parent.TryGetProperty(name, out JsonElement value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        if (value.ValueKind != JsonValueKind.String)
        {
            throw Error(fieldPath, "a string or null", Describe(value));
        }
        return value.GetString();
    }

    public bool? OptionalBool(JsonElement parent, string name, string fieldPath)
    {
        if (!parent.TryGetProperty(name, out JsonElement value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        return value.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Error(fieldPath, "true or false", Describe(value)),
        };
    }

    public int Int(JsonElement value, string fieldPath)
    {
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt32(out int result))
        {
            throw Error(fieldPath, "a whole number", Describe(value));
        }
        return result;
    }

    /// <summary>A short, quoted rendering of a value for "found …" (long values are cut so messages stay readable).</summary>
    public static string Describe(JsonElement value)
    {
        const int MaxShown = 60;
        string Shorten(string text) => text.Length <= MaxShown ? text : text[..MaxShown] + "…";
        return value.ValueKind switch
        {
            JsonValueKind.String => $"the string {Shorten(Quote(value.GetString()!))}",
            JsonValueKind.Number => $"the number {Shorten(value.GetRawText())}",
            JsonValueKind.True or JsonValueKind.False => $"the boolean {value.GetRawText()}",
            JsonValueKind.Null => "null",
            JsonValueKind.Undefined => "no such field",
            JsonValueKind.Array => $"an array of {value.GetArrayLength()} items",
            JsonValueKind.Object => $"an object with fields {Shorten(string.Join(", ", value.EnumerateObject().Select(p => p.Name)))}",
            _ => value.ValueKind.ToString(),
        };
    }

    /// <summary>JSON string syntax (quotes, escaped control characters) with every other character as written.</summary>
    public static string Quote(string text) => JsonSerializer.Serialize(text, ReadableStrings);

    private static readonly JsonSerializerOptions ReadableStrings =
        new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Parses a whole JSON file, turning syntax errors into a DataFormatException at the parser's line.</summary>
    public static JsonDocument ParseFile(string path, string whatToDo)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DataFormatException(path, null, null, "a readable file", e.Message, whatToDo, e);
        }
        try
        {
            return JsonDocument.Parse(bytes, new JsonDocumentOptions { AllowTrailingCommas = false, MaxDepth = 256 });
        }
        catch (JsonException e)
        {
            int? line = e.LineNumber is { } zeroBased ? (int)zeroBased + 1 : null;
            throw new DataFormatException(path, line, null, "well-formed JSON", $"a syntax error ({e.Message})",
                whatToDo, e);
        }
    }
}
