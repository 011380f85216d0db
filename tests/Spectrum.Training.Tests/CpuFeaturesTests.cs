// Detecting native bf16 matrix products from /proc/cpuinfo text: x86 flags, Arm features, and their absence.
namespace Spectrum.Training.Tests;

public sealed class CpuFeaturesTests
{
    [Theory]
    [InlineData("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 avx512_vnni\n", true)]               // Zen 4/5, Cooper Lake
    [InlineData("processor\t: 0\nflags\t\t: fpu avx2 avx512f amx_bf16 amx_tile amx_int8\n", true)]           // Sapphire Rapids
    [InlineData("processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd sve bf16 i8mm\n", true)]            // Arm Neoverse V1+
    [InlineData("processor\t: 0\nflags\t\t: fpu avx avx2 fma avx512f avx512bw avx512vl\n", false)]         // Skylake-X
    [InlineData("processor\t: 0\nFeatures\t: fp asimd evtstrm crc32\n", false)]                            // older Arm
    [InlineData("model name\t: some cpu with bf16 in its name\nflags\t\t: fpu sse2\n", false)]              // not a flags line
    [InlineData("", false)]
    public void Bf16SupportIsReadFromTheFlagLines(string cpuInfo, bool expected) =>
        Assert.Equal(expected, CpuFeatures.HasNativeBf16MatrixProducts(cpuInfo));
}
