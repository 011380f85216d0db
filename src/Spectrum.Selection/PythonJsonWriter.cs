// Writes JSON text exactly as Python's json.dump(obj, f, indent=4) would, so our files diff cleanly against the reference's.
using System.Globalization;
using System.Text;

namespace Spectrum.Selection;

internal static class PythonJsonWriter
{
    /// <summary>
    /// Python's <c>repr(float)</c>: the shortest digits that round-trip (as .NET's "R"), laid out like Python —
    /// exponent form when the decimal exponent is below −4 or at least 16 (<c>1e-05</c>, <c>1e+16</c>), otherwise
    /// positional with at least one fractional digit (<c>1.0</c>). Non-finite values are the bare literals
    /// <c>Infinity</c>, <c>-Infinity</c> and <c>NaN</c> that json.dump writes and json.load reads.
    /// </summary>
    public static string FormatNumber(double value)
    {
        if (double.IsNaN(value))
            return "NaN";
        if (double.IsPositiveInfinity(value))
            return "Infinity";
        if (double.IsNegativeInfinity(value))
            return "-Infinity";

        string sign = double.IsNegative(value) ? "-" : "";
        (string digits, int pointPosition) = ShortestDigits(Math.Abs(value));
        if (digits == "0")
            return sign + "0.0";

        if (pointPosition > -4 && pointPosition <= 16)
        {
            if (pointPosition <= 0)
                return sign + "0." + new string('0', -pointPosition) + digits;
            if (pointPosition < digits.Length)
                return sign + digits[..pointPosition] + "." + digits[pointPosition..];
            return sign + digits + new string('0', pointPosition - digits.Length) + ".0";
        }

        int exponent = pointPosition - 1;
        string mantissa = digits.Length == 1 ? digits : digits[..1] + "." + digits[1..];
        string exponentText = Math.Abs(exponent).ToString("00", CultureInfo.InvariantCulture);
        return $"{sign}{mantissa}e{(exponent < 0 ? '-' : '+')}{exponentText}";
    }

    /// <summary>
    /// Significant digits without leading or trailing zeros, and where the decimal point goes:
    /// value = 0.d1d2…dn × 10^pointPosition.
    /// </summary>
    private static (string Digits, int PointPosition) ShortestDigits(double nonNegative)
    {
        string text = nonNegative.ToString("R", CultureInfo.InvariantCulture);
        int exponent = 0;
        int e = text.IndexOfAny(['E', 'e']);
        if (e >= 0)
        {
            exponent = int.Parse(text.AsSpan(e + 1), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
            text = text[..e];
        }
        int dot = text.IndexOf('.');
        string integerPart = dot < 0 ? text : text[..dot];
        string fractionPart = dot < 0 ? "" : text[(dot + 1)..];
        string digits = integerPart + fractionPart;
        int pointPosition = integerPart.Length + exponent;
        int leadingZeros = digits.Length - digits.TrimStart('0').Length;
        digits = digits.TrimStart('0').TrimEnd('0');
        pointPosition -= leadingZeros;
        return digits.Length == 0 ? ("0", 1) : (digits, pointPosition);
    }

    /// <summary>A JSON string literal as Python's json.dumps writes it by default (ensure_ascii: non-ASCII as \uXXXX).</summary>
    public static string FormatString(string value)
    {
        var builder = new StringBuilder(value.Length + 2);
        builder.Append('"');
        foreach (char c in value)
        {
            switch (c)
            {
                case '"': builder.Append("\\\""); break;
                case '\\': builder.Append("\\\\"); break;
                case '\n': builder.Append("\\n"); break;
                case '\r': builder.Append("\\r"); break;
                case '\t': builder.Append("\\t"); break;
                case '\b': builder.Append("\\b"); break;
                case '\f': builder.Append("\\f"); break;
                case >= ' ' and <= '~': builder.Append(c); break;
                default: builder.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture)); break;
            }
        }
        return builder.Append('"').ToString();
    }

    /// <summary>
    /// An object as json.dump(indent=4) lays it out: <c>{}</c> when empty, otherwise one member per line, four spaces
    /// per level, <c>","</c> at line ends (no trailing space) and <c>": "</c> after keys, no newline after the final brace.
    /// </summary>
    public static void WriteObject<T>(TextWriter writer, IReadOnlyList<KeyValuePair<string, T>> members,
        Action<TextWriter, T, int> writeValue, int level)
    {
        if (members.Count == 0)
        {
            writer.Write("{}");
            return;
        }
        string inner = new(' ', 4 * (level + 1));
        writer.Write("{\n");
        for (int i = 0; i < members.Count; i++)
        {
            writer.Write(inner);
            writer.Write(FormatString(members[i].Key));
            writer.Write(": ");
            writeValue(writer, members[i].Value, level + 1);
            writer.Write(i + 1 < members.Count ? ",\n" : "\n");
        }
        writer.Write(new string(' ', 4 * level));
        writer.Write('}');
    }
}
