// The matrix families the precision table and the guard calibration measure: noise, planted and trained-like spectra, and harder cases.
using TorchSharp;
using static TorchSharp.torch;

namespace Spectrum.Benchmarks;

internal static class TestMatrixFamilies
{
    /// <summary>A (rows, cols) float32 matrix of the named family, drawn from torch's global generator.</summary>
    public static Tensor Make(string kind, long r, long c)
    {
        long n = Math.Min(r, c);
        double edge = Math.Sqrt(r) + Math.Sqrt(c);
        return kind switch
        {
            "gauss" => randn(r, c),
            "planted" => randn(r, c) + randn(r, 16).matmul(randn(16, c)) * (20 * edge / Math.Sqrt(r * (double)c)),
            "heavy" => (randn(r, n) / Math.Sqrt(r) * arange(1, n + 1, dtype: ScalarType.Float32).pow(-1.0)).matmul(randn(n, c) / Math.Sqrt(c)),
            "lowrank" => randn(r, 32).matmul(randn(32, c)) / Math.Sqrt(32) + randn(r, c) * 1e-3,
            "trained" => randn(r, c) + (randn(r, 64) * (10 * edge / Math.Sqrt(r * (double)c) * arange(1, 65, dtype: ScalarType.Float32).pow(-0.7))).matmul(randn(64, c)),
            "tail" => randn(r, c) * (randn(r, c).abs() + 0.1).pow(-1.5).clamp_max(1e3), // heavy-tailed entries
            "rowscaled" => randn(r, c) * (randn(r, 1) * 1.5).exp(),
            "colscaled" => randn(r, c) * (randn(1, c) * 1.5).exp(),
            "outlier" => randn(r, c) * (ones(1, c) + (rand(1, c) < 0.005).to(ScalarType.Float32) * 50) + randn(r, 8).matmul(randn(8, c)) * (5 * edge / Math.Sqrt(r * (double)c)),
            _ => throw new ArgumentException($"Unknown matrix family '{kind}': use gauss, planted, heavy, lowrank, trained, tail, rowscaled, colscaled or outlier."),
        };
    }
}
