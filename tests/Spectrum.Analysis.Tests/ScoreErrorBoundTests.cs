// Tests that the interval propagation really bounds the score change for every perturbation inside the intervals.
using FsCheck;
using FsCheck.Xunit;

namespace Spectrum.Analysis.Tests;

public class ScoreErrorBoundTests
{
    private static double Score(double[] eigenvaluesAscending, long rows, long cols)
    {
        var s = eigenvaluesAscending.Select(l => Math.Sqrt(Math.Max(l, 0))).OrderByDescending(x => x).ToArray();
        return SpectrumScore.FromSingularValues(s, rows, cols).Score;
    }

    [Property(MaxTest = 300)]
    public bool BoundCoversEveryPerturbationInsideTheIntervals(NonEmptyArray<NormalFloat> raw, PositiveInt seed, PositiveInt errorExponent)
    {
        // Eigenvalues spread over several decades; errors 1e-9 … 1e-3 of λmax, each perturbation drawn inside ±δλ_i,
        // including the extreme corners where threshold crossings happen.
        var lambdas = raw.Get.Select(x => Math.Pow(10, Math.Clamp(x.Get, -4, 4) / 2)).Take(80).OrderBy(x => x).ToArray();
        int n = lambdas.Length;
        long rows = n, cols = n + seed.Get % 97;
        double relative = Math.Pow(10, -(3 + errorExponent.Get % 7));
        var errors = lambdas.Select(l => relative * lambdas[^1]).ToArray();
        double bound = ScoreErrorBound.Relative(lambdas, errors, rows, cols);
        double nominal = Score(lambdas, rows, cols);
        if (!double.IsFinite(nominal)) return true; // no score to bound (e.g. 0/0), nothing to check
        var random = new Random(seed.Get);
        for (int trial = 0; trial < 20; trial++)
        {
            var perturbed = new double[n];
            for (int i = 0; i < n; i++)
            {
                double u = trial < 2 ? (trial == 0 ? 1 : -1) : trial < 6 ? (random.Next(2) * 2 - 1) : random.NextDouble() * 2 - 1;
                perturbed[i] = Math.Max(0, lambdas[i] + u * errors[i]);
            }
            Array.Sort(perturbed);
            double changed = Score(perturbed, rows, cols);
            // A zero score (no value above the threshold) has no relative error: only "stays 0" (bound 0) or "may not" (inf).
            double actual = nominal == 0 ? (changed == 0 ? 0 : double.PositiveInfinity) : Math.Abs(changed - nominal) / Math.Abs(nominal);
            if (!(actual <= bound * (1 + 1e-9) + 1e-12)) // tolerance: rounding of the bound's own arithmetic
                return false;
        }
        return true;
    }

    [Fact]
    public void ZeroErrorGivesZero() =>
        Assert.Equal(0.0, ScoreErrorBound.Relative([1, 4, 9, 16, 100], 0.0, 5, 9));

    [Fact]
    public void ValueNextToThresholdGivesLargeBound()
    {
        // σ = [10, 4, 3, 2, 1] for 5×8 puts the threshold at 2.65; a 3rd value of 2.66 (λ = 7.0756) sits just above it,
        // so an error of 1e-3 of λmax on every eigenvalue can move it into the noise set: a jump of order 2.66/3.
        double[] ascending = [1, 4, 2.66 * 2.66, 16, 100];
        double bound = ScoreErrorBound.Relative(ascending, 1e-3 * 100, 5, 8);
        Assert.True(bound > 0.3, $"bound {bound} should reflect a possible threshold crossing (> 0.3)");
        double far = ScoreErrorBound.Relative([1, 4, 9, 16, 100], 1e-9 * 100, 5, 8);
        // Without a crossing the bound is of the order of the errors: δσ/σ ≤ 1e-7/(2·1) for the smallest value.
        Assert.True(far < 1e-7, $"bound {far} without a possible crossing should be of the order of the errors (< 1e-7)");
    }

    [Fact]
    public void RejectsNegativeOrMismatchedErrors()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => ScoreErrorBound.Relative([1, 2], -1.0, 2, 2));
        Assert.Throws<ArgumentException>(() => ScoreErrorBound.Relative([1, 2], [0.1], 2, 2));
    }
}
