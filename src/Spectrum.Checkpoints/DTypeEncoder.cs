// Turns float32 values into little-endian F32/F16/BF16/F64 tensor bytes, rounding to nearest-even as PyTorch does.
using System.Buffers.Binary;

namespace Spectrum.Checkpoints;

public static class DTypeEncoder
{
    /// <summary>Encodes every source value; <paramref name="destination"/> must be exactly the encoded size.</summary>
    /// <exception cref="ArgumentException">The dtype is not F16/BF16/F32/F64, or the lengths disagree.</exception>
    public static void FromFloat32(ReadOnlySpan<float> source, SafetensorsDType dtype, Span<byte> destination)
    {
        if (!SafetensorsDTypes.CanDecodeToFloat(dtype))
        {
            throw new ArgumentException(
                $"Cannot encode float values as {SafetensorsDTypes.HeaderName(dtype)}; supported: " +
                string.Join(", ", SafetensorsDTypes.DecodableToFloat.Select(SafetensorsDTypes.HeaderName)) + ".",
                nameof(dtype));
        }
        int bytesPerElement = SafetensorsDTypes.BitsPerElement(dtype) / 8;
        if (destination.Length != (long)source.Length * bytesPerElement)
        {
            throw new ArgumentException(
                $"{source.Length} values as {SafetensorsDTypes.HeaderName(dtype)} need " +
                $"{(long)source.Length * bytesPerElement} bytes, but the destination has {destination.Length}.",
                nameof(destination));
        }
        for (int i = 0; i < source.Length; i++)
        {
            var slot = destination[(i * bytesPerElement)..];
            switch (dtype)
            {
                case SafetensorsDType.BF16:
                    BinaryPrimitives.WriteUInt16LittleEndian(slot, ToBFloat16Bits(source[i]));
                    break;
                case SafetensorsDType.F16:
                    BinaryPrimitives.WriteHalfLittleEndian(slot, (Half)source[i]);
                    break;
                case SafetensorsDType.F32:
                    BinaryPrimitives.WriteSingleLittleEndian(slot, source[i]);
                    break;
                default:
                    BinaryPrimitives.WriteDoubleLittleEndian(slot, source[i]);
                    break;
            }
        }
    }

    /// <summary>
    /// Rounds to the nearest BF16, ties to even; overflow becomes infinity. NaNs stay NaN (quieted, sign kept)
    /// because adding the rounding bias could otherwise carry a NaN's payload into an infinity.
    /// </summary>
    public static ushort ToBFloat16Bits(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value))
        {
            return (ushort)((bits >> 16) | 0x0040);
        }
        uint lowestKeptBit = (bits >> 16) & 1;
        return (ushort)((bits + 0x7FFF + lowestKeptBit) >> 16);
    }
}
