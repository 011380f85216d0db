// Tests of the Gram/eigvalsh engine against svdvals, its guard and escalation, its input contract and determinism.
using TorchSharp;
using static TorchSharp.torch;

namespace Spectrum.Analysis.Tests;

public class SingularValueEngineTests
{
    private static readonly SingularValueEngine Float64 = new(new SingularValueEngineOptions(ForcePrecision: GramPrecision.Float64));
    private static readonly SingularValueEngine Float32 = new(new SingularValueEngineOptions(ForcePrecision: GramPrecision.Float32));
    private static readonly SingularValueEngine Float32First = new(new SingularValueEngineOptions(FirstPrecision: GramPrecision.Float32));

    private static double[] SvdvalsFloat64(Tensor w)
    {
        using var scope = NewDisposeScope();
        return linalg.svdvals(w.to(ScalarType.Float64)).data<double>().ToArray();
    }

    private static double Score(double[] s, Tensor w) => SpectrumScore.FromSingularValues(s, w.shape[0], w.shape[1]).Score;

    [Theory]
    [InlineData(40, 90)]
    [InlineData(90, 40)]
    [InlineData(64, 64)]
    [InlineData(3, 200)]
    [InlineData(530, 700)] // two Gram blocks (512 + 18 rows): the blocked lower-triangle product
    [InlineData(700, 530)]
    public void Float64MatchesSvdvals(int rows, int cols)
    {
        using var scope = NewDisposeScope();
        var w = TestMatrices.Planted(rows, cols, 3, 20, (ulong)(rows * 1000 + cols));
        var expected = SvdvalsFloat64(w);
        var actual = Float64.Compute(w).Descending;
        // Tolerance 1e-7·S[0]: the Gram path's absolute error on a singular value is at most sqrt(δλ) ≈ sqrt(u64·n)·S[0].
        var m = new Mismatches($"{rows}×{cols} float64 Gram vs float64 svdvals (tolerance 1e-7·S[0])");
        for (int i = 0; i < expected.Length; i++) m.Check($"S[{i}]", actual[i], expected[i], 1e-7 * expected[0]);
        m.AssertNone();
        Assert.InRange(Math.Abs(Score(actual, w) / Score(expected, w) - 1), 0, 1e-9);
    }

    [Theory]
    [InlineData("gaussian")]
    [InlineData("planted")]
    [InlineData("lowrank")]
    [InlineData("powerlaw")]
    public void Float32EstimateBoundsTheActualScoreError(string family)
    {
        // The guard's claim: |score(float32 Gram) − score(exact)| ≤ EstimatedScoreRelativeError·|score|.
        using var scope = NewDisposeScope();
        var m = new Mismatches($"{family}: float32 score error vs its own estimate");
        foreach (var (rows, cols, seed) in new[] { (48, 150, 1UL), (150, 48, 2UL), (100, 100, 3UL), (20, 300, 4UL) })
        {
            var w = Family(family, rows, cols, seed);
            var r32 = Float32.Compute(w);
            double exact = Score(SvdvalsFloat64(w), w), actual = Math.Abs(Score(r32.Descending, w) - exact) / Math.Abs(exact);
            if (!(actual <= r32.EstimatedScoreRelativeError))
                m.Add($"{rows}×{cols} seed {seed}: actual {actual:E2} > estimate {r32.EstimatedScoreRelativeError:E2}");
        }
        m.AssertNone();
    }

    internal static Tensor Family(string family, long rows, long cols, ulong seed) => family switch
    {
        "gaussian" => TestMatrices.Gaussian(rows, cols, seed),
        "planted" => TestMatrices.Planted(rows, cols, 4, 20, seed),
        "lowrank" => TestMatrices.LowRankPlusNoise(rows, cols, 6, 1e-3, seed),
        "powerlaw" => TestMatrices.PowerLaw(rows, cols, 1.5, seed),
        _ => throw new ArgumentException(family),
    };

