// Compares our spectra and scores with the independent PyTorch/numpy reference, per precision mode.
using static TorchSharp.torch;

namespace Spectrum.Analysis.Tests;

public class ReferenceFixtureTests
{
    public static IEnumerable<object[]> Names() => ReferenceFixtures.Names();

    [Fact]
    public void FixturesArePresent() => Assert.True(ReferenceFixtures.Fixtures.Count >= 12, $"{ReferenceFixtures.Fixtures.Count} fixtures found");

    [Theory]
    [MemberData(nameof(Names))]
    public void FormulaOnReferenceSpectraMatchesThePythonTranscription(string name)
    {
        // Same singular values in, so only the formula is compared: tolerance 1e-12 relative.
        var f = ReferenceFixtures.Get(name);
        var m = new Mismatches($"{name}: C# formula vs Python transcription (tolerance 1e-12 relative)");
        foreach (var (spectrum, expected, label) in new[] { (f.SvdvalsFloat32, f.FromFloat32, "float32"), (f.SvdvalsFloat64, f.FromFloat64, "float64") })
        {
            var s = SpectrumScore.FromSingularValues(spectrum, f.Rows, f.Cols);
            m.CheckRelative($"{label} Sigma", s.Sigma, expected.Sigma, 1e-12);
            m.CheckRelative($"{label} Threshold", s.Threshold, expected.Threshold, 1e-12);
            m.CheckRelative($"{label} Signal", s.Signal, expected.Signal, 1e-12);
            m.CheckRelative($"{label} Noise", s.Noise, expected.Noise, 1e-12);
            m.CheckRelative($"{label} Snr", s.Snr, expected.Snr, 1e-12);
            m.CheckRelative($"{label} Score", s.Score, expected.Score, 1e-12);
            if (s.SignalCount != expected.SignalCount) m.Add($"{label} SignalCount {s.SignalCount} vs {expected.SignalCount}");
        }
        m.AssertNone();
    }

    public static IEnumerable<object[]> NamesByMode() =>
        from f in ReferenceFixtures.Fixtures
        from mode in new[] { "Float64", "Float32", "Float32First" }
        select new object[] { f.Name, mode };

    private static SingularValueEngine Engine(string mode) => mode switch
    {
        "Float64" => new(new SingularValueEngineOptions(ForcePrecision: GramPrecision.Float64)),
        "Float32" => new(new SingularValueEngineOptions(ForcePrecision: GramPrecision.Float32)),
        "Float32First" => new(new SingularValueEngineOptions(FirstPrecision: GramPrecision.Float32)), // guard + escalation
        _ => throw new ArgumentException(mode),
    };

    [Theory]
    [MemberData(nameof(NamesByMode))]
    public void SpectrumAndScoreMatchTheReference(string name, string mode)
    {
        using var scope = NewDisposeScope();
        var f = ReferenceFixtures.Get(name);
        var result = Engine(mode).Score(ReferenceFixtures.Matrix(f));
        var s = result.SingularValues.Descending;
        double top = f.SvdvalsFloat64[0];
        var m = new Mismatches($"{name} in {mode} (precision used: {result.SingularValues.Precision}, " +
                               $"estimate {result.SingularValues.EstimatedScoreRelativeError:E2})");

        if (result.SingularValues.Precision == GramPrecision.Float64)
        {
            // Tolerances: 1e-7·S[0] vs float64 svdvals (Gram rounding moves a tiny σ by ≤ sqrt(u64·n)·S[0]);
            // 2e-6·S[0] vs float32 svdvals (its own error is a few u32·S[0]).
            for (int i = 0; i < s.Length; i++)
            {
                m.Check($"S[{i}] vs float64 svdvals", s[i], f.SvdvalsFloat64[i], 1e-7 * top);
                m.Check($"S[{i}] vs float32 svdvals", s[i], f.SvdvalsFloat32[i], 2e-6 * top);
            }
            m.CheckRelative("Score vs float64 reference (1e-7)", result.Snr.Score, f.FromFloat64.Score, 1e-7);
            m.CheckRelative("Score vs float32 reference (1e-4)", result.Snr.Score, f.FromFloat32.Score, 1e-4);
        }
        else
        {
            // A float32 Gram result is only as good as its error model: every σ must lie in the model's interval
            // around the float64 svdvals value (plus 1e-7·S[0] for that reference), and the score within the estimate.
            double[] ascending = s.Reverse().Select(x => x * x).ToArray();
            double[] errors = SingularValueEngine.EigenvalueErrorModel(GramPrecision.Float32, s.Length, Math.Max(f.Rows, f.Cols), ascending);
            for (int i = 0; i < s.Length; i++)
            {
                double lambda = s[i] * s[i], e = errors[s.Length - 1 - i];
                double width = Math.Sqrt(lambda + e) - Math.Sqrt(Math.Max(lambda - e, 0));
                m.Check($"S[{i}] vs float64 svdvals (model width {width:E2})", s[i], f.SvdvalsFloat64[i], width + 1e-7 * top);
            }
            double estimate = result.SingularValues.EstimatedScoreRelativeError;
            m.CheckRelative($"Score vs float64 reference (its estimate {estimate:E2})", result.Snr.Score, f.FromFloat64.Score, estimate + 1e-7);
            if (mode == "Float32First") // the guarantee: what the guard keeps is within 1e-4 of the reference
                m.CheckRelative("Score vs float32 reference (1e-4)", result.Snr.Score, f.FromFloat32.Score, 1e-4);
        }
        m.AssertNone();
    }
}
