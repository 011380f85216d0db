// Reads a JSONL training file, recognising each line's format (text, instruction, messages, ShareGPT) on its own.
using System.Text;
using System.Text.Json;

namespace Spectrum.Text;

/// <summary>
/// Loads training data written one JSON object per line. Each record may use any of the formats (files that mix them
/// are fine), blank lines are skipped, and anything else that is not a complete, well-typed record stops loading with
/// the file, the line and the field: a silently skipped record is data the user thinks they trained on.
/// </summary>
public static class TrainingRecords
{
    private const string WhatToDo =
        "Fix or remove that line. Each line must be one JSON object: {\"text\": …}, {\"instruction\": …, \"input\": …, " +
        "\"output\": …}, {\"messages\": [{\"role\": …, \"content\": …}]} or {\"conversations\": [{\"from\": …, \"value\": …}]}.";

    private static readonly string[] FormatFields = ["text", "instruction", "messages", "conversations"];

    public static IReadOnlyList<TrainingRecord> Load(string path)
    {
        if (!File.Exists(path))
        {
            throw new DataFormatException(path, null, null, "a JSONL file of training records", "no such file",
                "Check the path.");
        }
        var records = new List<TrainingRecord>();
        int lineCount = 0;
        foreach ((int lineNumber, byte[] bytes) in ReadLines(path))
        {
            lineCount = lineNumber;
            // Invalid UTF-8 must stop loading: decoding it to U+FFFD would train on replacement characters.
            if (!System.Text.Unicode.Utf8.IsValid(bytes))
            {
                throw new DataFormatException(path, lineNumber, null, "UTF-8 text", "bytes that are not UTF-8",
                    "Re-save the file as UTF-8.");
            }
            string line = Encoding.UTF8.GetString(bytes);
            if (!string.IsNullOrWhiteSpace(line))
            {
                records.Add(ParseLine(line, path, lineNumber));
            }
        }
        if (records.Count == 0)
        {
            throw new DataFormatException(path, null, null, "at least one record", lineCount == 0 ? "an empty file" : "only blank lines",
                "Point at the file that holds the training data.");
        }
        return records;
    }

    /// <summary>
    /// Lines as bytes, split at '\n' only (a raw newline cannot occur inside a JSON string), with a trailing '\r' and a
    /// leading UTF-8 byte-order mark removed; decoding per line lets an encoding error name its own line.
    /// </summary>
    private static IEnumerable<(int LineNumber, byte[] Bytes)> ReadLines(string path)
    {
        using FileStream stream = File.OpenRead(path);
        var pending = new MemoryStream();
        byte[] buffer = new byte[1 << 16];
        int lineNumber = 0;
        int read;
        while ((read = stream.Read(buffer, 0, buffer.Length)) > 0)
        {
            int start = 0;
            int newline;
            while ((newline = Array.IndexOf(buffer, (byte)'\n', start, read - start)) >= 0)
            {
                pending.Write(buffer, start, newline - start);
                yield return (++lineNumber, TakeLine(pending, lineNumber));
                start = newline + 1;
            }
            pending.Write(buffer, start, read - start);
        }
        if (pending.Length > 0)
        {
            yield return (++lineNumber, TakeLine(pending, lineNumber));
        }
    }

    private static byte[] TakeLine(MemoryStream pending, int lineNumber)
    {
        ReadOnlySpan<byte> line = pending.GetBuffer().AsSpan(0, (int)pending.Length);
        if (lineNumber == 1 && line.StartsWith("\uFEFF"u8))
        {
            line = line[3..];
        }
        if (line.EndsWith("\r"u8))
        {
            line = line[..^1];
        }
        byte[] bytes = line.ToArray();
        pending.SetLength(0);
        return bytes;
    }

