// A tensor to be written: its header fields plus a callback that streams its bytes, so data never sits in memory whole.
namespace Spectrum.Checkpoints;

/// <summary>
/// <see cref="WriteData"/> must write exactly shape × dtype bytes, little-endian, C order; the writer checks the
/// count and fails (leaving no file behind) otherwise.
/// </summary>
public sealed record TensorToWrite(
    string Name,
    SafetensorsDType DType,
    IReadOnlyList<long> Shape,
    Action<Stream> WriteData)
{
    private const int EncodeChunkElements = 1 << 16;

    /// <summary>Element count, or null when the shape has a negative dimension or its product overflows.</summary>
    public long? TryElementCount() => ElementCountOf(Shape);

    /// <summary>Bytes this tensor occupies, or null when the shape is invalid or sub-byte elements do not fill whole bytes.</summary>
    public long? TryByteLength() =>
        TryElementCount() is long count ? SafetensorsDTypes.TryByteLength(DType, count) : null;

    /// <summary>A tensor whose bytes are already in memory (kept by reference until written).</summary>
    public static TensorToWrite FromBytes(string name, SafetensorsDType dtype, IReadOnlyList<long> shape,
        ReadOnlyMemory<byte> data) =>
        new(name, dtype, shape, stream => stream.Write(data.Span));

    /// <summary>Float values encoded as F32, F16, BF16 or F64 while writing (in chunks, no full copy).</summary>
    public static TensorToWrite FromFloat32(string name, SafetensorsDType dtype, IReadOnlyList<long> shape,
        float[] values)
    {
        RequireFloatValues(name, dtype, shape, values.Length);
        return new TensorToWrite(name, dtype, shape, stream => EncodeInChunks(values, dtype, stream));
    }

    /// <summary>Float values encoded immediately (a span cannot be kept for later), then written.</summary>
    public static TensorToWrite FromFloat32(string name, SafetensorsDType dtype, IReadOnlyList<long> shape,
        ReadOnlySpan<float> values)
    {
        RequireFloatValues(name, dtype, shape, values.Length);
        var encoded = new byte[(long)values.Length * (SafetensorsDTypes.BitsPerElement(dtype) / 8)];
        DTypeEncoder.FromFloat32(values, dtype, encoded);
        return FromBytes(name, dtype, shape, encoded);
    }

    private static void EncodeInChunks(float[] values, SafetensorsDType dtype, Stream stream)
    {
        int bytesPerElement = SafetensorsDTypes.BitsPerElement(dtype) / 8;
        var buffer = new byte[Math.Min(values.Length, EncodeChunkElements) * bytesPerElement];
        for (int start = 0; start < values.Length; start += EncodeChunkElements)
        {
            int count = Math.Min(EncodeChunkElements, values.Length - start);
            var chunk = buffer.AsSpan(0, count * bytesPerElement);
            DTypeEncoder.FromFloat32(values.AsSpan(start, count), dtype, chunk);
            stream.Write(chunk);
        }
    }

    private static void RequireFloatValues(string name, SafetensorsDType dtype, IReadOnlyList<long> shape, int valueCount)
    {
        if (!SafetensorsDTypes.CanDecodeToFloat(dtype))
        {
            throw new ArgumentException(
                $"Tensor '{name}': cannot encode float values as {SafetensorsDTypes.HeaderName(dtype)}; use F32, F16, " +
                "BF16 or F64, or FromBytes for other dtypes.", nameof(dtype));
        }
        long? expected = ElementCountOf(shape);
        if (expected != valueCount)
        {
            throw new ArgumentException(
                $"Tensor '{name}': shape {TensorEntry.FormatShape(shape)} needs {expected?.ToString() ?? "an invalid number of"} " +
                $"values but {valueCount} were given.", nameof(shape));
        }
    }

    private static long? ElementCountOf(IReadOnlyList<long> shape)
    {
        long count = 1;
        foreach (long dimension in shape)
        {
            if (dimension < 0 || (dimension != 0 && count > long.MaxValue / dimension))
            {
                return null;
            }
            count *= dimension;
        }
        return count;
    }
}
