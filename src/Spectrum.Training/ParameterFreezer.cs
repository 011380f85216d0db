// Decides which parameters train: Axolotl's unfrozen_parameters rule for Spectrum, or a predicate for LoRA adapters.
using Spectrum.Selection;
using TorchSharp;
using static TorchSharp.torch;

namespace Spectrum.Training;

/// <param name="Trainable">Parameters left with requires_grad, in the model's parameter order.</param>
/// <param name="TrainableParameters">Elements of those parameters (a row-ranged parameter counts whole, as in Axolotl: its gradient and optimizer state are allocated whole).</param>
/// <param name="TotalParameters">Elements of every parameter.</param>
public sealed record FreezeReport(IReadOnlyList<string> Trainable, long TrainableParameters, long TotalParameters)
{
    /// <summary>Trainable share of all parameter elements; 0 for a model without parameters.</summary>
    public double Fraction => TotalParameters == 0 ? 0 : (double)TrainableParameters / TotalParameters;

    /// <summary>
    /// Parameters that only some rows of should change (patterns with a <c>[start:end]</c> suffix). The trainer zeroes
    /// the other rows' gradients and spares them from weight decay, so they stay bit-identical.
    /// </summary>
    public IReadOnlyDictionary<string, IReadOnlyList<RowRange>> RowRanges { get; init; } =
        new Dictionary<string, IReadOnlyList<RowRange>>(StringComparer.Ordinal);

    /// <summary>Patterns that matched no parameter (normal for the reference's <c>^lm_head.weight$</c> on tied-embedding models).</summary>
    public IReadOnlyList<string> UnmatchedPatterns { get; init; } = [];
}

public static class ParameterFreezer
{
    /// <summary>
    /// Freezes every parameter, then unfreezes those an <c>unfrozen_parameters</c> pattern matches under Axolotl's
    /// rule (<see cref="AxolotlPatternMatcher"/>: dots escaped, <c>re.match</c> anchored at the start). A
    /// <c>[start:end]</c> suffix unfreezes the parameter but records the row range, as Axolotl's gradient hook does.
    /// </summary>
    /// <exception cref="TrainingConfigurationException">
    /// No patterns (Axolotl would silently train everything), an invalid pattern, a row range past the parameter's
    /// rows or on a scalar, or patterns that match no parameter at all (a full freeze would train nothing).
    /// </exception>
    public static FreezeReport Apply(nn.Module model, IReadOnlyList<string> axolotlPatterns)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(axolotlPatterns);
        if (axolotlPatterns.Count == 0)
            throw new TrainingConfigurationException(
                "The unfrozen_parameters list is empty. Axolotl skips freezing for an empty list and trains every parameter; " +
                "pass the patterns from `spectrum select`, or do not freeze at all for full fine-tuning.");
        var matchers = new List<AxolotlPatternMatcher>(axolotlPatterns.Count);
        foreach (string pattern in axolotlPatterns)
        {
            try
            {
                matchers.Add(new AxolotlPatternMatcher(pattern));
            }
            catch (ArgumentException e)
            {
                throw new TrainingConfigurationException(e.Message, e);
            }
        }

        var parameters = UniqueParameters.Of(model);
        var trainable = new HashSet<string>(StringComparer.Ordinal);
        var rowRanges = new Dictionary<string, IReadOnlyList<RowRange>>(StringComparer.Ordinal);
        var usedPatterns = new HashSet<AxolotlPatternMatcher>();
        foreach (var (name, parameter) in parameters)
        {
            var hits = matchers.Where(m => m.Matches(name)).ToList();
            if (hits.Count == 0)
                continue;
            usedPatterns.UnionWith(hits);
            trainable.Add(name);
            // Any whole-parameter pattern wins over ranges, as Axolotl's hook is only installed for ranged-only names.
            if (hits.Any(h => h.Range is null))
                continue;
            rowRanges[name] = hits.Select(h => CheckedRange(h, name, parameter.shape)).ToList();
        }