    [Theory]
    [InlineData("lowrank", 120, 60)]
    [InlineData("lowrank", 60, 160)]
    [InlineData("powerlaw", 100, 100)]
    [InlineData("powerlaw", 80, 200)]
    public void GuardEscalatesIllConditionedMatricesToTheFloat64Result(string family, int rows, int cols)
    {
        using var scope = NewDisposeScope();
        var w = Family(family, rows, cols, 11);
        var escalated = Float32First.Compute(w);
        var reference = Float64.Compute(w);
        Assert.True(escalated.Escalated, $"{family} {rows}×{cols} should have been escalated (float32 estimate {Float32.Compute(w).EstimatedScoreRelativeError:E2})");
        Assert.Equal(GramPrecision.Float64, escalated.Precision);
        Assert.Equal(reference.Descending, escalated.Descending); // bit-identical: the escalation is the float64 path
    }

    [Fact]
    public void GuardKeepsFloat32ForWellConditionedRectangularNoise()
    {
        // 64×400 Gaussian: smallest singular value ≈ (20 − 8)/(20 + 8) of the largest, so float32 squaring loses little.
        using var scope = NewDisposeScope();
        var w = TestMatrices.Gaussian(64, 400, 5);
        var result = Float32First.Compute(w);
        Assert.False(result.Escalated, $"estimate {result.EstimatedScoreRelativeError:E2} should be within the budget 1e-5");
        Assert.Equal(GramPrecision.Float32, result.Precision);
        double exact = Score(SvdvalsFloat64(w), w);
        Assert.InRange(Math.Abs(Score(result.Descending, w) / exact - 1), 0, 1e-5);
    }

    [Fact]
    public void SameInputGivesBitIdenticalOutput()
    {
        using var scope = NewDisposeScope();
        var w = TestMatrices.Planted(70, 130, 3, 20, 21);
        foreach (var engine in new[] { Float32, Float64, new SingularValueEngine() })
        {
            var a = engine.Compute(w);
            var b = engine.Compute(w);
            Assert.Equal(a.Descending, b.Descending);
            Assert.Equal(a.EstimatedScoreRelativeError, b.EstimatedScoreRelativeError);
        }
    }

    [Fact]
    public void InputIsNotChanged()
    {
        using var scope = NewDisposeScope();
        var w = TestMatrices.Gaussian(30, 50, 22);
        var before = TestMatrices.ToArray(w);
        var view = w.mT; // a transposed view: non-contiguous input
        Float32.Compute(view);
        Float64.Compute(w);
        Assert.Equal(before, TestMatrices.ToArray(w));   // the view shares w's storage, so this covers it too
    }

    [Fact]
    public void TransposedViewGivesTheSameSpectrum()
    {
        using var scope = NewDisposeScope();
        var w = TestMatrices.Gaussian(30, 50, 23);
        var contiguousT = w.mT.contiguous();
        Assert.Equal(Float64.Compute(w).Descending, Float64.Compute(w.mT).Descending);
        var a = Float64.Compute(contiguousT).Descending;
        var b = Float64.Compute(w).Descending;
        var m = new Mismatches("Wᵀ (copied) vs W, float64 (tolerance 1e-12·S[0])");
        for (int i = 0; i < a.Length; i++) m.Check($"S[{i}]", a[i], b[i], 1e-12 * b[0]);
        m.AssertNone();
    }

    [Theory]
    [InlineData(ScalarType.BFloat16)]
    [InlineData(ScalarType.Float16)]
    [InlineData(ScalarType.Float64)]
    public void OtherDtypesAreScoredAsTheirFloat32Rounding(ScalarType dtype)
    {
        // The method casts to float32 first, so a bf16/f16 input must give exactly what its float32 copy gives, and a
        // float64 input exactly what its float32 rounding gives.
        using var scope = NewDisposeScope();
        var w = TestMatrices.Gaussian(24, 60, 24).to(dtype);
        var asFloat32 = w.to(ScalarType.Float32);
        foreach (var engine in new[] { Float32, Float64 })
            Assert.Equal(engine.Compute(asFloat32).Descending, engine.Compute(w).Descending);
    }

