// Float32 → bfloat16 bits, round to nearest with ties to even, as LibTorch converts; vectorised for whole spans.
using System.Numerics;
using System.Runtime.InteropServices;

namespace Spectrum.Training;

/// <summary>
/// Hand-written so the kernels that produce bf16 weights (AdamW's master rounding, NF4 dequantisation) can write them
/// in the same pass instead of making a float32 tensor and converting it. Any NaN becomes the quiet NaN 0x7FC0.
/// </summary>
internal static class BFloat16Rounding
{
    public static ushort Round(float value)
    {
        if (float.IsNaN(value))
            return 0x7FC0;
        uint bits = BitConverter.SingleToUInt32Bits(value);
        return (ushort)((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
    }

    /// <summary>Rounds <paramref name="source"/> into <paramref name="destination"/> (same length).</summary>
    public static void Round(ReadOnlySpan<float> source, Span<ushort> destination)
    {
        if (destination.Length != source.Length)
            throw new ArgumentException($"destination holds {destination.Length} values for {source.Length}.", nameof(destination));
        int done = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var words = MemoryMarshal.Cast<float, Vector<uint>>(source);
            var floats = MemoryMarshal.Cast<float, Vector<float>>(source);
            var halves = MemoryMarshal.Cast<ushort, Vector<ushort>>(destination);
            var one = new Vector<uint>(1u);
            var bias = new Vector<uint>(0x7FFFu);
            var quietNaN = new Vector<uint>(0x7FC0u);
            // Two float vectors narrow into one vector of halves.
            for (int k = 0; k < halves.Length && 2 * k + 1 < words.Length; k++)
                halves[k] = Vector.Narrow(Rounded(words[2 * k], floats[2 * k]), Rounded(words[2 * k + 1], floats[2 * k + 1]));
            done = Math.Min(halves.Length, words.Length / 2) * Vector<ushort>.Count;

            Vector<uint> Rounded(Vector<uint> bits, Vector<float> value)
            {
                var roundedBits = Vector.ShiftRightLogical(bits + bias + (Vector.ShiftRightLogical(bits, 16) & one), 16);
                var isNaN = Vector.AsVectorUInt32(~Vector.Equals(value, value));
                return Vector.ConditionalSelect(isNaN, quietNaN, roundedBits);
            }
        }
        for (int e = done; e < source.Length; e++)
            destination[e] = Round(source[e]);
    }
}
