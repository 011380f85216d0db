// Statistical properties of the score on random matrices: what the published threshold does with noise and signal.
using FsCheck;
using FsCheck.Xunit;
using static TorchSharp.torch;

namespace Spectrum.Analysis.Tests;

public class NoiseAndSignalPropertyTests
{
    private static readonly SingularValueEngine Engine = new(new SingularValueEngineOptions(ForcePrecision: GramPrecision.Float64));

    /// <summary>
    /// Fraction of a square Gaussian matrix's singular values above the published threshold, from the quarter-circle
    /// law p(x) = sqrt(4 − x²)/π of s/sqrt(n): q25 = 0.3953, q75 = 1.2694, threshold 2·(q75 − q25)/1.349 = 1.2960,
    /// fraction above = 1 − F(1.2960) = 0.2370. The threshold is an IQR of the singular values, not the noise edge, so
    /// pure noise puts about a quarter of its values above it (not "almost none").
    /// </summary>
    private static double QuarterCircleFractionAbove()
    {
        static double Cdf(double x) => (x * Math.Sqrt(4 - x * x) / 2 + 2 * Math.Asin(x / 2)) / Math.PI;
        static double Inverse(double p)
        {
            double a = 0, b = 2;
            for (int i = 0; i < 60; i++) { double mid = (a + b) / 2; if (Cdf(mid) < p) a = mid; else b = mid; }
            return a;
        }
        double threshold = 2 * (Inverse(0.75) - Inverse(0.25)) / SpectrumScore.IqrPerSigma;
        return 1 - Cdf(threshold);
    }

    [Property(MaxTest = 12)]
    public bool SquareGaussianNoiseHasTheQuarterCircleFractionAboveThreshold(PositiveInt seed, PositiveInt size)
    {
        // Allowed: |count − n·0.2370| ≤ 0.04·n + 3 (finite-size fluctuation of the quantiles and the count at n ≈ 100).
        int n = 96 + size.Get % 96;
        using var scope = NewDisposeScope();
        var score = Engine.Score(TestMatrices.Gaussian(n, n, (ulong)seed.Get)).Snr;
        double expected = n * QuarterCircleFractionAbove();
        return Math.Abs(score.SignalCount - expected) <= 0.04 * n + 3;
    }

    [Property(MaxTest = 12)]
    public bool PlantedSignalIsRecoveredAboveThreshold(PositiveInt seed, PositiveInt rank)
    {
        // Rank-k signal with singular values 20×…10× the noise edge sqrt(rows)+sqrt(cols): the k largest singular
        // values are the planted ones within 2% (noise lifts them by ≈ edge²/(2·s), 0.5% for the weakest, plus its
        // fluctuation) and all k are above the threshold.
        // (The bulk is mostly above it too, as for pure noise, so the count is ≥ k, not = k.)
        int k = 1 + rank.Get % 5;
        long rows = 80, cols = 144;
        using var scope = NewDisposeScope();
        var result = Engine.Score(TestMatrices.Planted(rows, cols, k, 20, (ulong)seed.Get));
        double edge = Math.Sqrt(rows) + Math.Sqrt(cols);
        for (int i = 0; i < k; i++)
        {
            double planted = 20 * edge * (1.0 - 0.5 * i / Math.Max(1, k - 1));
            double s = result.SingularValues.Descending[i];
            if (Math.Abs(s - planted) > 0.02 * planted || s <= result.Snr.Threshold) return false;
        }
        return result.Snr.SignalCount >= k && result.SingularValues.Descending[k] < 0.2 * result.SingularValues.Descending[k - 1];
    }

    [Property(MaxTest = 10)]
    public bool ScoreScalesAsOneOverC(PositiveInt seed, PositiveInt exponent)
    {
        // score(c·W) = score(W)/c while the noise set is non-empty (see SpectrumScoreTests for the empty case).
        // c = 2^j: c·W and its Gram matrix are exact, tolerance 1e-12 relative (eigensolver rounding only);
        // c = 1.5·2^j: c·W is rounded to float32 (relative 6e-8 per entry), tolerance 1e-6.
        int j = exponent.Get % 21 - 10;
        using var scope = NewDisposeScope();
        var w = TestMatrices.Planted(40, 70, 2, 20, (ulong)seed.Get);
        var plain = Engine.Score(w).Snr;
        if (plain.SignalCount == plain.Count) return false; // the premise: this family always has a noise set
        foreach (var (c, tolerance) in new[] { (Math.Pow(2, j), 1e-12), (1.5 * Math.Pow(2, j), 1e-6) })
        {
            double scaled = Engine.Score(w * c).Snr.Score;
            if (!(Math.Abs(scaled * c / plain.Score - 1) <= tolerance)) return false;
        }
        return true;
    }

    [Property(MaxTest = 10)]
    public bool TransposeLeavesScoreUnchanged(PositiveInt seed)
    {
        // Same Gram side, so the score agrees to rounding: tolerance 1e-10 relative.
        using var scope = NewDisposeScope();
        var w = TestMatrices.Planted(36, 90, 3, 20, (ulong)seed.Get);
        double a = Engine.Score(w).Snr.Score, b = Engine.Score(w.mT.contiguous()).Snr.Score;
        return Math.Abs(b / a - 1) <= 1e-10;
    }

    [Property(MaxTest = 10)]
    public bool EscalatedResultEqualsTheFloat64Result(PositiveInt seed)
    {
        using var scope = NewDisposeScope();
        var w = TestMatrices.LowRankPlusNoise(70, 110, 5, 1e-3, (ulong)seed.Get);
        var escalated = new SingularValueEngine(new SingularValueEngineOptions(FirstPrecision: GramPrecision.Float32)).Compute(w);
        return escalated.Escalated && escalated.Descending.SequenceEqual(Engine.Compute(w).Descending);
    }
}
