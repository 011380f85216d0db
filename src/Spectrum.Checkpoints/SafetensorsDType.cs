// The element types a safetensors header can name, with their header spellings and bit widths.
namespace Spectrum.Checkpoints;

/// <summary>Every dtype the safetensors format defines (header spelling in the comment where it differs).</summary>
public enum SafetensorsDType
{
    Bool,
    U8,
    I8,
    /// <summary>F8_E5M2</summary>
    F8E5M2,
    /// <summary>F8_E4M3</summary>
    F8E4M3,
    /// <summary>F8_E8M0</summary>
    F8E8M0,
    /// <summary>F8_E4M3FNUZ</summary>
    F8E4M3Fnuz,
    /// <summary>F8_E5M2FNUZ</summary>
    F8E5M2Fnuz,
    I16,
    U16,
    F16,
    BF16,
    I32,
    U32,
    F32,
    F64,
    I64,
    U64,
    C64,
    /// <summary>4-bit float (two per byte).</summary>
    F4,
    /// <summary>F6_E2M3: 6-bit float (four per three bytes).</summary>
    F6E2M3,
    /// <summary>F6_E3M2: 6-bit float (four per three bytes).</summary>
    F6E3M2,
}

/// <summary>Header names, sizes and capabilities of <see cref="SafetensorsDType"/> values.</summary>
public static class SafetensorsDTypes
{
    private static readonly (SafetensorsDType DType, string HeaderName, int Bits, bool IsFloat)[] Table =
    [
        (SafetensorsDType.Bool, "BOOL", 8, false),
        (SafetensorsDType.U8, "U8", 8, false),
        (SafetensorsDType.I8, "I8", 8, false),
        (SafetensorsDType.F8E5M2, "F8_E5M2", 8, true),
        (SafetensorsDType.F8E4M3, "F8_E4M3", 8, true),
        (SafetensorsDType.F8E8M0, "F8_E8M0", 8, true),
        (SafetensorsDType.F8E4M3Fnuz, "F8_E4M3FNUZ", 8, true),
        (SafetensorsDType.F8E5M2Fnuz, "F8_E5M2FNUZ", 8, true),
        (SafetensorsDType.I16, "I16", 16, false),
        (SafetensorsDType.U16, "U16", 16, false),
        (SafetensorsDType.F16, "F16", 16, true),
        (SafetensorsDType.BF16, "BF16", 16, true),
        (SafetensorsDType.I32, "I32", 32, false),
        (SafetensorsDType.U32, "U32", 32, false),
        (SafetensorsDType.F32, "F32", 32, true),
        (SafetensorsDType.F64, "F64", 64, true),
        (SafetensorsDType.I64, "I64", 64, false),
        (SafetensorsDType.U64, "U64", 64, false),
        (SafetensorsDType.C64, "C64", 64, true),
        (SafetensorsDType.F4, "F4", 4, true),
        (SafetensorsDType.F6E2M3, "F6_E2M3", 6, true),
        (SafetensorsDType.F6E3M2, "F6_E3M2", 6, true),
    ];

    private static readonly Dictionary<string, SafetensorsDType> ByHeaderName =
        Table.ToDictionary(row => row.HeaderName, row => row.DType, StringComparer.Ordinal);

    /// <summary>Every dtype, in declaration order.</summary>
    public static IReadOnlyList<SafetensorsDType> All { get; } = Table.Select(row => row.DType).ToArray();

    /// <summary>The dtypes <see cref="DTypeDecoder"/> can turn into float32/float64.</summary>
    public static IReadOnlyList<SafetensorsDType> DecodableToFloat { get; } =
        [SafetensorsDType.F16, SafetensorsDType.BF16, SafetensorsDType.F32, SafetensorsDType.F64];

    /// <summary>Header spellings, comma-separated, for error messages.</summary>
    public static string AllHeaderNames { get; } = string.Join(", ", Table.Select(row => row.HeaderName));

    /// <summary>Parses a header spelling such as "BF16" or "F8_E4M3" (case-sensitive, as the format is).</summary>
    /// <exception cref="ArgumentException">The name is not a safetensors dtype.</exception>
    public static SafetensorsDType Parse(string headerName)
    {
        ArgumentNullException.ThrowIfNull(headerName);
        if (TryParse(headerName, out var dtype))
        {
            return dtype;
        }
        throw new ArgumentException(
            $"'{headerName}' is not a safetensors dtype; expected one of {AllHeaderNames} (case-sensitive).",
            nameof(headerName));
    }

    public static bool TryParse(string headerName, out SafetensorsDType dtype) =>
        ByHeaderName.TryGetValue(headerName, out dtype);

    public static string HeaderName(SafetensorsDType dtype) => Row(dtype).HeaderName;

    /// <summary>Bits per element: 4 for F4, 6 for F6_*, otherwise a multiple of 8.</summary>
    public static int BitsPerElement(SafetensorsDType dtype) => Row(dtype).Bits;

    /// <summary>True for real and complex floating-point formats, including the 4/6/8-bit ones.</summary>
    public static bool IsFloatingPoint(SafetensorsDType dtype) => Row(dtype).IsFloat;

    /// <summary>True for F16, BF16, F32 and F64: the dtypes <see cref="DTypeDecoder"/> handles.</summary>
    public static bool CanDecodeToFloat(SafetensorsDType dtype) =>
        dtype is SafetensorsDType.F16 or SafetensorsDType.BF16 or SafetensorsDType.F32 or SafetensorsDType.F64;

    /// <summary>
    /// Bytes that <paramref name="elementCount"/> elements occupy, or null when the count times the bit width
    /// overflows a long or does not end on a byte boundary (the reference rejects both for sub-byte dtypes).
    /// </summary>
    public static long? TryByteLength(SafetensorsDType dtype, long elementCount)
    {
        if (elementCount < 0)
        {
            return null;
        }
        long bits;
        try
        {
            bits = checked(elementCount * BitsPerElement(dtype));
        }
        catch (OverflowException)
        {
            return null;
        }
        return bits % 8 == 0 ? bits / 8 : null;
    }

    private static (SafetensorsDType DType, string HeaderName, int Bits, bool IsFloat) Row(SafetensorsDType dtype)
    {
        int index = (int)dtype;
        if ((uint)index >= (uint)Table.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Not a defined SafetensorsDType value.");
        }
        return Table[index];
    }
}