    [Fact]
    public void SpanOverloadsMatchTheTensorPath()
    {
        using var scope = NewDisposeScope();
        var w = TestMatrices.Planted(20, 33, 2, 20, 25);
        float[] values = TestMatrices.ToArray(w);
        var engine = new SingularValueEngine();
        var fromTensor = engine.Score(w);
        Assert.Equal(fromTensor.Snr, engine.Score(values, 20, 33).Snr);
        Assert.Equal(fromTensor.Snr, engine.Score(values.Select(v => (double)v).ToArray(), 20, 33).Snr);
        Assert.Throws<ArgumentException>(() => engine.Score(values, 20, 34));
    }

    [Fact]
    public void RejectsTensorsThatAreNotFloatingMatrices()
    {
        using var scope = NewDisposeScope();
        var engine = new SingularValueEngine();
        Assert.Throws<ArgumentException>(() => engine.Compute(zeros(5)));
        Assert.Throws<ArgumentException>(() => engine.Compute(zeros(2, 3, 4)));
        Assert.Throws<ArgumentException>(() => engine.Compute(zeros(3, 4, ScalarType.Int32)));
    }

    [Fact]
    public void EmptyMatrixHasNoSingularValuesAndNaNScore()
    {
        using var scope = NewDisposeScope();
        var result = new SingularValueEngine().Score(zeros(0, 5));
        Assert.Empty(result.SingularValues.Descending);
        Assert.True(double.IsNaN(result.Snr.Score));
    }

    [Fact]
    public void AllZeroMatrixScoresNaN()
    {
        using var scope = NewDisposeScope();
        var result = new SingularValueEngine().Score(zeros(6, 9));
        Assert.All(result.SingularValues.Descending, s => Assert.Equal(0.0, s));
        Assert.True(double.IsNaN(result.Snr.Score));
    }

    [Fact]
    public void NonFiniteEntryGivesNaNSpectrumAndScore()
    {
        using var scope = NewDisposeScope();
        var w = TestMatrices.Gaussian(6, 9, 26);
        w[2, 3] = tensor(float.NaN);
        foreach (var engine in new[] { Float32, Float64, new SingularValueEngine() })
        {
            var result = engine.Score(w);
            Assert.All(result.SingularValues.Descending, s => Assert.True(double.IsNaN(s)));
            Assert.True(double.IsNaN(result.Snr.Score));
        }
    }

    [Theory]
    [InlineData(4096, 14336, GramPrecision.Float64)] // MLP: float32 would be rejected by the guard at 1e-5 (measured)
    [InlineData(4096, 4096, GramPrecision.Float64)]  // square: eigvalsh dominates, float32 gains little
    [InlineData(1024, 4096, GramPrecision.Float32)]  // GQA k/v: rectangular, moderate
    [InlineData(4096, 1024, GramPrecision.Float32)]
    [InlineData(576, 1536, GramPrecision.Float32)]
    [InlineData(576, 576, GramPrecision.Float64)]
    [InlineData(192, 576, GramPrecision.Float64)]    // float64 costs milliseconds
    [InlineData(0, 10, GramPrecision.Float64)]
    public void PerShapePolicy(long rows, long cols, GramPrecision expected)
    {
        Assert.Equal(expected, SingularValueEngine.InitialPrecisionFor(rows, cols));
        Assert.Equal(expected, SingularValueEngine.InitialPrecisionFor(cols, rows));
    }

    [Fact]
    public void OptionsAreValidatedBeforeAnyWork()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new SingularValueEngine(new SingularValueEngineOptions(ScoreErrorBudget: 0)));
        Assert.Throws<ArgumentOutOfRangeException>(() => new SingularValueEngine(new SingularValueEngineOptions(ScoreErrorBudget: double.NaN)));
        var both = Assert.Throws<ArgumentException>(() => new SingularValueEngine(
            new SingularValueEngineOptions(ForcePrecision: GramPrecision.Float64, FirstPrecision: GramPrecision.Float32)));
        Assert.Contains("ForcePrecision", both.Message);
        Assert.Contains("FirstPrecision", both.Message);
    }
}
