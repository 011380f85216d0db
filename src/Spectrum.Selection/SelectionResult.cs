// The outcome of a top-percent selection: per type, every module ranked and how many of the best are kept.
namespace Spectrum.Selection;

/// <param name="Type">Module type, e.g. <c>self_attn.v_proj</c>.</param>
/// <param name="Ranked">Every module of this type, best first (<see cref="ScoreOrder"/>).</param>
/// <param name="SelectedCount">How many of <paramref name="Ranked"/>, from the top, are selected.</param>
public sealed record TypeSelection(string Type, IReadOnlyList<ModuleScore> Ranked, int SelectedCount)
{
    public int SelectedCount { get; } = SelectedCount >= 0 && SelectedCount <= Ranked.Count
        ? SelectedCount
        : throw new ArgumentOutOfRangeException(nameof(SelectedCount), SelectedCount,
            $"Type \"{Type}\" has {Ranked.Count} modules, so between 0 and {Ranked.Count} can be selected.");

    public int Count => Ranked.Count;

    public IReadOnlyList<ModuleScore> Selected => Ranked.Take(SelectedCount).ToList();

    /// <summary>Lowest score of the type ignoring NaN (NaN when every score is NaN or there are none).</summary>
    public double MinScore => Ranked.Where(s => !double.IsNaN(s.Score)).Select(s => s.Score).DefaultIfEmpty(double.NaN).Min();

    /// <summary>Highest score of the type ignoring NaN (NaN when every score is NaN or there are none).</summary>
    public double MaxScore => Ranked.Where(s => !double.IsNaN(s.Score)).Select(s => s.Score).DefaultIfEmpty(double.NaN).Max();
}

/// <param name="Types">One entry per type, in the order each type was first seen in the input.</param>
/// <param name="Percent">The percentage of each type that was asked for, in (0, 100].</param>
public sealed record SelectionResult(IReadOnlyList<TypeSelection> Types, double Percent)
{
    /// <summary>Selected module names: types in order, each type's modules best first (the YAML's order).</summary>
    public IReadOnlyList<string> SelectedModules =>
        Types.SelectMany(t => t.Selected).Select(s => s.Module).ToList();
}
