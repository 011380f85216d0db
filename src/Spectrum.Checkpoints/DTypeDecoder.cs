// Turns little-endian F16/BF16/F32/F64 tensor bytes into float32 or float64; on the scan's hot path, so vectorised.
using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Spectrum.Checkpoints;

/// <summary>
/// Decoders from raw tensor bytes to floats. NaN and infinity decode as such (checkpoints may legally hold them);
/// F16 results match <see cref="Half"/>'s conversion bit for bit, including quieted NaNs.
/// </summary>
public static class DTypeDecoder
{
    /// <summary>
    /// Decodes <paramref name="destination"/>.Length elements; <paramref name="source"/> must hold exactly that many.
    /// </summary>
    /// <exception cref="ArgumentException">The dtype is not F16/BF16/F32/F64, or the lengths disagree.</exception>
    public static void ToFloat32(ReadOnlySpan<byte> source, SafetensorsDType dtype, Span<float> destination)
    {
        CheckLengths(source, dtype, destination.Length);
        switch (dtype)
        {
            case SafetensorsDType.BF16:
                BFloat16ToSingle(source, destination);
                break;
            case SafetensorsDType.F16:
                HalfToSingle(source, destination);
                break;
            case SafetensorsDType.F32:
                if (BitConverter.IsLittleEndian)
                {
                    source.CopyTo(MemoryMarshal.AsBytes(destination));
                }
                else
                {
                    for (int i = 0; i < destination.Length; i++)
                    {
                        destination[i] = BinaryPrimitives.ReadSingleLittleEndian(source[(i * 4)..]);
                    }
                }
                break;
            default:
                for (int i = 0; i < destination.Length; i++)
                {
                    destination[i] = (float)BinaryPrimitives.ReadDoubleLittleEndian(source[(i * 8)..]);
                }
                break;
        }
    }

    /// <summary>As <see cref="ToFloat32"/>, but to float64 (F64 without rounding).</summary>
    public static void ToFloat64(ReadOnlySpan<byte> source, SafetensorsDType dtype, Span<double> destination)
    {
        CheckLengths(source, dtype, destination.Length);
        for (int i = 0; i < destination.Length; i++)
        {
            destination[i] = dtype switch
            {
                SafetensorsDType.BF16 => BitConverter.UInt32BitsToSingle(
                    (uint)BinaryPrimitives.ReadUInt16LittleEndian(source[(i * 2)..]) << 16),
                SafetensorsDType.F16 => (double)BinaryPrimitives.ReadHalfLittleEndian(source[(i * 2)..]),
                SafetensorsDType.F32 => BinaryPrimitives.ReadSingleLittleEndian(source[(i * 4)..]),
                _ => BinaryPrimitives.ReadDoubleLittleEndian(source[(i * 8)..]),
            };
        }
    }

    private static void CheckLengths(ReadOnlySpan<byte> source, SafetensorsDType dtype, int elementCount)
    {
        if (!SafetensorsDTypes.CanDecodeToFloat(dtype))
        {
            throw new ArgumentException(
                $"Cannot decode dtype {SafetensorsDTypes.HeaderName(dtype)} to float; supported: " +
                string.Join(", ", SafetensorsDTypes.DecodableToFloat.Select(SafetensorsDTypes.HeaderName)) + ".",
                nameof(dtype));
        }
        long expectedBytes = (long)elementCount * (SafetensorsDTypes.BitsPerElement(dtype) / 8);
        if (source.Length != expectedBytes)
        {
            throw new ArgumentException(
                $"Source holds {source.Length} bytes but {elementCount} {SafetensorsDTypes.HeaderName(dtype)} " +
                $"elements need {expectedBytes}; pass a destination with one slot per source element.",
                nameof(source));
        }
    }

