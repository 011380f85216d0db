// Tests of the published score formula on hand-made spectra: exact cases, undefined cases, invariances.
using FsCheck;
using FsCheck.Xunit;

namespace Spectrum.Analysis.Tests;

public class SpectrumScoreTests
{
    [Fact]
    public void HandComputedExample()
    {
        // S = [10, 4, 3, 2, 1] of a 5×8 matrix. Ascending [1, 2, 3, 4, 10]: q25 at position 1 → 2, q75 at 3 → 4;
        // sigma = 2 / 1.349; threshold = sigma·(1 + sqrt(5/8)); signal = 10 + 4 + 3, noise = 2 + 1.
        var score = SpectrumScore.FromSingularValues([10, 4, 3, 2, 1], 5, 8);
        double sigma = 2 / 1.349, threshold = sigma * (1 + Math.Sqrt(5.0 / 8));
        var m = new Mismatches("5×8 example (tolerance 1e-15 relative)");
        m.CheckRelative("Sigma", score.Sigma, sigma, 1e-15);
        m.CheckRelative("Threshold", score.Threshold, threshold, 1e-15);
        m.CheckRelative("Signal", score.Signal, 17, 1e-15);
        m.CheckRelative("Noise", score.Noise, 3, 1e-15);
        m.CheckRelative("Snr", score.Snr, 17.0 / 3, 1e-15);
        m.CheckRelative("Score", score.Score, 17.0 / 3 / 10, 1e-15);
        m.AssertNone();
        Assert.Equal((3, 5, 10.0), (score.SignalCount, score.Count, score.LargestSingularValue));
    }

    [Theory]
    [InlineData(new double[] { 4, 3, 2, 1 }, 0.25, 1.75)]   // numpy.quantile([1,2,3,4], .25)
    [InlineData(new double[] { 4, 3, 2, 1 }, 0.75, 3.25)]
    [InlineData(new double[] { 9, 7, 1 }, 0.25, 4.0)]       // position 0.5 between 1 and 7
    [InlineData(new double[] { 5 }, 0.75, 5.0)]
    [InlineData(new double[] { 10, 0 }, 0.75, 7.5)]
    public void QuantileIsNumpyLinear(double[] descending, double q, double expected) =>
        Assert.Equal(expected, SpectrumScore.QuantileOfDescending(descending, q), 15);

    [Fact]
    public void EmptySpectrumIsUndefined()
    {
        var score = SpectrumScore.FromSingularValues([], 0, 7);
        Assert.True(double.IsNaN(score.Score));
        Assert.Equal(0, score.Count);
    }

    [Fact]
    public void SingleValueScoresOne()
    {
        // sigma = 0 → threshold 0 → all signal → empty noise set → noise 1 → snr = S0 → score = 1.
        var score = SpectrumScore.FromSingularValues([3.5], 1, 50);
        Assert.Equal((1.0, 3.5, 1.0, 1, 1), (score.Score, score.Snr, score.Noise, score.SignalCount, score.Count));
    }

    [Fact]
    public void AllZeroMatrixIsUndefined()
    {
        // signal 0 over a non-empty noise set summing to 0: 0/0.
        var score = SpectrumScore.FromSingularValues([0, 0, 0], 3, 4);
        Assert.True(double.IsNaN(score.Score));
        Assert.Equal((0.0, 0.0, 0.0, 0), (score.Signal, score.Noise, score.LargestSingularValue, score.SignalCount));
    }

    [Theory]
    [InlineData(double.NaN)]
    [InlineData(double.PositiveInfinity)]
    public void NonFiniteValueMakesScoreNaN(double bad)
    {
        var score = SpectrumScore.FromSingularValues([5, bad, 1], 3, 3);
        Assert.True(double.IsNaN(score.Score));
        Assert.True(double.IsNaN(score.Snr));
        Assert.Equal(3, score.Count);
    }

    [Fact]
    public void EmptyNoiseSetUsesNoiseOne()
    {
        // All values equal: IQR 0, threshold 0, every value is signal.
        var score = SpectrumScore.FromSingularValues([2, 2, 2, 2], 4, 4);
        Assert.Equal((1.0, 8.0, 4.0, 4), (score.Noise, score.Snr, score.Score, score.SignalCount));
    }

    [Fact]
    public void NoiseSummingToZeroScoresInfinity()
    {
        var score = SpectrumScore.FromSingularValues([5, 0, 0, 0, 0], 5, 6);
        Assert.Equal(double.PositiveInfinity, score.Score);
    }

    [Fact]
    public void RejectsBadInput()
    {
        Assert.Throws<ArgumentException>(() => SpectrumScore.FromSingularValues([1, 2], 2, 2));     // ascending
        Assert.Throws<ArgumentException>(() => SpectrumScore.FromSingularValues([1, -1], 2, 2));    // negative
        Assert.Throws<ArgumentException>(() => SpectrumScore.FromSingularValues([3, 2, 1], 2, 5));  // count ≠ min side
        Assert.Throws<ArgumentException>(() => SpectrumScore.FromSingularValues([], -1, 5));
    }

    /// <summary>Random descending spectra of 2..60 positive values.</summary>
    private static double[] Spectrum(NonEmptyArray<NormalFloat> raw) =>
        raw.Get.Select(x => Math.Abs(x.Get) + 1e-3).OrderByDescending(x => x).Take(60).ToArray();

    [Property(MaxTest = 200)]
    public bool ScalingSpectrumByCDividesScoreByC(NonEmptyArray<NormalFloat> raw, PositiveInt scaleExponent)
    {
        // score(c·S) = score(S)/c, except when the noise set is empty: then noise is the constant 1, snr = sum(S)
        // scales with c and score = sum(S)/S[0] does not change. Tolerance 1e-12 relative (rounding of the sums).
        var s = Spectrum(raw);
        double c = Math.Pow(2, scaleExponent.Get % 20) * 1.37;
        var scaled = s.Select(x => x * c).ToArray();
        var a = SpectrumScore.FromSingularValues(s, s.Length, s.Length + 3);
        double b = SpectrumScore.FromSingularValues(scaled, s.Length, s.Length + 3).Score;
        double expected = a.SignalCount == a.Count ? a.Score : a.Score / c;
        return Math.Abs(b - expected) <= 1e-12 * Math.Abs(expected);
    }

    [Property(MaxTest = 200)]
    public bool ShapeOrientationDoesNotMatter(NonEmptyArray<NormalFloat> raw, PositiveInt extra)
    {
        var s = Spectrum(raw);
        long other = s.Length + extra.Get % 500;
        return SpectrumScore.FromSingularValues(s, s.Length, other) == SpectrumScore.FromSingularValues(s, other, s.Length);
    }
}
