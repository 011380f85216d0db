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
/// eigenvalues clamped at 0, descending. Only the lower triangle of G is computed (block row i of G = X_i·X[0..i]ᵀ,
/// about 56% of the full product with 512-row blocks). <see cref="GramPrecision"/> is the precision of that product,
/// the O(n²k) part; eigvalsh always runs in float64, because float32 syevd errs by up to 0.15·u32·n·λmax (measured),
/// over 40× the float32 Gram product's ≤ 0.12·u32·sqrt(k)·λmax at n = 4096 (k ≤ 14,336), for only ~1 s less.
/// <see cref="InitialPrecisionFor"/> picks the first attempt; a float32 result is kept only when
/// <see cref="ScoreErrorBound"/> with <see cref="EigenvalueErrorModel"/> says the score cannot be off by more than
/// <see cref="SingularValueEngineOptions.ScoreErrorBudget"/>; otherwise it is recomputed in float64 (Escalated).
///
/// Memory beside the input, measured (VmHWM) for a bf16 14336×4096 input (117 MB): float32 attempt +443 MB
/// (W in float32 235 MB + G 67 MB + G in float64 134 MB; W and the float32 G are freed before eigvalsh, whose working
/// copy of G is another 134 MB); float64 +590 MB (W in float64 470 MB + G 134 MB, then eigvalsh). An escalation frees
/// the float32 attempt first, so its peak is the float64 one. A float64 input is rounded to float32 first, as the
/// method prescribes (+235 MB for that copy).
///
/// Determinism: the same input gives bit-identical output run to run on the same machine with the same
/// torch.get_num_threads() (tested). The thread count changes the bits: MKL splits the GEMM and syevd work by thread,
/// and 1 vs 2 threads changed most singular values of a 1500×3000 matrix by up to 5e-16·S[0] (far below any tolerance,
/// but not bit-equal). Pin the thread count (and MKL_CBWR for the CPU code path) when bit-equality across machines
/// matters. The guard and the score are sequential C#.
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
        if (options.ForcePrecision is not null && options.FirstPrecision is not null)
            throw new ArgumentException(
                $"ForcePrecision ({options.ForcePrecision}) and FirstPrecision ({options.FirstPrecision}) cannot both be set: " +
                "ForcePrecision disables the escalation that FirstPrecision starts.", nameof(options));
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
    public const double Float32AspectRatioCutoff = 0.4;

    /// <summary>Below this many multiply-adds (n²·k) in the Gram product float64 costs only milliseconds.</summary>
    public const double Float32MinimumWork = 1L << 28;

    /// <summary>
    /// Above this many multiply-adds the guard rejected float32 at the default budget for every spectrum measured
    /// (even pure noise), so a float32 first attempt would only add its own cost.
    /// </summary>
    public const double Float32MaximumWork = 1L << 32;

    /// <summary>
    /// The per-shape first attempt: float32 for clearly rectangular (min/max ≤ 0.4) shapes of moderate size, float64
    /// for square-ish, small or large ones. Same answer for a shape and its transpose.
    /// </summary>
    /// <remarks>
    /// Measured on this machine (2 cores, libtorch 2.10 CPU/MKL, 2 threads; best of 2 runs; other jobs shared the
    /// cores, so ±30%) with `Spectrum.Benchmarks precision` (benchmarks/Spectrum.Benchmarks/PrecisionTable.cs):
    /// `dotnet run -c Release -- reps=2 4096x14336 14336x4096 4096x4096 1024x4096 2048x5632 2048x2048 576x1536 576x576 192x576 gauss planted trained`.
    /// "F32" is the float32 Gram + float64 eigvalsh path, "pure f32" runs eigvalsh in float32 too; err = |score − ref| / ref
    /// with ref = the float32 svdvals score (the float64 Gram score for the two largest shapes); est = the guard's
    /// float32 estimate. Matrices: gauss (N(0,1) entries), planted (gauss + rank 16 at 20× the noise edge),
    /// trained (gauss + 64 spikes at 10·edge·j^-0.7).
    ///
    /// | shape      | matrix  | pure f32 s | F32 s | F64 s | svdvals s | err pure f32 | err F32 | err F64 | est F32 |
    /// |------------|---------|-----------:|------:|------:|----------:|-------------:|--------:|--------:|--------:|
    /// | 4096×14336 | gauss   | 3.37 | 3.19 | 4.53 |   –  | 2.2e-6 | 1.0e-9 | ref    | 2.4e-5 |
    /// | 4096×14336 | planted | 3.45 | 3.25 | 6.73*|   –  | 3.0e-6 | 1.6e-8 | ref    | 1.9e-2 |
    /// | 4096×14336 | trained | 3.47 | 3.36 | 4.39 |   –  | 6.4e-7 | 4.3e-9 | ref    | 1.7e-2 |
    /// | 14336×4096 | gauss   | 3.51 | 3.43 | 4.47 |   –  | 2.8e-6 | 8.1e-9 | ref    | 2.4e-5 |
    /// | 14336×4096 | planted | 3.46 | 3.30 | 9.99*|   –  | 1.7e-6 | 3.5e-8 | ref    | 1.9e-2 |
    /// | 14336×4096 | trained | 3.44 | 3.37 | 4.59 |   –  | 9.7e-7 | 5.6e-10| ref    | 1.2e-4 |
    /// | 4096×4096  | gauss   | 1.81 | 2.35 | 2.66 | 7.13 | 2.1e-6 | 1.6e-6 | 1.6e-6 | 4.0e-5 |
    /// | 4096×4096  | planted | 1.88 | 2.42 | 2.67 | 6.05 | 3.5e-6 | 2.5e-7 | 2.9e-7 | 1.7e-3 |
    /// | 4096×4096  | trained | 1.90 | 2.30 | 2.58 | 5.93 | 2.8e-6 | 1.7e-7 | 2.3e-7 | 1.1e-4 |
    /// | 2048×5632  | gauss   | 0.43 | 0.50 | 0.63 | 3.26 | 3.1e-6 | 7.0e-8 | 7.5e-8 | 1.5e-5 |
    /// | 2048×5632  | planted | 0.42 | 0.49 | 0.62 | 3.87 | 2.0e-6 | 3.5e-7 | 4.0e-7 | 4.6e-3 |
    /// | 2048×5632  | trained | 0.43 | 0.48 | 0.61 | 3.48 | 1.7e-6 | 1.6e-6 | 1.6e-6 | 7.6e-5 |
    /// | 2048×2048  | gauss   | 0.23 | 0.34 | 0.36 | 0.60 | 5.8e-7 | 3.2e-7 | 3.2e-7 | 2.9e-5 |
    /// | 2048×2048  | trained | 0.28 | 0.33 | 0.38 | 0.62 | 8.2e-7 | 4.0e-7 | 2.2e-7 | 9.0e-5 |
    /// | 1024×4096  | gauss   | 0.09 | 0.10 | 0.14 | 0.76 | 1.8e-7 | 1.1e-6 | 1.1e-6 | 3.4e-6 |
    /// | 1024×4096  | trained | 0.08 | 0.10 | 0.13 | 0.73 | 4.1e-7 | 3.1e-7 | 3.1e-7 | 2.1e-5 |
    /// | 576×1536   | gauss   | 0.01 | 0.02 | 0.02 | 0.05 | 5.6e-7 | 7.3e-7 | 7.2e-7 | 7.9e-6 |
    /// | 576×576    | gauss   | 0.01 | 0.01 | 0.02 | 0.02 | 4.7e-7 | 4.2e-7 | 3.9e-7 | 1.8e-5 |
    /// | 192×576    | gauss   | 0.00 | 0.00 | 0.00 | 0.00 | 1.4e-7 | 3.6e-8 | 2.3e-8 | 4.9e-6 |
    /// (* another job was running.) Reading: float32 Gram + float64 eigvalsh is as accurate as float64 in practice
    /// (err F32 ≈ err F64: what remains is the svdvals reference's own error), but the conservative guard certifies it
    /// at 1e-5 only for noise-like spectra of moderate size. Square shapes gain little (eigvalsh dominates) and are
    /// rejected; at n ≥ 2048 even pure noise is rejected, spiky (trained-like) spectra at every size. Hence float32
    /// first only where a rejection is cheap and acceptance plausible.
    /// </remarks>
    public static GramPrecision InitialPrecisionFor(long rows, long cols)
    {
        if (rows < 0 || cols < 0) throw new ArgumentOutOfRangeException(nameof(rows), $"Shape ({rows}, {cols}) has a negative dimension.");
        double n = Math.Min(rows, cols), k = Math.Max(rows, cols), work = n * n * k;
        bool rectangular = SpectrumScore.AspectRatio(rows, cols) <= Float32AspectRatioCutoff;
        return rectangular && work >= Float32MinimumWork && work <= Float32MaximumWork ? GramPrecision.Float32 : GramPrecision.Float64;
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
    /// `Spectrum.Benchmarks calibrate` (benchmarks/Spectrum.Benchmarks/GuardCalibration.cs), which dumps the eigenvalue
    /// sets per matrix for benchmarks/calibration/*.py to form the ratios.
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
        var first = _options.ForcePrecision ?? _options.FirstPrecision ?? InitialPrecisionFor(rows, cols);
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
