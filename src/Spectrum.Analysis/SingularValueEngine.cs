// Singular values of a weight matrix via the Gram matrix + eigvalsh, float32 where a guard proves it safe, else float64.
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace Spectrum.Analysis;

/// <summary>
/// Computes all singular values of a 2-D tensor fast enough for whole-model scans on a CPU, and scores them.
/// Not for singular vectors, batched tensors or tensors of rank other than 2 (the scanner decides what to skip).
/// </summary>
/// <remarks>
/// Method: S = sqrt(eigvalsh(G)) with G the Gram matrix of the smaller side (W·Wᵀ when rows ≤ cols, else Wᵀ·W),
/// eigenvalues clamped at 0, descending. Squaring the condition number is harmless in float64 and, for shapes with a
/// well-separated smallest singular value, in float32 too; <see cref="InitialPrecisionFor"/> picks the first attempt
/// and a float32 result is kept only when <see cref="ScoreErrorBound"/> says the score cannot be off by more than
/// <see cref="SingularValueEngineOptions.ScoreErrorBudget"/>; otherwise it is recomputed in float64.
///
/// Memory (bf16 input 14336×4096, 117 MB): float32 attempt = W in float32 235 MB + G 4096² 67 MB + eigvalsh's
/// working copy of G 67 MB ≈ 370 MB beside the input; float64 = 470 + 134 + 134 ≈ 740 MB. The float32 attempt's
/// tensors are freed before an escalation allocates, so the peak is the float64 one (plus 235 MB of float32 for a
/// float64 input, which is rounded to float32 first as the method prescribes).
///
/// Determinism: libtorch's CPU matmul (MKL sgemm/dgemm) and eigvalsh (LAPACK syevd) give bit-identical results for
/// the same input on the same machine with the same thread count (torch.get_num_threads()); results may differ in
/// the last bits when the thread count or the CPU's instruction set changes (MKL picks blocking and kernels from
/// both; MKL_CBWR pins the kernels). The guard and the score are plain sequential C#.
/// </remarks>
public sealed class SingularValueEngine
{
    private readonly SingularValueEngineOptions _options;

    public SingularValueEngine() : this(new SingularValueEngineOptions()) { }

    public SingularValueEngine(SingularValueEngineOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (!(options.ScoreErrorBudget > 0) || double.IsInfinity(options.ScoreErrorBudget))
            throw new ArgumentOutOfRangeException(nameof(options), options.ScoreErrorBudget,
                "ScoreErrorBudget must be a positive finite relative error, e.g. 1e-5.");
        _options = options;
    }

    public SingularValueEngineOptions Options => _options;

    /// <summary>Unit roundoff of float32 (2⁻²⁴) and float64 (2⁻⁵³).</summary>
    public const double Float32UnitRoundoff = 5.9604644775390625e-8, Float64UnitRoundoff = 1.1102230246251565e-16;

    /// <summary>Constant of the λmax-relative Gram term of <see cref="EigenvalueErrorModel"/> (largest ratio seen: 0.12).</summary>
    public const double GramErrorConstantMax = 0.5;

    /// <summary>Constant of the per-eigenvalue Gram term of <see cref="EigenvalueErrorModel"/> (largest ratio seen: 1.04).</summary>
    public const double GramErrorConstantLocal = 4.0;

    /// <summary>Constant of the float64 eigensolver term of <see cref="EigenvalueErrorModel"/> (float32 syevd showed 0.15).</summary>
    public const double EigensolverErrorConstant = 1.0;

    /// <summary>Largest aspect ratio min/max of a shape whose first attempt is float32.</summary>
    public const double Float32AspectRatioCutoff = 0.5;

    /// <summary>Below this many multiply-adds in the Gram product float64 costs only milliseconds, so it is used.</summary>
    public const double Float32MinimumWork = 1 << 28;

    /// <summary>
    /// The per-shape first attempt: float32 for clearly rectangular, large matrices (their smallest singular value is
    /// far from 0, so squaring loses little), float64 for square-ish or small ones.
    /// </summary>
    public static GramPrecision InitialPrecisionFor(long rows, long cols)
    {
        if (rows < 0 || cols < 0) throw new ArgumentOutOfRangeException(nameof(rows), $"Shape ({rows}, {cols}) has a negative dimension.");
        double n = Math.Min(rows, cols), k = Math.Max(rows, cols);
        if (n * n * k < Float32MinimumWork) return GramPrecision.Float64;
        return SpectrumScore.AspectRatio(rows, cols) <= Float32AspectRatioCutoff ? GramPrecision.Float32 : GramPrecision.Float64;
    }

