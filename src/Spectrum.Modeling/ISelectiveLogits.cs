// The contract a causal language model implements when it can compute logits at chosen positions only (the loss's targets).
using static TorchSharp.torch;

namespace Spectrum.Modeling;

/// <summary>
/// Training on responses only scores a fraction of the positions (an eighth in chat-style data), yet the output head
/// is the largest matrix product of a small model and the vocab-wide softmax the largest tensor: computing both only
/// where a label is set saves that work without changing the loss (Hugging Face's <c>logits_to_keep</c> does the same
/// at inference). The trainer uses this whenever the model offers it.
/// </summary>
public interface ISelectiveLogits
{
    /// <summary>
    /// Logits (n, vocab) float32 at <paramref name="flatPositions"/> (n) int64, indices into the flattened (batch·seq)
    /// grid of <paramref name="inputIds"/> (batch, seq); equal (to rounding) to the same rows of the full forward.
    /// With <paramref name="documentIds"/> (batch, seq) int64, rows pack several documents that must not see each other
    /// (see <see cref="PackedDocuments"/>); null: attention is causal over each whole row.
    /// </summary>
    Tensor LogitsAt(Tensor inputIds, Tensor flatPositions, Tensor? documentIds = null);
}
