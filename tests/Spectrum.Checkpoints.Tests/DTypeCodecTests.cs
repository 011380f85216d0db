// Decoding and encoding of F16/BF16/F32/F64 against values computed independently (bit arithmetic, System.Half).
using System.Buffers.Binary;
using Spectrum.Checkpoints.Tests.TestSupport;

namespace Spectrum.Checkpoints.Tests;

public sealed class DTypeCodecTests
{
    /// <summary>BF16 value from its fields: (-1)^s × 2^(e-127) × (1 + m/128), or 2^-126 × m/128 when e = 0.</summary>
    private static double BFloat16ByDefinition(ushort bits)
    {
        int sign = bits >> 15, exponent = (bits >> 7) & 0xFF, mantissa = bits & 0x7F;
        double magnitude = exponent switch
        {
            0 => Math.ScaleB(mantissa / 128.0, -126),
            0xFF => mantissa == 0 ? double.PositiveInfinity : double.NaN,
            _ => Math.ScaleB(1 + mantissa / 128.0, exponent - 127),
        };
        return sign == 1 ? -magnitude : magnitude;
    }

    [Fact]
    public void EveryBFloat16BitPatternDecodesToItsDefinedValue()
    {
        var bits = Enumerable.Range(0, 65536).Select(value => (ushort)value).ToArray();
        var decoded = new float[bits.Length];
        DTypeDecoder.ToFloat32(SafetensorsBytes.UInt16(bits), SafetensorsDType.BF16, decoded);

        for (int i = 0; i < bits.Length; i++)
        {
            double expected = BFloat16ByDefinition(bits[i]);
            bool same = double.IsNaN(expected) ? float.IsNaN(decoded[i]) : decoded[i] == expected
                && float.IsNegative(decoded[i]) == double.IsNegative(expected);
            Assert.True(same, $"BF16 0x{bits[i]:X4}: expected {expected}, decoded {decoded[i]}");
        }
    }

    [Fact]
    public void EveryHalfBitPatternDecodesExactlyAsSystemHalfConverts()
    {
        var bits = Enumerable.Range(0, 65536).Select(value => (ushort)value).ToArray();
        var decoded = new float[bits.Length];
        DTypeDecoder.ToFloat32(SafetensorsBytes.UInt16(bits), SafetensorsDType.F16, decoded);

        for (int i = 0; i < bits.Length; i++)
        {
            float expected = (float)BitConverter.UInt16BitsToHalf(bits[i]);
            Assert.True(BitConverter.SingleToUInt32Bits(expected) == BitConverter.SingleToUInt32Bits(decoded[i]),
                $"F16 0x{bits[i]:X4}: System.Half gives 0x{BitConverter.SingleToUInt32Bits(expected):X8}, " +
                $"decoder gives 0x{BitConverter.SingleToUInt32Bits(decoded[i]):X8}");
        }
    }

    [Fact]
    public void HalfSubnormalsAndExtremesDecodeToKnownValues()
    {
        // 0x0001: smallest subnormal 2^-24; 0x03FF: largest subnormal; 0x7BFF: 65504; 0x7C00: +inf.
        var decoded = new float[5];
        DTypeDecoder.ToFloat32(SafetensorsBytes.UInt16(0x0001, 0x03FF, 0x7BFF, 0x7C00, 0xFE00), SafetensorsDType.F16,
            decoded);

        Assert.Equal(MathF.ScaleB(1, -24), decoded[0]);
        Assert.Equal(1023 * MathF.ScaleB(1, -24), decoded[1]);
        Assert.Equal(65504f, decoded[2]);
        Assert.Equal(float.PositiveInfinity, decoded[3]);
        Assert.True(float.IsNaN(decoded[4]) && float.IsNegative(decoded[4]));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(8)]
    [InlineData(9)]
    [InlineData(17)]
    public void VectorisedAndTailPathsAgreeForAnyLengthAndAlignment(int count)
    {
        var random = new Random(count);
        var bits = Enumerable.Range(0, count).Select(_ => (ushort)random.Next(65536)).ToArray();
        // One leading byte makes the source misaligned for ushort reads.
        byte[] shifted = [0, .. SafetensorsBytes.UInt16(bits)];
        foreach (var dtype in new[] { SafetensorsDType.BF16, SafetensorsDType.F16 })
        {
            var decoded = new float[count];
            DTypeDecoder.ToFloat32(shifted.AsSpan(1), dtype, decoded);
            for (int i = 0; i < count; i++)
            {
                float expected = dtype == SafetensorsDType.F16
                    ? (float)BitConverter.UInt16BitsToHalf(bits[i])
                    : BitConverter.UInt32BitsToSingle((uint)bits[i] << 16);
                Assert.Equal(BitConverter.SingleToUInt32Bits(expected), BitConverter.SingleToUInt32Bits(decoded[i]));
            }
        }
    }

