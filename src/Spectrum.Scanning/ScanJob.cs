// One whole `spectrum scan`: open the checkpoint, score the chosen types, select, and write the result files.
using Spectrum.Analysis;
using Spectrum.Checkpoints;
using Spectrum.Selection;

namespace Spectrum.Scanning;

public sealed record ScanOutcome(ScanReport Report, SelectionSummary Summary, IReadOnlyList<string> WrittenFiles);

public static class ScanJob
{
    public const string ResultsFileName = "snr_results.json";
    public const string SortedResultsFileName = "snr_results_sorted.json";
    public const string YamlFileName = "unfrozen_parameters.yaml";

    public static ScanOutcome Run(
        Checkpoint checkpoint,
        IReadOnlyList<ScanCandidate> candidates,
        ScanOptions options,
        string outputFolder,
        IProgress<ScanProgress>? progress = null,
        CancellationToken cancellation = default)
    {
        if (options.TopPercent is <= 0 or > 100)
            throw new ScanException($"--top-percent must be in (0, 100]; got {options.TopPercent}.");
        var engine = new SingularValueEngine(options.EngineOptions);
        var report = new SpectrumScanner(engine).Scan(checkpoint, candidates, progress, cancellation);
        var summary = Summarize(checkpoint, report.Scores, options);
        var written = WriteOutputs(outputFolder, report.Scores, summary);
        return new ScanOutcome(report, summary, written);
    }

    public static SelectionSummary Summarize(Checkpoint checkpoint, IReadOnlyList<ModuleScore> scores, ScanOptions options)
    {
        var names = checkpoint.Tensors.Select(t => t.Name).ToList();
        var extras = options.IncludeEmbeddingsAndHead ? SelectionSummary.EmbeddingAndHeadParameters(names) : [];
        var tensors = checkpoint.Tensors.Select(t => (t.Name, t.ElementCount)).ToList();
        return SelectionSummary.Build(scores, options.TopPercent, extras, tensors);
    }

    /// <summary>Writes the reference's flat and sorted JSON and the Axolotl YAML; each file appears whole or not at all.</summary>
    public static IReadOnlyList<string> WriteOutputs(string outputFolder, IReadOnlyList<ModuleScore> scores, SelectionSummary summary)
    {
        Directory.CreateDirectory(outputFolder);
        string flat = Path.Combine(outputFolder, ResultsFileName);
        string sorted = Path.Combine(outputFolder, SortedResultsFileName);
        string yaml = Path.Combine(outputFolder, YamlFileName);
        ScanResultsJson.WriteFlat(flat, scores);
        ScanResultsJson.WriteSorted(sorted, summary.Selection);
        AxolotlYaml.Write(yaml, summary.Selection, summary.ExtraParameters);
        return [flat, sorted, yaml];
    }
}
