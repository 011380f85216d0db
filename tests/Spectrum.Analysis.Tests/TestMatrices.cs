// Seeded test matrices with known spectral structure (small, so the whole suite stays fast on 2 cores).
using TorchSharp;
using static TorchSharp.torch;

namespace Spectrum.Analysis.Tests;

/// <summary>Builders for float32 test matrices; every one is reproducible from its seed.</summary>
internal static class TestMatrices
{
    public static Tensor Gaussian(long rows, long cols, ulong seed) =>
        randn(rows, cols, ScalarType.Float32, generator: new Generator(seed));

    /// <summary>rows×cols with orthonormal columns (rows ≥ cols) or rows (rows &lt; cols); float64.</summary>
    public static Tensor Orthonormal(long rows, long cols, ulong seed)
    {
        using var scope = NewDisposeScope();
        if (rows < cols) return scope.MoveToOuter(Orthonormal(cols, rows, seed).mT.contiguous());
        var (q, _) = linalg.qr(randn(rows, cols, ScalarType.Float64, generator: new Generator(seed)));
        return scope.MoveToOuter(q); // (rows, cols)
    }

    /// <summary>U·diag(spectrum)·Vᵀ rounded to float32: singular values are `spectrum` up to float32 rounding.</summary>
    public static Tensor WithSpectrum(long rows, long cols, double[] spectrum, ulong seed)
    {
        using var scope = NewDisposeScope();
        long n = Math.Min(rows, cols);
        var u = Orthonormal(rows, n, seed);                       // (rows, n)
        var v = Orthonormal(cols, n, seed + 7919);                // (cols, n)
        var s = tensor(spectrum, ScalarType.Float64);             // (n)
        return scope.MoveToOuter((u * s).matmul(v.mT).to(ScalarType.Float32)); // (rows, cols)
    }

    /// <summary>Gaussian noise plus a rank-k signal whose singular values are `strength`× the noise edge sqrt(rows)+sqrt(cols).</summary>
    public static Tensor Planted(long rows, long cols, int k, double strength, ulong seed)
    {
        using var scope = NewDisposeScope();
        long n = Math.Min(rows, cols);
        double edge = Math.Sqrt(rows) + Math.Sqrt(cols);
        var spectrum = new double[n];
        for (int i = 0; i < k; i++) spectrum[i] = strength * edge * (1.0 - 0.5 * i / Math.Max(1, k - 1));
        var signal = WithSpectrum(rows, cols, spectrum, seed);
        return scope.MoveToOuter(signal + Gaussian(rows, cols, seed + 1));
    }

    /// <summary>Rank-r signal (singular values 1 … 0.3) plus noise of relative size `noise`: trained-like, ill-conditioned.</summary>
    public static Tensor LowRankPlusNoise(long rows, long cols, int rank, double noise, ulong seed)
    {
        using var scope = NewDisposeScope();
        long n = Math.Min(rows, cols);
        var spectrum = new double[n];
        for (int i = 0; i < rank; i++) spectrum[i] = 1.0 - 0.7 * i / Math.Max(1, rank - 1);
        var w = WithSpectrum(rows, cols, spectrum, seed) + Gaussian(rows, cols, seed + 1) * (noise / Math.Sqrt(Math.Max(rows, cols)));
        return scope.MoveToOuter(w);
    }

    /// <summary>Power-law spectrum j^-exponent: heavy-tailed, condition number n^exponent.</summary>
    public static Tensor PowerLaw(long rows, long cols, double exponent, ulong seed)
    {
        long n = Math.Min(rows, cols);
        var spectrum = Enumerable.Range(1, (int)n).Select(j => Math.Pow(j, -exponent)).ToArray();
        return WithSpectrum(rows, cols, spectrum, seed);
    }

    public static float[] ToArray(Tensor matrix) => matrix.contiguous().data<float>().ToArray();
}