    /// <summary>BF16 is the top half of an F32, so widening to 32 bits and shifting left by 16 is exact.</summary>
    private static void BFloat16ToSingle(ReadOnlySpan<byte> source, Span<float> destination)
    {
        int count = destination.Length;
        int i = 0;
        if (BitConverter.IsLittleEndian && Vector128.IsHardwareAccelerated)
        {
            ref ushort input = ref Unsafe.As<byte, ushort>(ref MemoryMarshal.GetReference(source));
            ref uint output = ref Unsafe.As<float, uint>(ref MemoryMarshal.GetReference(destination));
            for (; i <= count - Vector128<ushort>.Count; i += Vector128<ushort>.Count)
            {
                var (lower, upper) = Vector128.Widen(Vector128.LoadUnsafe(ref input, (nuint)i));
                Vector128.ShiftLeft(lower, 16).StoreUnsafe(ref output, (nuint)i);
                Vector128.ShiftLeft(upper, 16).StoreUnsafe(ref output, (nuint)(i + Vector128<uint>.Count));
            }
        }
        for (; i < count; i++)
        {
            destination[i] = BitConverter.UInt32BitsToSingle(
                (uint)BinaryPrimitives.ReadUInt16LittleEndian(source[(i * 2)..]) << 16);
        }
    }

    /// <summary>
    /// F16 → F32 by moving exponent and mantissa into place and rebiasing; subnormals are normalised by one float
    /// subtraction, infinities/NaNs get the full exponent, and NaNs are quieted as <see cref="Half"/> does.
    /// </summary>
    private static void HalfToSingle(ReadOnlySpan<byte> source, Span<float> destination)
    {
        int count = destination.Length;
        int i = 0;
        if (BitConverter.IsLittleEndian && Vector128.IsHardwareAccelerated)
        {
            ref ushort input = ref Unsafe.As<byte, ushort>(ref MemoryMarshal.GetReference(source));
            ref uint output = ref Unsafe.As<float, uint>(ref MemoryMarshal.GetReference(destination));
            for (; i <= count - Vector128<ushort>.Count; i += Vector128<ushort>.Count)
            {
                var (lower, upper) = Vector128.Widen(Vector128.LoadUnsafe(ref input, (nuint)i));
                HalfBitsToSingleBits(lower).StoreUnsafe(ref output, (nuint)i);
                HalfBitsToSingleBits(upper).StoreUnsafe(ref output, (nuint)(i + Vector128<uint>.Count));
            }
        }
        for (; i < count; i++)
        {
            destination[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(source[(i * 2)..]);
        }
    }

    private static Vector128<uint> HalfBitsToSingleBits(Vector128<uint> half)
    {
        var exponentMask = Vector128.Create(0x7C00u << 13);
        var magnitude = Vector128.ShiftLeft(half & Vector128.Create(0x7FFFu), 13);
        var exponent = magnitude & exponentMask;
        var rebiased = magnitude + Vector128.Create((127u - 15u) << 23);

        // Inf/NaN: F16 exponent 31 must become F32 exponent 255.
        var isInfOrNaN = Vector128.Equals(exponent, exponentMask);
        var infOrNaN = rebiased + Vector128.Create((128u - 16u) << 23);
        var isNaN = isInfOrNaN & ~Vector128.Equals(magnitude & Vector128.Create(0x3FFu << 13), Vector128<uint>.Zero);
        infOrNaN |= isNaN & Vector128.Create(0x0040_0000u);

        // Zero/subnormal: treat the mantissa as a float with exponent 2^-14 and subtract the implicit 1.
        var isSubnormal = Vector128.Equals(exponent, Vector128<uint>.Zero);
        var subnormal = (rebiased + Vector128.Create(1u << 23)).AsSingle() - Vector128.Create(113u << 23).AsSingle();

        var result = Vector128.ConditionalSelect(isInfOrNaN, infOrNaN, rebiased);
        result = Vector128.ConditionalSelect(isSubnormal, subnormal.AsUInt32(), result);
        return result | Vector128.ShiftLeft(half & Vector128.Create(0x8000u), 16);
    }
}
