// The single exception type for unusable scan-result files (reference JSON) and Axolotl YAML, with a kind to branch on.
namespace Spectrum.Selection;

/// <summary>One value per way a scan-result or YAML file can be unusable, so callers and tests can tell them apart.</summary>
public enum ScanResultsErrorKind
{
    FileNotFound,
    /// <summary>The file exists but could not be read (permissions, I/O error, not valid UTF-8).</summary>
    FileUnreadable,
    /// <summary>Not well-formed JSON, even allowing Python's bare <c>Infinity</c>, <c>-Infinity</c> and <c>NaN</c>.</summary>
    MalformedJson,
    /// <summary>Well-formed JSON, but neither the reference's flat nor its sorted layout.</summary>
    UnrecognizedLayout,
    /// <summary>One entry breaks the detected layout (missing <c>snr</c>, a string where a number belongs, ...).</summary>
    InvalidEntry,
    /// <summary>The same module (or, in the sorted layout, type) appears twice.</summary>
    DuplicateModule,
    /// <summary>Not well-formed YAML.</summary>
    MalformedYaml,
    /// <summary>The YAML has no usable <c>unfrozen_parameters</c> list.</summary>
    MissingUnfrozenParameters,
    /// <summary>An <c>unfrozen_parameters</c> entry is not a pattern Axolotl could compile.</summary>
    InvalidPattern,
}

/// <summary>
/// A scan-result JSON or Axolotl YAML file could not be used. <see cref="Exception.Message"/> starts with
/// <c>file:line</c> and says what was expected, what was found and what to do; <see cref="Kind"/> lets code react.
/// </summary>
public sealed class ScanResultsException : Exception
{
    public ScanResultsException(ScanResultsErrorKind kind, string filePath, int? line, string? key, string message,
        Exception? innerException = null)
        : base(Locate(filePath, line, key) + message, innerException)
    {
        Kind = kind;
        FilePath = filePath;
        Line = line;
        Key = key;
    }

    public ScanResultsErrorKind Kind { get; }

    /// <summary>The file (or, for text parsed in memory, the source name the caller gave).</summary>
    public string FilePath { get; }

    /// <summary>1-based line of the offending text, when the problem is at one place in the file.</summary>
    public int? Line { get; }

    /// <summary>The JSON key (module or type name) or YAML key concerned, when there is one.</summary>
    public string? Key { get; }

    private static string Locate(string filePath, int? line, string? key)
    {
        string where = line is { } l ? $"{filePath}:{l}" : filePath;
        return key is null ? $"{where}: " : $"{where}: at key \"{key}\": ";
    }
}