    /// <summary>Parses one record; exposed for callers that stream lines from elsewhere.</summary>
    public static TrainingRecord ParseLine(string line, string filePath, int lineNumber)
    {
        var fields = new JsonFields(filePath, lineNumber, WhatToDo);
        using JsonDocument document = ParseJson(line, fields);
        JsonElement root = document.RootElement;
        if (root.ValueKind != JsonValueKind.Object)
        {
            throw fields.Error(null, "a JSON object", JsonFields.Describe(root));
        }
        string[] present = FormatFields.Where(name => root.TryGetProperty(name, out _)).ToArray();
        if (present.Length == 0)
        {
            string found = root.EnumerateObject().Any()
                ? "only the fields " + string.Join(", ", root.EnumerateObject().Select(p => p.Name))
                : "an empty object";
            throw fields.Error(null, "one of the fields text, instruction (with output), messages or conversations", found);
        }
        if (present.Length > 1)
        {
            throw fields.Error(null, "exactly one of text, instruction, messages, conversations (the format must be unambiguous)",
                "all of " + string.Join(", ", present));
        }
        return present[0] switch
        {
            "text" => ParseText(root, fields, filePath, lineNumber),
            "instruction" => new InstructionRecord(
                fields.RequiredString(root, "instruction", "instruction", "the task for the user turn"),
                fields.OptionalString(root, "input", "input"),
                fields.RequiredString(root, "output", "output", "instruction records need the answer in output"),
                filePath, lineNumber),
            "messages" => ParseConversation(root, fields, "messages", "role", "content", ConversationFormat.Messages,
                RoleFromOpenAi, "system, user or assistant", filePath, lineNumber),
            _ => ParseConversation(root, fields, "conversations", "from", "value", ConversationFormat.ShareGpt,
                RoleFromShareGpt, "human, gpt or system", filePath, lineNumber),
        };
    }

    private static JsonDocument ParseJson(string line, JsonFields fields)
    {
        try
        {
            return JsonDocument.Parse(line);
        }
        catch (JsonException e)
        {
            throw fields.Error(null, "one complete JSON object on the line",
                $"invalid JSON at character {e.BytePositionInLine + 1} ({e.Message.Split(" LineNumber:")[0]})");
        }
    }

    private static TextRecord ParseText(JsonElement root, JsonFields fields, string filePath, int lineNumber)
    {
        string text = fields.RequiredString(root, "text", "text", "the document to train on");
        if (string.IsNullOrWhiteSpace(text))
        {
            throw fields.Error("text", "some text", text.Length == 0 ? "an empty string" : "only whitespace");
        }
        return new TextRecord(text, filePath, lineNumber);
    }

    private static ConversationRecord ParseConversation(JsonElement root, JsonFields fields, string listField,
        string roleField, string contentField, ConversationFormat format, Func<string, ChatRole?> toRole,
        string allowedRoles, string filePath, int lineNumber)
    {
        JsonElement list = fields.Array(root.GetProperty(listField), listField);
        if (list.GetArrayLength() == 0)
        {
            throw fields.Error(listField, "at least one message", "an empty array");
        }
        var messages = new List<ChatMessage>();
        int index = 0;
        foreach (JsonElement item in list.EnumerateArray())
        {
            string at = $"{listField}[{index++}]";
            fields.Object(item, at);
            string roleName = fields.RequiredString(item, roleField, $"{at}.{roleField}", $"one of {allowedRoles}");
            ChatRole role = toRole(roleName) ?? throw fields.Error($"{at}.{roleField}", $"one of {allowedRoles}",
                JsonFields.Describe(item.GetProperty(roleField)));
            messages.Add(new ChatMessage(role, fields.RequiredString(item, contentField, $"{at}.{contentField}", "the message text")));
        }
        if (!messages.Any(m => m.Role == ChatRole.Assistant))
        {
            // With the default loss mask only assistant turns are trained, so such a record would teach nothing.
            throw fields.Error(listField, "at least one assistant message",
                "only " + string.Join(", ", messages.Select(m => m.Role.ToString().ToLowerInvariant()).Distinct()) + " messages");
        }
        return new ConversationRecord(messages, format, filePath, lineNumber);
    }

    private static ChatRole? RoleFromOpenAi(string role) => role switch
    {
        "system" => ChatRole.System,
        "user" => ChatRole.User,
        "assistant" => ChatRole.Assistant,
        _ => null,
    };

    private static ChatRole? RoleFromShareGpt(string role) => role switch
    {
        "system" => ChatRole.System,
        "human" => ChatRole.User,
        "gpt" => ChatRole.Assistant,
        _ => null,
    };
}
