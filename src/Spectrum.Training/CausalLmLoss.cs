// Next-token cross-entropy as HF computes it: labels aligned with inputs, shifted inside the loss, −100 ignored.
using TorchSharp;
using static TorchSharp.torch;

namespace Spectrum.Training;

public static class CausalLmLoss
{
    public const long IgnoreIndex = -100;

    /// <summary>
    /// Σ over positions t &lt; seq−1 with label[t+1] ≠ −100 of −log softmax(logits[t])[label[t+1]], in float32.
    /// Summing (not averaging) lets gradient accumulation divide by the target count of the whole optimizer step,
    /// as HF does with <c>num_items_in_batch</c>, so k micro-batches equal one batch k times larger.
    /// </summary>
    /// <param name="logits">(batch, seq, vocab).</param>
    /// <param name="labels">(batch, seq) int64.</param>
    public static Tensor SumOverTargets(Tensor logits, Tensor labels)
    {
        RequireShapes(logits, labels);
        using var scope = torch.NewDisposeScope();
        long batch = logits.shape[0], seq = logits.shape[1], vocab = logits.shape[2];
        var predictions = logits.narrow(1, 0, seq - 1).to_type(ScalarType.Float32).reshape(batch * (seq - 1), vocab);  // (b·(s−1), v)
        var targets = labels.narrow(1, 1, seq - 1).reshape(batch * (seq - 1));                                           // (b·(s−1))
        var loss = nn.functional.cross_entropy(predictions, targets, ignore_index: IgnoreIndex, reduction: nn.Reduction.Sum);
        return loss.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The positions that predict a label, as indices into the flattened (batch·seq) grid — t with label[t+1] ≠ −100 —
    /// and those labels: what <see cref="Modeling.ISelectiveLogits.LogitsAt"/> and <see cref="SumOverSelected"/> take.
    /// </summary>
    /// <param name="labels">(batch, seq) int64.</param>
    /// <returns>Positions (n) and targets (n), both int64, in row-major order.</returns>
    public static (Tensor Positions, Tensor Targets) Targets(Tensor labels)
    {
        if (labels.dim() != 2 || labels.dtype != ScalarType.Int64)
            throw new ArgumentException($"Labels must be (batch, seq) int64; got {labels.dtype} [{string.Join(", ", labels.shape)}].", nameof(labels));
        using var scope = torch.NewDisposeScope();
        long seq = labels.shape[1];
        // shifted[b, t] = labels[b, t+1]; the last position predicts nothing.
        var shifted = torch.cat([labels.narrow(1, 1, seq - 1), torch.full(labels.shape[0], 1, IgnoreIndex, dtype: ScalarType.Int64, device: labels.device)], 1)
            .reshape(-1);                                                                           // (b·s)
        var positions = shifted.ne(IgnoreIndex).nonzero().reshape(-1);                              // (n)
        var targets = shifted.index_select(0, positions);                                           // (n)
        return (positions.MoveToOuterDisposeScope(), targets.MoveToOuterDisposeScope());
    }

    /// <summary>Σ −log softmax(logits[i])[targets[i]] in float32; logits (n, vocab) at the positions of <see cref="Targets"/>.</summary>
    public static Tensor SumOverSelected(Tensor logits, Tensor targets)
    {
        if (logits.dim() != 2 || targets.dim() != 1 || logits.shape[0] != targets.shape[0])
            throw new ArgumentException(
                $"Expected logits (n, vocab) and targets (n); got [{string.Join(", ", logits.shape)}] and [{string.Join(", ", targets.shape)}].");
        using var scope = torch.NewDisposeScope();
        return nn.functional.cross_entropy(logits.to_type(ScalarType.Float32), targets, reduction: nn.Reduction.Sum).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Labels with −100 at the first token of every packed document but a row's first (where a document id differs from
    /// the previous token's): that token would be predicted from the previous document, which an isolated document
    /// cannot see. Hugging Face's flattening collator drops the same targets.
    /// </summary>
    /// <param name="labels">(batch, seq) int64.</param>
    /// <param name="documentIds">(batch, seq) int64, as <see cref="Modeling.PackedDocuments"/> reads them.</param>
    public static Tensor WithoutDocumentStarts(Tensor labels, Tensor documentIds)
    {
        using var scope = torch.NewDisposeScope();
        long seq = labels.shape[1];
        var result = labels.clone();
        if (seq > 1)
        {
            var starts = documentIds.narrow(1, 1, seq - 1).ne(documentIds.narrow(1, 0, seq - 1));   // (b, s−1) for t ≥ 1
            result.narrow(1, 1, seq - 1).masked_fill_(starts, IgnoreIndex);
        }
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>Positions that contribute to the loss: labels[:, 1:] ≠ −100.</summary>
    public static long CountTargets(Tensor labels)
    {
        if (labels.dim() != 2)
            throw new ArgumentException($"Labels must be (batch, seq); got [{string.Join(", ", labels.shape)}].", nameof(labels));
        using var scope = torch.NewDisposeScope();
        return labels.narrow(1, 1, labels.shape[1] - 1).ne(IgnoreIndex).sum().item<long>();
    }

    private static void RequireShapes(Tensor logits, Tensor labels)
    {
        if (logits.dim() != 3 || labels.dim() != 2 || logits.shape[0] != labels.shape[0] || logits.shape[1] != labels.shape[1] || logits.shape[1] < 1)
            throw new ArgumentException(
                $"Expected logits (batch, seq, vocab) and labels (batch, seq) with the same batch and seq ≥ 1; got logits " +
                $"[{string.Join(", ", logits.shape)}] and labels [{string.Join(", ", labels.shape)}].");
        if (labels.dtype != ScalarType.Int64)
            throw new ArgumentException($"Labels must be int64 token ids; got {labels.dtype}.", nameof(labels));
    }
}
