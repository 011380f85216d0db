// Decides, as Axolotl does, which parameter names one `unfrozen_parameters` entry unfreezes.
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Spectrum.Selection;

/// <summary>Rows <c>[Start, End)</c> of a parameter that a pattern's <c>[start:end]</c> suffix unfreezes; End null = to the last row.</summary>
public readonly record struct RowRange(long Start, long? End);

/// <summary>
/// One <c>unfrozen_parameters</c> entry applied like Axolotl's <c>freeze_layers_except</c>: an optional trailing
/// <c>[start:end]</c> row range is split off (it is not part of the name regex), every <c>.</c> not followed by
/// <c>+</c> is escaped, and the result is matched with Python's <c>re.match</c> — anchored at the start of the
/// parameter name only. So <c>model.layers.1.mlp.down_proj</c> unfreezes <c>...down_proj.weight</c> and
/// <c>.bias</c> but not <c>model.layers.10.mlp.down_proj.weight</c>, and <c>^lm_head.weight$</c> exactly one name.
/// </summary>
/// <remarks>
/// Python regex syntax that .NET spells differently is translated outside character classes:
/// <c>(?P&lt;name&gt;</c>, <c>(?P=name)</c>, <c>\Z</c> (Python: very end) and <c>{,n}</c>. Other differences
/// (e.g. Python's <c>(?a)</c>/<c>(?L)</c> flags, which .NET rejects) surface as a pattern error.
/// </remarks>
public sealed class AxolotlPatternMatcher
{
    // The exact suffix rule of Axolotl's LayerNamePattern._parse_pattern; `$` also allows one trailing newline, as in Python.
    private static readonly Regex RangeSuffix = new(@"^(.+)\[([0-9]*)(?::([0-9]*))?\]$", RegexOptions.CultureInvariant);

    private readonly Regex _nameRegex;

    /// <exception cref="ArgumentException">The pattern is empty, its range is invalid, or it is not a valid regex.</exception>
    public AxolotlPatternMatcher(string pattern)
    {
        ArgumentNullException.ThrowIfNull(pattern);
        if (pattern.Length == 0)
            throw new ArgumentException("An unfrozen_parameters pattern must not be empty.", nameof(pattern));
        Pattern = pattern;
        (NamePattern, Range) = SplitRange(pattern);
        EscapedPattern = EscapeDots(NamePattern);
        string dotnetPattern = @"\A(?:" + TranslatePythonSyntax(EscapedPattern) + ")";
        try
        {
            _nameRegex = new Regex(dotnetPattern, RegexOptions.CultureInvariant);
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException(
                $"The unfrozen_parameters pattern \"{pattern}\" is not a valid regular expression once Axolotl escapes its dots " +
                $"(\"{EscapedPattern}\"): {e.Message} Write the module or parameter name, or a valid Python regex.", nameof(pattern), e);
        }
    }

    /// <summary>The entry as written in the YAML.</summary>
    public string Pattern { get; }

    /// <summary>The entry without its row-range suffix: the part matched against names.</summary>
    public string NamePattern { get; }

    /// <summary>The Python regex Axolotl compiles: <see cref="NamePattern"/> with each <c>.</c> not before <c>+</c> escaped.</summary>
    public string EscapedPattern { get; }

    /// <summary>The row range of a <c>[start:end]</c> suffix; null when the whole parameter is unfrozen.</summary>
    public RowRange? Range { get; }

    /// <summary>True when Axolotl would set <c>requires_grad</c> on this parameter because of this pattern.</summary>
    public bool Matches(string parameterName)
    {
        ArgumentNullException.ThrowIfNull(parameterName);
        return _nameRegex.IsMatch(parameterName);
    }

    /// <summary>The names this pattern unfreezes, in input order.</summary>
    public IReadOnlyList<string> MatchingParameters(IEnumerable<string> parameterNames)
    {
        ArgumentNullException.ThrowIfNull(parameterNames);
        return parameterNames.Where(Matches).ToList();
    }

    public override string ToString() => Pattern;

