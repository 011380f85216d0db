// Checks a written selection the way it will be used: which parameters Axolotl would really unfreeze.
namespace Spectrum.Selection;

/// <param name="Unfrozen">Parameters the patterns unfreeze, in input order.</param>
/// <param name="Unexpected">Unfrozen parameters that belong to no selected module and are not an extra name.</param>
/// <param name="Missed">Parameters of selected modules, or extra names, that the patterns leave frozen.</param>
/// <param name="ModulesWithoutParameters">Selected modules with no parameter at all in the model (scan and model disagree).</param>
public sealed record SelectionCheck(
    IReadOnlyList<string> Unfrozen,
    IReadOnlyList<string> Unexpected,
    IReadOnlyList<string> Missed,
    IReadOnlyList<string> ModulesWithoutParameters)
{
    /// <summary>True when the patterns unfreeze exactly the selected modules' parameters plus the extras.</summary>
    public bool IsExact => Unexpected.Count == 0 && Missed.Count == 0 && ModulesWithoutParameters.Count == 0;
}

public static class SelectionVerifier
{
    /// <summary>
    /// The parameters Axolotl leaves trainable with these <c>unfrozen_parameters</c>, in input order. An empty
    /// pattern list returns every parameter: Axolotl skips freezing altogether when the list is empty
    /// (<c>if cfg.unfrozen_parameters:</c>), which is full fine-tuning.
    /// </summary>
    public static IReadOnlyList<string> UnfrozenParameters(IReadOnlyList<string> patterns, IEnumerable<string> parameterNames)
    {
        ArgumentNullException.ThrowIfNull(patterns);
        ArgumentNullException.ThrowIfNull(parameterNames);
        if (patterns.Count == 0)
            return parameterNames.ToList();
        var matchers = patterns.Select(p => new AxolotlPatternMatcher(p)).ToList();
        return parameterNames.Where(name => matchers.Any(m => m.Matches(name))).ToList();
    }

    /// <summary>
    /// Renders the selection's patterns (<see cref="AxolotlYaml.Patterns"/>) and compares what they unfreeze among
    /// <paramref name="parameterNames"/> with what was meant: every parameter whose module
    /// (<see cref="ModuleTypes.ModuleNameOf"/>) was selected, plus <paramref name="extraParameterNames"/>.
    /// </summary>
    public static SelectionCheck Check(SelectionResult selection, IReadOnlyList<string> extraParameterNames,
        IReadOnlyList<string> parameterNames)
    {
        ArgumentNullException.ThrowIfNull(selection);
        ArgumentNullException.ThrowIfNull(extraParameterNames);
        ArgumentNullException.ThrowIfNull(parameterNames);
        var patterns = AxolotlYaml.Patterns(selection, extraParameterNames);
        var unfrozen = UnfrozenParameters(patterns, parameterNames);
        var unfrozenSet = unfrozen.ToHashSet(StringComparer.Ordinal);

        var selectedModules = selection.SelectedModules.ToHashSet(StringComparer.Ordinal);
        var extras = extraParameterNames.ToHashSet(StringComparer.Ordinal);
        var intended = parameterNames
            .Where(name => extras.Contains(name) || selectedModules.Contains(ModuleTypes.ModuleNameOf(name)))
            .ToHashSet(StringComparer.Ordinal);
        var present = parameterNames.ToHashSet(StringComparer.Ordinal);
        var modulesPresent = parameterNames.Select(ModuleTypes.ModuleNameOf).ToHashSet(StringComparer.Ordinal);

        return new SelectionCheck(
            unfrozen,
            unfrozen.Where(name => !intended.Contains(name)).ToList(),
            parameterNames.Where(intended.Contains).Where(name => !unfrozenSet.Contains(name))
                .Concat(extraParameterNames.Where(name => !present.Contains(name)))
                .ToList(),
            selection.SelectedModules.Where(module => !modulesPresent.Contains(module)).ToList());
    }
}
