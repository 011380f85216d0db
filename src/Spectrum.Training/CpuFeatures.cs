// Whether this CPU multiplies bf16 matrices natively, so `--precision bf16` can warn before a run that would crawl.
namespace Spectrum.Training;

/// <summary>
/// bf16 matrix products are fast only with hardware support — AVX512-BF16 or AMX on x86 (oneDNN's kernels measured
/// ~4× float32 on a Zen 5), the BF16 extension on Arm; elsewhere torch emulates them and bf16 training can be slower
/// than float32. Read from /proc/cpuinfo's flags; unknown (null) where that file does not exist.
/// </summary>
public static class CpuFeatures
{
    private const string CpuInfoPath = "/proc/cpuinfo";

    /// <summary>True or false on Linux; null elsewhere (not determined).</summary>
    public static bool? HasNativeBf16MatrixProducts() =>
        File.Exists(CpuInfoPath) ? HasNativeBf16MatrixProducts(File.ReadAllText(CpuInfoPath)) : null;

    /// <summary>From the text of /proc/cpuinfo: x86 "flags" lines (avx512_bf16, amx_bf16) or Arm "Features" lines (bf16).</summary>
    public static bool HasNativeBf16MatrixProducts(string cpuInfo)
    {
        ArgumentNullException.ThrowIfNull(cpuInfo);
        foreach (string line in cpuInfo.Split('\n'))
        {
            int colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon < 0)
                continue;
            string key = line[..colon].Trim();
            if (key is not ("flags" or "Features"))
                continue;
            var flags = line[(colon + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (flags.Any(flag => flag is "avx512_bf16" or "amx_bf16" || (key == "Features" && flag == "bf16")))
                return true;
        }
        return false;
    }
}
