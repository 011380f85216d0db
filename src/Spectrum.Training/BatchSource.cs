// What the trainer consumes: batches of token ids with aligned labels, from a source that can save and restore its position.
using static TorchSharp.torch;

namespace Spectrum.Training;

/// <summary>
/// One micro-batch. <paramref name="InputIds"/> (batch, seq) int64; <paramref name="Labels"/> (batch, seq) int64,
/// aligned with the inputs (label[t] is token t itself, HF style) with <see cref="CausalLmLoss.IgnoreIndex"/> where
/// no loss is wanted; the loss shifts them by one. <paramref name="DocumentIds"/>: null, or (batch, seq) int64 marking
/// the documents packed into each row, which then attend only to themselves (<see cref="Modeling.PackedDocuments"/>).
/// The trainer disposes a batch once used.
/// </summary>
public sealed record Batch(Tensor InputIds, Tensor Labels, Tensor? DocumentIds = null) : IDisposable
{
    public void Dispose()
    {
        InputIds.Dispose();
        Labels.Dispose();
        DocumentIds?.Dispose();
    }
}

/// <summary>
/// An endless stream of batches whose position can be saved and restored exactly, so a resumed run sees the same
/// batches as an uninterrupted one. Implementations must keep their own random state (inside the saved JSON) and
/// never draw from torch's global generator, which drives dropout.
/// </summary>
public interface IBatchSource
{
    Batch Next();

    /// <summary>The position after the last batch returned, as opaque JSON.</summary>
    string SaveState();

    /// <summary>Continues from a position produced by <see cref="SaveState"/>.</summary>
    void RestoreState(string state);
}

/// <summary>Optional for a batch source that knows how many epochs it has delivered; the trainer logs and saves it.</summary>
public interface IEpochAware
{
    double Epoch { get; }
}
