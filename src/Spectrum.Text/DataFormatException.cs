// The single exception type for unusable training data and tokenizer files: what was expected, what was found, where.
namespace Spectrum.Text;

/// <summary>
/// A JSONL data file or a tokenizer file could not be used. <see cref="Exception.Message"/> reads
/// "<c>file:line: field: expected …; found …. what to do</c>"; the parts are also properties so callers and tests can
/// point at the exact place without parsing the message.
/// </summary>
public sealed class DataFormatException : Exception
{
    public DataFormatException(string filePath, int? lineNumber, string? field, string expected, string found,
        string whatToDo, Exception? innerException = null)
        : base(Compose(filePath, lineNumber, field, expected, found, whatToDo), innerException)
    {
        FilePath = filePath;
        LineNumber = lineNumber;
        Field = field;
    }

    /// <summary>The data file, tokenizer file or model folder concerned.</summary>
    public string FilePath { get; }

    /// <summary>1-based line: the JSONL record's line, or where a JSON parser stopped; null when not about one line.</summary>
    public int? LineNumber { get; }

    /// <summary>JSON path of the offending field inside the record or file (<c>messages[2].role</c>), when there is one.</summary>
    public string? Field { get; }

    private static string Compose(string filePath, int? lineNumber, string? field, string expected, string found,
        string whatToDo)
    {
        string place = lineNumber is { } line ? $"{filePath}:{line}" : filePath;
        string subject = field is null ? "" : $" {field}:";
        return $"{place}:{subject} expected {expected}; found {found}. {whatToDo}";
    }
}