    private static (string Name, RowRange? Range) SplitRange(string pattern)
    {
        var match = RangeSuffix.Match(pattern);
        if (!match.Success)
            return (pattern, null);
        string name = match.Groups[1].Value;
        string startText = match.Groups[2].Value;
        var endGroup = match.Groups[3];
        // "[5]" is row 5 alone; "[]", "[:]", "[3:]", "[:7]" and "[3:7]" are slices, as in Axolotl.
        if (!endGroup.Success && startText.Length > 0)
        {
            long index = ParseRowIndex(startText, pattern);
            return (name, new RowRange(index, index + 1));
        }
        long start = startText.Length > 0 ? ParseRowIndex(startText, pattern) : 0;
        long? end = endGroup.Success && endGroup.Value.Length > 0 ? ParseRowIndex(endGroup.Value, pattern) : null;
        if (end is { } e && start >= e)
            throw new ArgumentException(
                $"The unfrozen_parameters pattern \"{pattern}\" has the row range [{start}:{e}]; expected the end to be greater than the start " +
                "(Axolotl rejects it too). Fix the range or remove it to unfreeze the whole parameter.", nameof(pattern));
        return (name, new RowRange(start, end));
    }

    private static long ParseRowIndex(string digits, string pattern) =>
        long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out long value)
            ? value
            : throw new ArgumentException($"The row index {digits} in the pattern \"{pattern}\" is too large for a tensor dimension.", nameof(pattern));

    /// <summary>Axolotl's <c>re.sub(r"\.(?!\+)", "\\.", pattern)</c>: a plain textual rewrite, even inside classes or after a backslash.</summary>
    internal static string EscapeDots(string pattern)
    {
        var builder = new StringBuilder(pattern.Length + 8);
        for (int i = 0; i < pattern.Length; i++)
        {
            if (pattern[i] == '.' && (i + 1 >= pattern.Length || pattern[i + 1] != '+'))
                builder.Append('\\');
            builder.Append(pattern[i]);
        }
        return builder.ToString();
    }

    private static string TranslatePythonSyntax(string pattern)
    {
        var builder = new StringBuilder(pattern.Length);
        bool inClass = false;
        for (int i = 0; i < pattern.Length; i++)
        {
            char c = pattern[i];
            if (c == '\\' && i + 1 < pattern.Length)
            {
                char next = pattern[i + 1];
                builder.Append(!inClass && next == 'Z' ? @"\z" : $"\\{next}");
                i++;
                continue;
            }
            if (inClass)
            {
                if (c == ']')
                    inClass = false;
                builder.Append(c);
                continue;
            }
            if (c == '[')
            {
                inClass = true;
                builder.Append(c);
                // A ']' right after '[' or '[^' is a literal member, in Python as in .NET.
                if (i + 1 < pattern.Length && pattern[i + 1] == '^')
                    builder.Append(pattern[++i]);
                if (i + 1 < pattern.Length && pattern[i + 1] == ']')
                    builder.Append(pattern[++i]);
                continue;
            }
            if (pattern.AsSpan(i).StartsWith("(?P<"))
            {
                builder.Append("(?<");
                i += 3;
                continue;
            }
            if (pattern.AsSpan(i).StartsWith("(?P="))
            {
                int close = pattern.IndexOf(')', i);
                if (close > i)
                {
                    builder.Append(@"\k<").Append(pattern, i + 4, close - i - 4).Append('>');
                    i = close;
                    continue;
                }
            }
            if (IsOmittedMinimumQuantifier(pattern, i))
            {
                builder.Append("{0");
                continue;
            }
            builder.Append(c);
        }
        return builder.ToString();
    }

    /// <summary>Python reads <c>{,n}</c> as <c>{0,n}</c>; .NET would read it as literal text.</summary>
    private static bool IsOmittedMinimumQuantifier(string pattern, int index)
    {
        if (pattern[index] != '{' || index + 1 >= pattern.Length || pattern[index + 1] != ',')
            return false;
        int i = index + 2;
        while (i < pattern.Length && char.IsAsciiDigit(pattern[i]))
            i++;
        return i < pattern.Length && pattern[i] == '}';
    }
}
