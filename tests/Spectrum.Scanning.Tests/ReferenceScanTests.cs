// End-to-end: our scan of a checkpoint written by an independent PyTorch script matches that script's published-method scores.
using System.Text.Json;
using Spectrum.Analysis;
using Spectrum.Checkpoints;
using Spectrum.Selection;
using Xunit.Abstractions;

namespace Spectrum.Scanning.Tests;

public sealed class ReferenceScanTests(ITestOutputHelper output)
{
    /// <summary>The acceptance bound: every score within 1e-4 relative of float32 torch.linalg.svdvals.</summary>
    private const double ScoreRelativeTolerance = 1e-4;

    private static readonly string ModelFolder = RepositoryPaths.Fixture("scan", "model");

    [Theory]
    [InlineData(null)]
    [InlineData(GramPrecision.Float32)]
    [InlineData(GramPrecision.Float64)]
    public void Every_score_matches_the_pytorch_reference(GramPrecision? precision)
    {
        var expected = ScanResultsJson.Read(RepositoryPaths.Fixture("scan", "expected_snr_results.json"));
        var report = Scan(precision);

        Assert.Equal(expected.Select(e => e.Module), report.Modules.Select(m => m.Module));
        var mismatches = new List<string>();
        foreach (var (want, got) in expected.Zip(report.Modules))
        {
            Assert.Equal(want.Type, got.Type);
            double relative = Math.Abs(got.Score - want.Score) / Math.Abs(want.Score);
            if (!(relative <= ScoreRelativeTolerance))
                mismatches.Add($"{want.Module}: ours {got.Score:R} reference {want.Score:R} (relative {relative:E2}, precision {got.Precision})");
        }
        foreach (var line in mismatches.Take(10)) output.WriteLine(line);
        Assert.Empty(mismatches);
    }

    [Theory]
    [InlineData(25)]
    [InlineData(50)]
    public void Selection_equals_the_reference_selection(int percent)
    {
        using var file = File.OpenRead(RepositoryPaths.Fixture("scan", "expected_selection.json"));
        var expected = JsonSerializer.Deserialize<Dictionary<string, string[]>>(file)![percent.ToString()];
        var selection = TopPercentSelection.Select(Scan(null).Scores, percent);
        Assert.Equal(expected.OrderBy(m => m, StringComparer.Ordinal), selection.SelectedModules.OrderBy(m => m, StringComparer.Ordinal));
    }

    [Fact]
    public void Checkpoint_agrees_with_its_config()
    {
        using var checkpoint = Checkpoint.Open(ModelFolder);
        checkpoint.ValidateAgainstConfig();
        Assert.Equal(2, checkpoint.ShardPaths.Count);
    }

    private static ScanReport Scan(GramPrecision? precision)
    {
        using var checkpoint = Checkpoint.Open(ModelFolder);
        var candidates = ModuleCatalog.Discover(checkpoint, includeVectors: false, groupExperts: true).Choose(null);
        var engine = new SingularValueEngine(new SingularValueEngineOptions { ForcePrecision = precision });
        return new SpectrumScanner(engine).Scan(checkpoint, candidates);
    }
}
