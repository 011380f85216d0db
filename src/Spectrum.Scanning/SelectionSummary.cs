// What a selection means for training: per-type counts and score ranges, trainable parameters, and memory full vs selected.
using Spectrum.Selection;

namespace Spectrum.Scanning;

public sealed record TypeSummary(string Type, int Count, int Selected, double MinScore, double MaxScore);

public sealed record ParameterSummary(long TotalParameters, long TrainableParameters, MemoryEstimate FullFineTuning, MemoryEstimate Selection)
{
    public double TrainableFraction => TotalParameters == 0 ? 0 : (double)TrainableParameters / TotalParameters;
    public double MemoryRatio => FullFineTuning.TotalBytes == 0 ? 0 : (double)Selection.TotalBytes / FullFineTuning.TotalBytes;
}

public sealed record SelectionSummary(
    SelectionResult Selection,
    IReadOnlyList<TypeSummary> Types,
    IReadOnlyList<string> ExtraParameters,
    IReadOnlyList<string> UnfrozenPatterns,
    ParameterSummary? Parameters)
{
    /// <summary>The embedding and output-head parameter names present in a checkpoint, which the reference always unfreezes.</summary>
    public static IReadOnlyList<string> EmbeddingAndHeadParameters(IEnumerable<string> tensorNames)
    {
        string[] known = ["model.embed_tokens.weight", "lm_head.weight"];
        var present = new HashSet<string>(tensorNames, StringComparer.Ordinal);
        return known.Where(present.Contains).ToList();
    }

    /// <summary>Selects the top percent per type and, when the model's tensors are known, counts what Axolotl would unfreeze.</summary>
    public static SelectionSummary Build(
        IReadOnlyList<ModuleScore> scores,
        double percent,
        IReadOnlyList<string> extraParameters,
        IReadOnlyList<(string Name, long Elements)>? modelTensors)
    {
        var selection = TopPercentSelection.Select(scores, percent);
        var types = selection.Types
            .Select(t => new TypeSummary(t.Type, t.Count, t.SelectedCount, t.MinScore, t.MaxScore))
            .ToList();
        if (AxolotlYaml.UnfreezesNothing(selection, extraParameters))
        {
            // Checked here too, so the scan fails before it writes any result file.
            int largestType = selection.Types.Count == 0 ? 0 : selection.Types.Max(t => t.Count);
            throw new ScanException(
                $"Top {percent}% selects no module (the largest type has {largestType} modules, and floor(count × percent / 100) is 0) " +
                "and no embedding or head is unfrozen, so the YAML would train everything. Raise --top-percent.");
        }
        var patterns = AxolotlYaml.Patterns(selection, extraParameters);
        ParameterSummary? parameters = null;
        if (modelTensors is not null)
        {
            long total = modelTensors.Sum(t => t.Elements);
            long trainable = ParameterCounts.Trainable(modelTensors, patterns);
            parameters = new ParameterSummary(total, trainable,
                TrainingMemoryEstimator.Estimate(total, total),
                TrainingMemoryEstimator.Estimate(total, trainable));
        }
        return new SelectionSummary(selection, types, extraParameters, patterns, parameters);
    }
}
