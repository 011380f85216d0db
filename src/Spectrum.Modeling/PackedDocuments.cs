// Packed rows hold several documents: per-token document ids become the positions and the attention pairs that keep them apart.
using TorchSharp;
using static TorchSharp.torch;

namespace Spectrum.Modeling;

/// <summary>
/// Document ids are (batch, seq) int64; a document is a run of equal consecutive ids in a row (so ids may repeat in
/// other runs without joining them). As Axolotl's sample packing and Hugging Face's flattening collator do, each
/// document gets positions from 0 and attends only to itself, so a packed row trains as its documents would alone.
/// </summary>
public static class PackedDocuments
{
    /// <exception cref="ArgumentException">Not int64 or not shaped like the input ids.</exception>
    public static void Validate(Tensor documentIds, Tensor inputIds)
    {
        ArgumentNullException.ThrowIfNull(documentIds);
        if (documentIds.dtype != ScalarType.Int64 || !documentIds.shape.SequenceEqual(inputIds.shape))
            throw new ArgumentException(
                $"document ids must be an int64 tensor shaped like the input ids [{string.Join(", ", inputIds.shape)}]; " +
                $"found {documentIds.dtype} [{string.Join(", ", documentIds.shape)}].", nameof(documentIds));
    }

    /// <summary>(batch, seq) int64: the index of each token within its document.</summary>
    public static Tensor Positions(Tensor documentIds)
    {
        using var scope = torch.NewDisposeScope();
        var index = torch.arange(documentIds.shape[^1], dtype: ScalarType.Int64, device: documentIds.device).expand_as(documentIds);
        var startIndex = torch.where(RunStarts(documentIds), index, torch.zeros_like(index));
        var (latestStart, _) = torch.cummax(startIndex, 1);
        return index.sub(latestStart).MoveToOuterDisposeScope();
    }

    /// <summary>(batch, 1, seq, seq) bool: true where query i may attend key j — j ≤ i and both in one document.</summary>
    public static Tensor AllowedPairs(Tensor documentIds)
    {
        using var scope = torch.NewDisposeScope();
        long seq = documentIds.shape[^1];
        var run = RunStarts(documentIds).to(ScalarType.Int64).cumsum(1);                    // (batch, seq) run number
        var sameDocument = run.unsqueeze(2).eq(run.unsqueeze(1));                           // (batch, query, key)
        var causal = torch.ones(seq, seq, dtype: ScalarType.Bool, device: documentIds.device).tril_();
        return sameDocument.logical_and(causal).unsqueeze(1).MoveToOuterDisposeScope();
    }

    /// <summary>(batch, seq) bool: true at the first token of each run.</summary>
    private static Tensor RunStarts(Tensor documentIds)
    {
        long seq = documentIds.shape[^1];
        var first = torch.ones(documentIds.shape[0], 1, dtype: ScalarType.Bool, device: documentIds.device);
        return seq == 1 ? first : torch.cat([first, documentIds.narrow(1, 1, seq - 1).ne(documentIds.narrow(1, 0, seq - 1))], 1);
    }
}
