// One tensor as a safetensors header describes it: name, dtype, shape and where its bytes lie.
namespace Spectrum.Checkpoints;

/// <summary>
/// A validated header entry. <see cref="DataBegin"/>/<see cref="DataEnd"/> are offsets into the data buffer
/// (end exclusive), exactly as in the header; the buffer itself starts at
/// <see cref="SafetensorsFile.DataBufferOffset"/> in <see cref="FilePath"/>.
/// Equality compares the shape element by element, so entries read twice compare equal.
/// </summary>
public sealed record TensorEntry(
    string Name,
    SafetensorsDType DType,
    IReadOnlyList<long> Shape,
    long DataBegin,
    long DataEnd,
    string FilePath)
{
    /// <summary>Product of the dimensions; 1 for a rank-0 (scalar) tensor, 0 when any dimension is 0.</summary>
    public long ElementCount
    {
        get
        {
            long count = 1;
            foreach (long dimension in Shape)
            {
                count = checked(count * dimension);
            }
            return count;
        }
    }

    public long ByteLength => DataEnd - DataBegin;

    public int Rank => Shape.Count;

    /// <summary>Shape as the header writes it, e.g. "[4096, 128]" or "[]" for a scalar.</summary>
    public string ShapeText => FormatShape(Shape);

    public bool Equals(TensorEntry? other) =>
        other is not null
        && Name == other.Name
        && DType == other.DType
        && Shape.SequenceEqual(other.Shape)
        && DataBegin == other.DataBegin
        && DataEnd == other.DataEnd
        && FilePath == other.FilePath;

    public override int GetHashCode() => HashCode.Combine(Name, DType, Shape.Count, DataBegin, DataEnd, FilePath);

    public override string ToString() =>
        $"{Name} {SafetensorsDTypes.HeaderName(DType)} {ShapeText} bytes [{DataBegin}, {DataEnd}) in {FilePath}";

    public static string FormatShape(IEnumerable<long> shape) => "[" + string.Join(", ", shape) + "]";
}
