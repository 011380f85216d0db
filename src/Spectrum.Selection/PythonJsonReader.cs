// A strict JSON parser that also accepts Python's bare Infinity, -Infinity and NaN, keeps key order and line numbers.
using System.Globalization;
using System.Text;

namespace Spectrum.Selection;

// System.Text.Json rejects the bare non-finite literals that Python's json module writes into every published scan
// with norm layers, and rewriting tokens outside strings is as much work as parsing; so this is a small
// recursive-descent parser for exactly RFC 8259 plus those three literals (what json.loads accepts by default).
internal abstract record JsonNode(int Line)
{
    public abstract string Describe();
}

internal sealed record JsonObjectNode(IReadOnlyList<JsonMember> Members, int Line) : JsonNode(Line)
{
    public override string Describe() => "an object";
}

internal sealed record JsonMember(string Key, int Line, JsonNode Value);

internal sealed record JsonArrayNode(IReadOnlyList<JsonNode> Items, int Line) : JsonNode(Line)
{
    public override string Describe() => "an array";
}

internal sealed record JsonStringNode(string Value, int Line) : JsonNode(Line)
{
    public override string Describe() => $"the string \"{Value}\"";
}

internal sealed record JsonNumberNode(double Value, string Text, int Line) : JsonNode(Line)
{
    public override string Describe() => $"the number {Text}";
}

/// <summary><c>true</c>, <c>false</c> or <c>null</c>.</summary>
internal sealed record JsonLiteralNode(string Text, int Line) : JsonNode(Line)
{
    public override string Describe() => Text;
}

internal sealed class PythonJsonReader
{
    // Deeper nesting never occurs in scan files; the limit turns hostile input into an error, not a stack overflow.
    private const int MaxDepth = 64;

    private readonly string _text;
    private readonly string _source;
    private int _position;
    private int _line = 1;

    private PythonJsonReader(string text, string source)
    {
        _text = text;
        _source = source;
    }

    /// <exception cref="ScanResultsException">Kind <see cref="ScanResultsErrorKind.MalformedJson"/>, with the line.</exception>
    public static JsonNode Parse(string text, string source)
    {
        var reader = new PythonJsonReader(text, source);
        reader.SkipWhitespace();
        if (reader.AtEnd)
            throw reader.Error("expected a JSON value, found an empty file", "Check that the file was written completely.");
        var root = reader.ParseValue(depth: 0);
        reader.SkipWhitespace();
        if (!reader.AtEnd)
            throw reader.Error($"expected the end of the file after the top-level value, found {reader.DescribeNext()}",
                "Check that the file holds exactly one JSON object (was something appended to it?).");
        return root;
    }

    private bool AtEnd => _position >= _text.Length;

    private JsonNode ParseValue(int depth)
    {
        if (depth > MaxDepth)
            throw Error($"expected at most {MaxDepth} levels of nesting, found more", "Scan files are two or three levels deep; this is not one.");
        if (AtEnd)
            throw Error("expected a value, found the end of the file", "The file looks truncated; rewrite it.");
        char c = _text[_position];
        int line = _line;
        switch (c)
        {
            case '{': return ParseObject(depth);
            case '[': return ParseArray(depth);
            case '"': return new JsonStringNode(ParseString(), line);
            case 'I' when Matches("Infinity"): _position += 8; return new JsonNumberNode(double.PositiveInfinity, "Infinity", line);
            case 'N' when Matches("NaN"): _position += 3; return new JsonNumberNode(double.NaN, "NaN", line);
            case '-' when Matches("-Infinity"): _position += 9; return new JsonNumberNode(double.NegativeInfinity, "-Infinity", line);
            case 't' when Matches("true"): _position += 4; return new JsonLiteralNode("true", line);
            case 'f' when Matches("false"): _position += 5; return new JsonLiteralNode("false", line);
            case 'n' when Matches("null"): _position += 4; return new JsonLiteralNode("null", line);
            case '-' or (>= '0' and <= '9'): return ParseNumber();
            default:
                throw Error($"expected a value (object, array, string, number, true, false, null, Infinity, -Infinity or NaN), found {DescribeNext()}",
                    "Fix the JSON syntax at this line.");
        }
    }

    private JsonObjectNode ParseObject(int depth)
    {
        int line = _line;
        _position++;
        var members = new List<JsonMember>();
        SkipWhitespace();
        if (TryConsume('}'))
            return new JsonObjectNode(members, line);
        while (true)
        {
            SkipWhitespace();
            if (AtEnd || _text[_position] != '"')
                throw Error($"expected a quoted key, found {DescribeNext()}", "JSON keys must be double-quoted strings, with no trailing comma before '}'.");
            int keyLine = _line;
            string key = ParseString();
            SkipWhitespace();
            if (!TryConsume(':'))
                throw Error($"expected ':' after the key \"{key}\", found {DescribeNext()}", "Fix the JSON syntax at this line.");
            SkipWhitespace();
            var value = ParseValue(depth + 1);
            members.Add(new JsonMember(key, keyLine, value));
            SkipWhitespace();
            if (TryConsume('}'))
                return new JsonObjectNode(members, line);
            if (!TryConsume(','))
                throw Error($"expected ',' or '}}' after the value of \"{key}\", found {DescribeNext()}", "The file looks truncated or hand-edited; fix the syntax at this line.");
        }
    }

