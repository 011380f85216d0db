// Generates token ids from a prompt with a KV cache: greedy, or sampled as transformers' generate does.
using TorchSharp;
using static TorchSharp.torch;

namespace Spectrum.Modeling;

/// <summary>What to generate: how many tokens at most, which ids end it, and greedy or sampled choice.</summary>
public sealed record GenerationSettings
{
    /// <summary>At most this many ids are generated (0 generates none).</summary>
    public int MaxNewTokens { get; init; } = 256;

    /// <summary>Generation ends after one of these ids is produced; it is the last id returned.</summary>
    public IReadOnlyCollection<int> StopTokenIds { get; init; } = [];

    /// <summary>Null: greedy (the most likely id each step, as transformers without do_sample).</summary>
    public SamplingSettings? Sampling { get; init; }
}

/// <summary>
/// The prompt runs through the model once, filling a <see cref="KeyValueCache"/>; then each new token is one cached
/// step, so the work per token stays flat instead of growing with the length as a full forward per token would.
/// </summary>
public static class TokenGenerator
{
    /// <summary>
    /// The generated ids (without the prompt), produced one by one as the sequence is enumerated, so a caller can
    /// show them as they come. Arguments are checked at the call; the model is in eval mode while generating and is
    /// handed back in the mode it came in when the enumeration ends.
    /// </summary>
    /// <param name="promptIds">At least one id, each in [0, vocab).</param>
    /// <exception cref="ArgumentException">An empty prompt, an id outside the vocabulary, or sampling settings that cannot sample.</exception>
    public static IEnumerable<int> Generate(LlamaForCausalLM model, IReadOnlyList<int> promptIds, GenerationSettings settings,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(promptIds);
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentOutOfRangeException.ThrowIfNegative(settings.MaxNewTokens);
        if (promptIds.Count == 0)
            throw new ArgumentException("The prompt must hold at least one token id: the first new token is predicted from it.", nameof(promptIds));
        int vocab = model.Config.VocabSize;
        foreach (int id in promptIds)
        {
            if (id < 0 || id >= vocab)
                throw new ArgumentOutOfRangeException(nameof(promptIds), id, $"Prompt token id {id} is outside the model's vocabulary [0, {vocab}).");
        }
        if (settings.Sampling?.Problem() is { } problem)
            throw new ArgumentException($"Cannot sample: {problem}.", nameof(settings));
        return Run(model, promptIds, settings, cancellationToken);
    }

    private static IEnumerable<int> Run(LlamaForCausalLM model, IReadOnlyList<int> promptIds, GenerationSettings settings,
        CancellationToken cancellationToken)
    {
        if (settings.MaxNewTokens == 0)
            yield break;
        var stops = settings.StopTokenIds.ToHashSet();
        Device device = model.parameters().First().device;
        // A generator of the call's own, so the draws depend on the seed alone, not on what else used torch's global one.
        using var random = settings.Sampling is { } sampling ? new Generator((ulong)sampling.Seed, device) : null;
        bool wasTraining = model.training;
        model.eval();
        try
        {
            // The last generated id is never fed back, so the cache needs one position less than prompt + new.
            using var cache = model.CreateCache(promptIds.Count + settings.MaxNewTokens - 1L);
            long[] next = promptIds.Select(id => (long)id).ToArray();
            for (int produced = 0; produced < settings.MaxNewTokens; produced++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                int chosen;
                using (var scope = NewDisposeScope())
                {
                    var ids = torch.tensor(next, dtype: ScalarType.Int64, device: device).unsqueeze(0); // (1, new)
                    var logits = model.NextTokenLogits(ids, cache)[0];                                // (vocab)
                    chosen = settings.Sampling is { } draw
                        ? (int)torch.multinomial(draw.Probabilities(logits), 1, generator: random).item<long>()
                        : (int)logits.argmax().item<long>();
                }
                yield return chosen;
                if (stops.Contains(chosen))
                    yield break;
                next = [chosen];
            }
        }
        finally
        {
            // The caller may be mid-training (e.g. a demo sampling between epochs); hand the model back as it came.
            model.train(wasTraining);
        }
    }
}
