// The JSON-lines metrics file: one object per training step or validation, rewritten from saved history on resume.
using System.Buffers;
using System.Text;
using System.Text.Json;
using Spectrum.Checkpoints;

namespace Spectrum.Training;

internal sealed class MetricsLog(string? path)
{
    private static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false);

    /// <summary>Makes the file hold exactly <paramref name="lines"/> (the history of the state being continued); entries logged after that checkpoint by a crashed run disappear.</summary>
    public void Reset(IReadOnlyList<string> lines)
    {
        if (path is null)
            return;
        string full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        AtomicFile.WriteText(full, writer =>
        {
            foreach (string line in lines)
                writer.WriteLine(line);
        });
    }

    public void Append(string line)
    {
        if (path is not null)
            File.AppendAllText(path, line + "\n", Utf8);
    }

    /// <summary>One compact JSON object; non-finite numbers are written as the strings "NaN", "Infinity", "-Infinity".</summary>
    public static string Entry(params (string Key, object? Value)[] fields)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            foreach (var (key, value) in fields)
            {
                switch (value)
                {
                    case null:
                        writer.WriteNull(key);
                        break;
                    case string text:
                        writer.WriteString(key, text);
                        break;
                    case int i:
                        writer.WriteNumber(key, i);
                        break;
                    case long l:
                        writer.WriteNumber(key, l);
                        break;
                    case double d when double.IsFinite(d):
                        writer.WriteNumber(key, d);
                        break;
                    case double d:
                        writer.WriteString(key, d.ToString(System.Globalization.CultureInfo.InvariantCulture));
                        break;
                    default:
                        throw new ArgumentException($"Metric \"{key}\" has unsupported type {value.GetType().Name}.", nameof(fields));
                }
            }
            writer.WriteEndObject();
        }
        return Utf8.GetString(buffer.WrittenSpan);
    }
}
