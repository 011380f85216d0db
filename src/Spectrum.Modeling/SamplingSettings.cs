// How the next token is drawn when sampling: transformers' temperature, top-k and top-p warpers, in their order, and a seed.
using System.Globalization;
using TorchSharp;
using static TorchSharp.torch;

namespace Spectrum.Modeling;

/// <summary>
/// The same knobs and meanings as transformers' generate with do_sample: logits are divided by
/// <see cref="Temperature"/>, then only the <see cref="TopK"/> most likely tokens are kept (0: all; ties with the k-th
/// are kept too), then only the most likely tokens whose probabilities add up to <see cref="TopP"/> (the one that crosses
/// it included; 1: all), and the next token is drawn from what is left, renormalised. <see cref="Seed"/> fixes the draws.
/// </summary>
public sealed record SamplingSettings(double Temperature = 1.0, int TopK = 0, double TopP = 1.0, long Seed = 0)
{
    /// <summary>Why these settings cannot sample (a non-positive temperature, top-p outside (0, 1], …), or null when they can.</summary>
    public string? Problem() =>
        !(Temperature > 0) || double.IsInfinity(Temperature) ? $"temperature must be a positive number; found {Format(Temperature)} (for greedy decoding do not sample)"
        : TopK < 0 ? $"top-k must be 0 (no limit) or a positive count; found {TopK}"
        : !(TopP > 0 && TopP <= 1) ? $"top-p must be in (0, 1]; found {Format(TopP)}"
        : null;

    /// <summary>
    /// Logits (vocab) or (rows, vocab), float32 → the probabilities the next token is drawn from, same shape: zero for
    /// every token the warpers remove, the rest a softmax of the tempered logits.
    /// </summary>
    /// <exception cref="ArgumentException">The settings cannot sample (<see cref="Problem"/>).</exception>
    public Tensor Probabilities(Tensor logits)
    {
        ArgumentNullException.ThrowIfNull(logits);
        if (Problem() is { } problem)
            throw new ArgumentException($"Cannot sample: {problem}.");
        using var scope = torch.NewDisposeScope();
        var scores = logits.to(ScalarType.Float32).div(Temperature);
        long vocab = scores.shape[^1];
        if (TopK > 0 && TopK < vocab)
        {
            var kth = scores.topk(TopK, dim: -1).values.narrow(-1, TopK - 1, 1);             // (…, 1) the k-th largest
            scores = scores.masked_fill(scores.lt(kth), double.NegativeInfinity);
        }
        if (TopP < 1)
        {
            // Ascending order: drop the least likely tokens while what they add up to stays within 1 - top_p;
            // the most likely token is always kept.
            var (sorted, order) = scores.sort(dim: -1, descending: false);
            var cumulative = sorted.softmax(-1).cumsum(-1);
            var dropSorted = cumulative.le(1 - TopP);
            dropSorted.narrow(-1, vocab - 1, 1).fill_(false);
            var drop = torch.zeros_like(dropSorted).scatter_(-1, order, dropSorted);
            scores = scores.masked_fill(drop, double.NegativeInfinity);
        }
        return scores.softmax(-1).MoveToOuterDisposeScope();
    }

    private static string Format(double value) => value.ToString("R", CultureInfo.InvariantCulture);
}