    [Fact]
    public void Float32AndFloat64DecodeIncludingSpecialValues()
    {
        float[] singles = [1.5f, float.NaN, float.NegativeInfinity, float.Epsilon, -0f];
        var decodedSingles = new float[singles.Length];
        DTypeDecoder.ToFloat32(SafetensorsBytes.Float32(singles), SafetensorsDType.F32, decodedSingles);
        Assert.Equal(singles.Select(BitConverter.SingleToUInt32Bits), decodedSingles.Select(BitConverter.SingleToUInt32Bits));

        double[] doubles = [1e300, double.Epsilon, double.NaN, -2.5, 1.0 / 3];
        var bytes = new byte[doubles.Length * 8];
        for (int i = 0; i < doubles.Length; i++)
        {
            BinaryPrimitives.WriteDoubleLittleEndian(bytes.AsSpan(i * 8), doubles[i]);
        }
        var asDouble = new double[doubles.Length];
        DTypeDecoder.ToFloat64(bytes, SafetensorsDType.F64, asDouble);
        Assert.Equal(doubles.Select(BitConverter.DoubleToUInt64Bits), asDouble.Select(BitConverter.DoubleToUInt64Bits));

        var asSingle = new float[doubles.Length];
        DTypeDecoder.ToFloat32(bytes, SafetensorsDType.F64, asSingle);
        Assert.Equal([float.PositiveInfinity, 0f, float.NaN, -2.5f, (float)(1.0 / 3)], asSingle);
    }

    [Fact]
    public void ToFloat64WidensHalfPrecisionFormatsExactly()
    {
        var fromBf16 = new double[2];
        DTypeDecoder.ToFloat64(SafetensorsBytes.UInt16(0x3FC0, 0x0001), SafetensorsDType.BF16, fromBf16);
        Assert.Equal([1.5, BFloat16ByDefinition(0x0001)], fromBf16);

        var fromF16 = new double[1];
        DTypeDecoder.ToFloat64(SafetensorsBytes.UInt16(0x0001), SafetensorsDType.F16, fromF16);
        Assert.Equal(Math.ScaleB(1, -24), fromF16[0]);
    }

    [Fact]
    public void DecoderRefusesMismatchedLengthsAndUnsupportedDTypes()
    {
        Assert.Throws<ArgumentException>(() => DTypeDecoder.ToFloat32(new byte[6], SafetensorsDType.F32, new float[2]));
        var error = Assert.Throws<ArgumentException>(
            () => DTypeDecoder.ToFloat32(new byte[2], SafetensorsDType.F8E4M3, new float[2]));
        Assert.Contains("F8_E4M3", error.Message);
    }

    [Theory]
    // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: ties go to the even mantissa, 1.0.
    [InlineData(0x3F808000u, (ushort)0x3F80)]
    // 1 + 2^-7 + 2^-8 lies halfway between mantissas 1 (odd) and 2 (even): rounds up.
    [InlineData(0x3F818000u, (ushort)0x3F82)]
    // Just above the halfway point rounds up; just below rounds down.
    [InlineData(0x3F808001u, (ushort)0x3F81)]
    [InlineData(0x3F807FFFu, (ushort)0x3F80)]
    // The largest float rounds to infinity; -0 and infinities pass through.
    [InlineData(0x7F7FFFFFu, (ushort)0x7F80)]
    [InlineData(0x80000000u, (ushort)0x8000)]
    [InlineData(0xFF800000u, (ushort)0xFF80)]
    // A NaN whose payload sits only in the low bits must stay NaN rather than truncate to infinity.
    [InlineData(0x7F800001u, (ushort)0x7FC0)]
    public void BFloat16EncodingRoundsToNearestEven(uint singleBits, ushort expected)
    {
        Assert.Equal(expected, DTypeEncoder.ToBFloat16Bits(BitConverter.UInt32BitsToSingle(singleBits)));
    }

    [Fact]
    public void BFloat16EncodingPicksTheNearestNeighbourForRandomValues()
    {
        var random = new Random(1234);
        for (int trial = 0; trial < 20000; trial++)
        {
            float value = BitConverter.UInt32BitsToSingle((uint)random.NextInt64(0, 0x7F7F_0000));
            ushort encoded = DTypeEncoder.ToBFloat16Bits(value);

            ushort below = (ushort)(BitConverter.SingleToUInt32Bits(value) >> 16);
            double lower = BFloat16ByDefinition(below), upper = BFloat16ByDefinition((ushort)(below + 1));
            double distanceDown = value - lower, distanceUp = upper - value;
            ushort nearest = distanceDown < distanceUp ? below
                : distanceUp < distanceDown ? (ushort)(below + 1)
                : (below & 1) == 0 ? below : (ushort)(below + 1);
            Assert.True(nearest == encoded, $"{value:R}: expected 0x{nearest:X4}, encoded 0x{encoded:X4}");
        }
    }

    [Fact]
    public void EncodersProduceTheBytesTheDecodersRead()
    {
        float[] values = [0.1f, -3.75f, 65504f, 1e-8f, float.NaN];
        foreach (var dtype in SafetensorsDTypes.DecodableToFloat)
        {
            var bytes = new byte[values.Length * SafetensorsDTypes.BitsPerElement(dtype) / 8];
            DTypeEncoder.FromFloat32(values, dtype, bytes);
            var decoded = new float[values.Length];
            DTypeDecoder.ToFloat32(bytes, dtype, decoded);
            for (int i = 0; i < values.Length; i++)
            {
                bool matches = dtype switch
                {
                    SafetensorsDType.F16 => ((float)(Half)values[i]).Equals(decoded[i]),
                    // Eight significant bits: rounding to nearest is off by at most half a unit, 2^-8 relative.
                    SafetensorsDType.BF16 => float.IsNaN(values[i])
                        ? float.IsNaN(decoded[i])
                        : Math.Abs(decoded[i] - values[i]) <= Math.Abs(values[i]) * Math.ScaleB(1, -8),
                    _ => values[i].Equals(decoded[i]),
                };
                Assert.True(matches, $"{dtype} {values[i]:R} came back as {decoded[i]:R}");
            }
        }
    }
}