    /// <summary>
    /// Absolute error bound of each eigenvalue of the Gram matrix of an n×k (n ≤ k) matrix whose Gram product ran in
    /// <paramref name="precision"/> and whose eigensolver ran in float64:
    /// δλ_i = u_G·sqrt(k)·min(cMax·λmax, cLocal·(λ_i + mean λ)) + cE·u64·n·λmax (u_G the Gram precision's unit roundoff).
    /// </summary>
    /// <remarks>
    /// Why this form: a float32 GEMM dot product of length k errs like u·sqrt(k) times its terms; eigenvalue i feels
    /// mostly the errors along its own eigenvector (the λ_i term) plus a share of the whole matrix's (the mean term),
    /// and never more than a perturbation of norm ~u·sqrt(k)·λmax (the cap). Calibrated on 70 matrices (9 families:
    /// Gaussian, planted rank-16, power-law 1/j spectrum, rank-32 + 1e-3 noise, 64 decaying spikes, heavy-tailed
    /// entries, rows or columns scaled by e^(1.5·N(0,1)), 0.5% outlier columns ×50; shapes 192×576 … 2048×5632 and
    /// transposes) by comparing eigvalsh(float64(G32)) with eigvalsh(G64): max_i |δλ_i| / (u32·sqrt(k)·λmax) ≤ 0.12 and
    /// max_i |δλ_i| / (u32·sqrt(k)·(λ_i + mean λ)) ≤ 1.04, so both constants carry a ≥ 3.8× margin. The float32
    /// eigensolver showed max |δλ| ≤ 0.15·u32·n·λmax (why eigenvalues are always solved in float64). Measured with
    /// /tmp calibration code kept in the report of this change: dotnet run calib gauss:2048x5632 … then numpy.
    /// </remarks>
    public static double[] EigenvalueErrorModel(GramPrecision precision, long n, long k, ReadOnlySpan<double> eigenvaluesAscending)
    {
        double gramRoundoff = precision == GramPrecision.Float32 ? Float32UnitRoundoff : Float64UnitRoundoff;
        double largest = 0, sum = 0;
        foreach (double lambda in eigenvaluesAscending)
        {
            largest = Math.Max(largest, lambda);
            sum += Math.Max(lambda, 0);
        }
        double mean = eigenvaluesAscending.Length == 0 ? 0 : sum / eigenvaluesAscending.Length;
        double gramScale = gramRoundoff * Math.Sqrt(k), solver = EigensolverErrorConstant * Float64UnitRoundoff * n * largest;
        var errors = new double[eigenvaluesAscending.Length];
        for (int i = 0; i < errors.Length; i++)
        {
            double local = GramErrorConstantLocal * (Math.Max(eigenvaluesAscending[i], 0) + mean);
            errors[i] = gramScale * Math.Min(GramErrorConstantMax * largest, local) + solver;
        }
        return errors;
    }

    /// <summary>All singular values of a 2-D floating tensor (any floating dtype); the input is neither changed nor kept.</summary>
    /// <exception cref="ArgumentException">The tensor is not 2-D or not floating point.</exception>
    public SingularValueResult Compute(Tensor matrix)
    {
        ArgumentNullException.ThrowIfNull(matrix);
        if (matrix.dim() != 2)
            throw new ArgumentException($"Expected a 2-D matrix, got shape [{string.Join(", ", matrix.shape)}]; promote or skip it first.", nameof(matrix));
        if (!matrix.is_floating_point())
            throw new ArgumentException($"Expected a floating-point matrix, got {matrix.dtype}; dequantize it first.", nameof(matrix));

        long rows = matrix.shape[0], cols = matrix.shape[1];
        long n = Math.Min(rows, cols), k = Math.Max(rows, cols);
        var first = _options.ForcePrecision ?? InitialPrecisionFor(rows, cols);
        if (n == 0)
            return new SingularValueResult([], first, false, 0);

        if (first == GramPrecision.Float32)
        {
            var attempt = Attempt(matrix, GramPrecision.Float32, n, k);
            bool forced = _options.ForcePrecision is not null;
            if (forced || attempt.EstimatedScoreRelativeError <= _options.ScoreErrorBudget)
                return attempt;
        }
        var exact = Attempt(matrix, GramPrecision.Float64, n, k);
        return exact with { Escalated = first == GramPrecision.Float32 };
    }

    /// <summary>Singular values and the published score of a 2-D floating tensor.</summary>
    public MatrixScore Score(Tensor matrix)
    {
        var values = Compute(matrix);
        return new MatrixScore(SpectrumScore.FromSingularValues(values.Descending, matrix.shape[0], matrix.shape[1]), values);
    }

