// Counts total and trainable parameters from a model's tensor list, deciding "trainable" exactly as Axolotl would.
namespace Spectrum.Selection;

/// <param name="Total">Elements of every tensor.</param>
/// <param name="Trainable">Elements of the tensors Axolotl would leave with requires_grad.</param>
/// <param name="TrainableTensors">Names of those tensors, in input order.</param>
public sealed record ParameterCountSummary(long Total, long Trainable, IReadOnlyList<string> TrainableTensors);

public static class ParameterCounts
{
    /// <exception cref="ArgumentException">A tensor name repeats or an element count is negative.</exception>
    public static long Total(IEnumerable<(string Name, long Elements)> tensors)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        return CheckedTotal(tensors.ToList());
    }

    /// <summary>The trainable element count of <see cref="Count"/>.</summary>
    public static long Trainable(IEnumerable<(string Name, long Elements)> tensors, IReadOnlyList<string> patterns) =>
        Count(tensors, patterns).Trainable;

    /// <summary>
    /// Elements of every tensor, and of those that <paramref name="patterns"/> unfreeze
    /// (<see cref="SelectionVerifier.UnfrozenParameters"/>; an empty list means Axolotl freezes nothing). A pattern with
    /// a row range still counts its whole tensor: Axolotl sets requires_grad on the whole tensor and only zeroes the
    /// other rows' gradients, so gradients and optimizer state are allocated for all of it.
    /// </summary>
    /// <exception cref="ArgumentException">A tensor name repeats, an element count is negative, or a pattern is invalid.</exception>
    public static ParameterCountSummary Count(IEnumerable<(string Name, long Elements)> tensors, IReadOnlyList<string> patterns)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        ArgumentNullException.ThrowIfNull(patterns);
        var list = tensors.ToList();
        long total = CheckedTotal(list);
        var unfrozen = SelectionVerifier.UnfrozenParameters(patterns, list.Select(t => t.Name)).ToHashSet(StringComparer.Ordinal);
        var trainable = list.Where(t => unfrozen.Contains(t.Name)).ToList();
        long trainableElements = 0;
        foreach (var tensor in trainable)
            trainableElements = checked(trainableElements + tensor.Elements);
        return new ParameterCountSummary(total, trainableElements, trainable.Select(t => t.Name).ToList());
    }

    private static long CheckedTotal(IReadOnlyList<(string Name, long Elements)> tensors)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        long total = 0;
        foreach (var (name, elements) in tensors)
        {
            if (name is null || !seen.Add(name))
                throw new ArgumentException($"Tensor \"{name}\" is listed twice (or has no name); list each tensor of the model once.", nameof(tensors));
            if (elements < 0)
                throw new ArgumentException($"Tensor \"{name}\" has {elements} elements; expected a count of at least 0.", nameof(tensors));
            total = checked(total + elements);
        }
        return total;
    }
}
