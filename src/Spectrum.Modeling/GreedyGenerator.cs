// Greedy decoding for small demo models: one full forward pass per new token, no KV cache, no sampling.
using static TorchSharp.torch;

namespace Spectrum.Modeling;

/// <summary>
/// Each step runs the whole prompt plus what was generated so far through the model and appends the argmax of the last
/// position's logits. Without a KV cache the cost grows with the square of the length, which is fine for the tiny
/// models of the built-in demo and a few dozen tokens, not for real models or long outputs.
/// </summary>
public static class GreedyGenerator
{
    /// <param name="promptIds">At least one id, each in [0, vocab).</param>
    /// <param name="maxNewTokens">At most this many ids are generated (0 returns none).</param>
    /// <param name="stopTokenId">Generation ends after this id is produced; it is the last id returned.</param>
    /// <returns>The generated ids only, without the prompt.</returns>
    public static IReadOnlyList<int> Generate(LlamaForCausalLM model, IReadOnlyList<int> promptIds, int maxNewTokens,
        int? stopTokenId)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(promptIds);
        ArgumentOutOfRangeException.ThrowIfNegative(maxNewTokens);
        int vocab = model.Config.VocabSize;
        if (promptIds.Count == 0)
        {
            throw new ArgumentException("The prompt must hold at least one token id: the first new token is predicted from it.",
                nameof(promptIds));
        }
        foreach (int id in promptIds)
        {
            if (id < 0 || id >= vocab)
            {
                throw new ArgumentOutOfRangeException(nameof(promptIds), id,
                    $"Prompt token id {id} is outside the model's vocabulary [0, {vocab}).");
            }
        }

        var sequence = promptIds.Select(id => (long)id).ToList();
        var generated = new List<int>(maxNewTokens);
        Device device = model.parameters().First().device;
        bool wasTraining = model.training;
        model.eval();
        try
        {
            using var noGrad = no_grad();
            while (generated.Count < maxNewTokens)
            {
                using var scope = NewDisposeScope();
                Tensor ids = tensor(sequence.ToArray(), dtype: ScalarType.Int64, device: device).unsqueeze(0); // (1, seq)
                Tensor logits = model.forward(ids);                                                           // (1, seq, vocab)
                int next = (int)logits[0, -1].argmax().item<long>();
                generated.Add(next);
                sequence.Add(next);
                if (next == stopTokenId)
                {
                    break;
                }
            }
        }
        finally
        {
            // The caller may be mid-training (e.g. a demo sampling between epochs); hand the model back as it came.
            model.train(wasTraining);
        }
        return generated;
    }
}