    private JsonArrayNode ParseArray(int depth)
    {
        int line = _line;
        _position++;
        var items = new List<JsonNode>();
        SkipWhitespace();
        if (TryConsume(']'))
            return new JsonArrayNode(items, line);
        while (true)
        {
            SkipWhitespace();
            items.Add(ParseValue(depth + 1));
            SkipWhitespace();
            if (TryConsume(']'))
                return new JsonArrayNode(items, line);
            if (!TryConsume(','))
                throw Error($"expected ',' or ']' in an array, found {DescribeNext()}", "Fix the JSON syntax at this line.");
        }
    }

    private string ParseString()
    {
        _position++;
        var builder = new StringBuilder();
        while (true)
        {
            if (AtEnd)
                throw Error("expected a closing '\"', found the end of the file", "The file looks truncated; rewrite it.");
            char c = _text[_position++];
            if (c == '"')
                return builder.ToString();
            if (c < 0x20)
                throw Error($"expected no raw control character inside a string, found U+{(int)c:X4}", "Write control characters as \\n, \\t or \\uXXXX escapes.");
            if (c != '\\')
            {
                builder.Append(c);
                continue;
            }
            if (AtEnd)
                throw Error("expected an escape after '\\', found the end of the file", "The file looks truncated; rewrite it.");
            char escape = _text[_position++];
            switch (escape)
            {
                case '"': builder.Append('"'); break;
                case '\\': builder.Append('\\'); break;
                case '/': builder.Append('/'); break;
                case 'b': builder.Append('\b'); break;
                case 'f': builder.Append('\f'); break;
                case 'n': builder.Append('\n'); break;
                case 'r': builder.Append('\r'); break;
                case 't': builder.Append('\t'); break;
                case 'u':
                    if (_position + 4 > _text.Length
                        || !ushort.TryParse(_text.AsSpan(_position, 4), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out ushort code))
                        throw Error("expected four hex digits after \\u", "Fix the escape sequence at this line.");
                    builder.Append((char)code);
                    _position += 4;
                    break;
                default:
                    throw Error($"expected one of the escapes \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX, found \\{escape}", "Fix the escape sequence at this line.");
            }
        }
    }

    private JsonNumberNode ParseNumber()
    {
        int line = _line;
        int start = _position;
        TryConsume('-');
        // A lone leading 0 ends the integer part, so "01" fails at the '1' as an unexpected token, as JSON requires.
        if (!TryConsume('0') && !ConsumeDigits())
            throw Error($"expected a digit in a number, found {DescribeNext()}", "Fix the number at this line.");
        if (TryConsume('.') && !ConsumeDigits())
            throw Error($"expected a digit after the decimal point, found {DescribeNext()}", "Fix the number at this line.");
        if (!AtEnd && _text[_position] is 'e' or 'E')
        {
            _position++;
            if (!AtEnd && _text[_position] is '+' or '-')
                _position++;
            if (!ConsumeDigits())
                throw Error($"expected a digit in the exponent, found {DescribeNext()}", "Fix the number at this line.");
        }
        string text = _text[start.._position];
        // .NET Core 3.0+ parses correctly rounded, so every shortest-round-trip number comes back bit for bit;
        // out-of-range magnitudes become ±Infinity or ±0, as in Python's float().
        double value = double.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture);
        return new JsonNumberNode(value, text, line);
    }

    private bool ConsumeDigits()
    {
        int start = _position;
        while (!AtEnd && char.IsAsciiDigit(_text[_position]))
            _position++;
        return _position > start;
    }

    private bool Matches(string literal) => string.CompareOrdinal(_text, _position, literal, 0, literal.Length) == 0;

    private bool TryConsume(char expected)
    {
        if (AtEnd || _text[_position] != expected)
            return false;
        _position++;
        return true;
    }

    private void SkipWhitespace()
    {
        while (!AtEnd)
        {
            char c = _text[_position];
            if (c == '\n')
                _line++;
            else if (c is not (' ' or '\t' or '\r'))
                return;
            _position++;
        }
    }

    private string DescribeNext()
    {
        if (AtEnd)
            return "the end of the file";
        char c = _text[_position];
        return char.IsControl(c) ? $"U+{(int)c:X4}" : $"'{c}'";
    }

    private ScanResultsException Error(string problem, string remedy) =>
        new(ScanResultsErrorKind.MalformedJson, _source, _line, null, $"Not valid JSON: {problem}. {remedy}");
}
