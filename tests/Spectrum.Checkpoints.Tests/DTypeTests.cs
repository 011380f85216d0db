// The dtype table: every safetensors spelling, bit width and capability.
namespace Spectrum.Checkpoints.Tests;

public sealed class DTypeTests
{
    private static readonly string[] FormatSpellings =
    [
        "BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ", "I16", "U16", "F16",
        "BF16", "I32", "U32", "F32", "F64", "I64", "U64", "C64", "F4", "F6_E2M3", "F6_E3M2",
    ];

    [Fact]
    public void EverySpellingOfTheFormatParsesAndPrintsBack()
    {
        Assert.Equal(FormatSpellings.Length, Enum.GetValues<SafetensorsDType>().Length);
        foreach (string spelling in FormatSpellings)
        {
            Assert.Equal(spelling, SafetensorsDTypes.HeaderName(SafetensorsDTypes.Parse(spelling)));
        }
    }

    [Theory]
    [InlineData("F8_E4M3FNUZ", SafetensorsDType.F8E4M3Fnuz, 8)]
    [InlineData("F6_E2M3", SafetensorsDType.F6E2M3, 6)]
    [InlineData("F4", SafetensorsDType.F4, 4)]
    [InlineData("BOOL", SafetensorsDType.Bool, 8)]
    [InlineData("BF16", SafetensorsDType.BF16, 16)]
    [InlineData("C64", SafetensorsDType.C64, 64)]
    public void SpellingsMapToMembersAndBitWidths(string spelling, SafetensorsDType dtype, int bits)
    {
        Assert.Equal(dtype, SafetensorsDTypes.Parse(spelling));
        Assert.Equal(bits, SafetensorsDTypes.BitsPerElement(dtype));
    }

    [Fact]
    public void ParsingIsCaseSensitiveAndNamesTheValidSpellings()
    {
        var error = Assert.Throws<ArgumentException>(() => SafetensorsDTypes.Parse("bf16"));
        Assert.Contains("bf16", error.Message);
        Assert.Contains("BF16", error.Message);
    }

    [Fact]
    public void OnlyF16BF16F32AndF64DecodeToFloat()
    {
        var decodable = Enum.GetValues<SafetensorsDType>().Where(SafetensorsDTypes.CanDecodeToFloat);
        Assert.Equal([SafetensorsDType.F16, SafetensorsDType.BF16, SafetensorsDType.F32, SafetensorsDType.F64], decodable);
        Assert.True(SafetensorsDTypes.IsFloatingPoint(SafetensorsDType.F8E5M2));
        Assert.False(SafetensorsDTypes.IsFloatingPoint(SafetensorsDType.I64));
    }

    [Theory]
    [InlineData(SafetensorsDType.F4, 3, null)]
    [InlineData(SafetensorsDType.F4, 4, 2L)]
    [InlineData(SafetensorsDType.F6E3M2, 2, null)]
    [InlineData(SafetensorsDType.F6E3M2, 4, 3L)]
    [InlineData(SafetensorsDType.F64, long.MaxValue / 8, null)]
    [InlineData(SafetensorsDType.BF16, 5, 10L)]
    public void ByteLengthRequiresWholeBytesAndNoOverflow(SafetensorsDType dtype, long elements, long? expected)
    {
        Assert.Equal(expected, SafetensorsDTypes.TryByteLength(dtype, elements));
    }
}