        if (trainable.Count == 0)
        {
            string sample = string.Join(", ", parameters.Take(4).Select(p => $"\"{p.Name}\""));
            throw new TrainingConfigurationException(
                $"None of the {axolotlPatterns.Count} unfrozen_parameters patterns ({string.Join(", ", axolotlPatterns.Take(4).Select(p => $"\"{p}\""))}" +
                $"{(axolotlPatterns.Count > 4 ? ", ..." : "")}) matches a parameter of this model, so nothing would train. " +
                $"The model's parameters are named like {sample}; check that the YAML was made for this model (same naming, e.g. a " +
                "`base_model.model.` prefix once LoRA wraps it).");
        }

        SetRequiresGrad(model, trainable);
        return Report(parameters, trainable) with
        {
            RowRanges = rowRanges,
            UnmatchedPatterns = matchers.Where(m => !usedPatterns.Contains(m)).Select(m => m.Pattern).ToList(),
        };
    }

    /// <summary><see cref="Apply"/> with the <c>unfrozen_parameters</c> list of a YAML file (an Axolotl config or `spectrum select` output).</summary>
    /// <exception cref="ScanResultsException">The file is missing or malformed, or an entry is not a usable pattern; with its line.</exception>
    /// <exception cref="TrainingConfigurationException">As <see cref="Apply"/>.</exception>
    public static FreezeReport ApplyYaml(nn.Module model, string yamlPath)
    {
        ArgumentNullException.ThrowIfNull(model);
        return Apply(model, AxolotlYaml.ReadPatterns(yamlPath));
    }

    /// <summary>Freezes every parameter except those whose full name satisfies <paramref name="isTrainable"/> (e.g. <see cref="LoraLinear.IsAdapterParameter"/>).</summary>
    /// <exception cref="TrainingConfigurationException">The predicate keeps no parameter.</exception>
    public static FreezeReport FreezeAllExcept(nn.Module model, Predicate<string> isTrainable)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(isTrainable);
        var parameters = UniqueParameters.Of(model);
        var trainable = parameters.Select(p => p.Name).Where(name => isTrainable(name)).ToHashSet(StringComparer.Ordinal);
        if (trainable.Count == 0)
            throw new TrainingConfigurationException(
                $"The trainable-parameter predicate accepts none of the model's {parameters.Count} parameters, so nothing would train. " +
                "For LoRA, wrap the target modules (LoraInjection.Apply) before freezing.");
        SetRequiresGrad(model, trainable);
        return Report(parameters, trainable);
    }

    /// <summary>The whole freezing rule: requires_grad is true exactly for the named parameters.</summary>
    public static void SetRequiresGrad(nn.Module model, IReadOnlySet<string> trainable)
    {
        foreach (var (name, parameter) in UniqueParameters.Of(model))
            parameter.requires_grad = trainable.Contains(name);
    }

    private static FreezeReport Report(IReadOnlyList<(string Name, TorchSharp.Modules.Parameter Parameter)> parameters, IReadOnlySet<string> trainable)
    {
        long total = 0, trainableCount = 0;
        foreach (var (name, parameter) in parameters)
        {
            total = checked(total + parameter.numel());
            if (trainable.Contains(name))
                trainableCount = checked(trainableCount + parameter.numel());
        }
        return new FreezeReport(parameters.Select(p => p.Name).Where(trainable.Contains).ToList(), trainableCount, total);
    }

    private static RowRange CheckedRange(AxolotlPatternMatcher matcher, string name, long[] shape)
    {
        var range = matcher.Range!.Value;
        if (shape.Length == 0)
            throw new TrainingConfigurationException(
                $"The pattern \"{matcher.Pattern}\" gives the scalar parameter \"{name}\" a row range; a scalar has no rows. Remove the range.");
        long rows = shape[0];
        if (range.Start >= rows || range.End > rows)
            throw new TrainingConfigurationException(
                $"The pattern \"{matcher.Pattern}\" unfreezes rows [{range.Start}:{range.End?.ToString() ?? ""}] of \"{name}\", which has " +
                $"{rows} rows (shape [{string.Join(", ", shape)}]). Fix the range to lie within 0..{rows}.");
        return range;
    }
}