    /// <summary>Scores a row-major float32 matrix of shape (rows, cols).</summary>
    public MatrixScore Score(ReadOnlySpan<float> rowMajor, int rows, int cols)
    {
        using var scope = NewDisposeScope();
        var w = EmptyMatrix(rowMajor.Length, rows, cols); // W is (rows, cols) float32
        MemoryMarshal.AsBytes(rowMajor).CopyTo(w.bytes);
        return Score(w);
    }

    /// <summary>Scores a row-major float64 matrix of shape (rows, cols); it is rounded to float32 first, as the method prescribes.</summary>
    public MatrixScore Score(ReadOnlySpan<double> rowMajor, int rows, int cols)
    {
        using var scope = NewDisposeScope();
        var w = EmptyMatrix(rowMajor.Length, rows, cols); // W is (rows, cols) float32
        var target = MemoryMarshal.Cast<byte, float>(w.bytes);
        for (int i = 0; i < rowMajor.Length; i++)
            target[i] = (float)rowMajor[i];
        return Score(w);
    }

    private static Tensor EmptyMatrix(int length, int rows, int cols)
    {
        if (rows < 0 || cols < 0 || (long)rows * cols != length)
            throw new ArgumentException($"A ({rows}, {cols}) matrix needs {(long)rows * cols} values, but {length} were given.");
        return empty(rows, cols, ScalarType.Float32);
    }

    /// <summary>One Gram + eigvalsh pass; every tensor it makes is freed on return, so an escalation starts clean.</summary>
    private static SingularValueResult Attempt(Tensor matrix, GramPrecision precision, long n, long k)
    {
        double[] ascending; // eigenvalues of G, (n) ascending
        using (var scope = NewDisposeScope())
        {
            var g = GramInFloat64(matrix, precision); // G is (n, n), lower triangle filled
            if (!g.isfinite().all().item<bool>())
                return new SingularValueResult(Enumerable.Repeat(double.NaN, (int)n).ToArray(), precision, false,
                    precision == GramPrecision.Float32 ? double.PositiveInfinity : double.NaN);
            ascending = linalg.eigvalsh(g, 'L').cpu().data<double>().ToArray();
        }

        var descending = new double[n]; // S is (n), descending
        for (int i = 0; i < n; i++)
            descending[i] = Math.Sqrt(Math.Max(ascending[n - 1 - i], 0));
        Array.Sort(descending, (a, b) => b.CompareTo(a)); // eigvalsh may leave ±1-ulp inversions

        double[] errors = EigenvalueErrorModel(precision, n, k, ascending); // (n), same order as ascending
        double estimate = ScoreErrorBound.Relative(ascending, errors, matrix.shape[0], matrix.shape[1]);
        return new SingularValueResult(descending, precision, false, estimate);
    }

    /// <summary>Rows of W per block of the Gram product; 512 keeps every GEMM large enough to run at full speed.</summary>
    private const long GramBlockRows = 512;

    /// <summary>
    /// The Gram matrix of the smaller side, computed in <paramref name="precision"/> and handed back in float64 for
    /// eigvalsh. Only the lower triangle is computed (eigvalsh reads no more): block row i of G is X_i · X[0..i]ᵀ,
    /// which with b blocks costs (b + 1) / 2b of the full product. The float32 intermediates are freed on return.
    /// </summary>
    private static Tensor GramInFloat64(Tensor matrix, GramPrecision precision)
    {
        using var scope = NewDisposeScope();
        var dtype = precision == GramPrecision.Float32 ? ScalarType.Float32 : ScalarType.Float64;
        // The method casts to float32 first; only a float64 input loses bits there, so only it takes the detour.
        var w = matrix.dtype == ScalarType.Float64 && precision == GramPrecision.Float64
            ? matrix.to(ScalarType.Float32).to(ScalarType.Float64)
            : matrix.to(dtype); // W is (rows, cols); no copy when the input already has dtype
        var x = w.shape[0] <= w.shape[1] ? w : w.mT; // X is (n, k): a view, the GEMM reads either layout
        long n = x.shape[0];
        var g = zeros(n, n, dtype: dtype); // G is (n, n); the upper triangle stays 0
        for (long start = 0; start < n; start += GramBlockRows)
        {
            long length = Math.Min(GramBlockRows, n - start);
            var block = x.narrow(0, start, length);     // (length, k)
            var upTo = x.narrow(0, 0, start + length);  // (start + length, k)
            g.narrow(0, start, length).narrow(1, 0, start + length).addmm_(block, upTo.mT, beta: 0, alpha: 1);
        }
        return scope.MoveToOuter(g.to(ScalarType.Float64));
    }
}
