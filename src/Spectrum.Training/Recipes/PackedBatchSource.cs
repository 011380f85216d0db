// Feeds the trainer batches of packed sequences in a seeded order per epoch, with a position that saves to JSON for resume.
using System.Text.Json;
using Spectrum.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace Spectrum.Training.Recipes;

/// <summary>
/// Endless batches over <see cref="PackedDataset.Sequences"/>: <see cref="BatchCursor"/> picks the rows (every row once
/// per epoch; the last batch of an epoch may be smaller), and its <see cref="CursorState"/> is the saved position.
/// No torch random state is touched, so dropout's generator stays the trainer's alone.
/// </summary>
public sealed class PackedBatchSource : IBatchSource, IEpochAware
{
    private readonly PackedDataset _data;
    private readonly bool _isolateDocuments;
    private BatchCursor _cursor;

    /// <param name="isolateDocuments">True: batches carry each row's document ids, so packed examples do not attend to each other.</param>
    public PackedBatchSource(PackedDataset data, int batchSize, int seed, bool isolateDocuments)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (data.Sequences.Count == 0)
            throw new ArgumentException("The packed dataset has no rows to train on.", nameof(data));
        _data = data;
        _isolateDocuments = isolateDocuments;
        _cursor = new BatchCursor(data.Sequences.Count, batchSize, seed);
    }

    /// <summary>Fractional epochs delivered so far.</summary>
    public double Epoch => _cursor.State.Epoch + (double)_cursor.State.Index / _cursor.State.ItemCount;

    public Batch Next()
    {
        int[] rows = _cursor.NextBatch();
        int length = _data.SequenceLength;
        var ids = new long[rows.Length * length];
        var labels = new long[rows.Length * length];
        var documents = new long[_isolateDocuments ? rows.Length * length : 0];
        for (int r = 0; r < rows.Length; r++)
        {
            var sequence = _data.Sequences[rows[r]];
            for (int t = 0; t < length; t++)
            {
                ids[r * length + t] = sequence.InputIds[t];
                labels[r * length + t] = sequence.Labels[t];
                if (_isolateDocuments)
                    documents[r * length + t] = sequence.DocumentIds[t];
            }
        }
        // (batch, seq) int64 each; labels aligned with inputs, −100 where no loss is wanted.
        return new Batch(torch.tensor(ids, [rows.Length, length]), torch.tensor(labels, [rows.Length, length]),
            _isolateDocuments ? torch.tensor(documents, [rows.Length, length]) : null);
    }

    public string SaveState() => JsonSerializer.Serialize(_cursor.State);

    /// <exception cref="TrainingConfigurationException">The state is not a cursor position, or was saved for a different number of rows.</exception>
    public void RestoreState(string state)
    {
        CursorState? saved;
        try
        {
            saved = JsonSerializer.Deserialize<CursorState>(state);
        }
        catch (JsonException e)
        {
            throw new TrainingConfigurationException($"The saved data position is not a cursor state: {e.Message}", e);
        }
        if (saved is null)
            throw new TrainingConfigurationException("The saved data position is empty.");
        try
        {
            _cursor = BatchCursor.Restore(saved, _data.Sequences.Count);
        }
        catch (ArgumentException e)
        {
            throw new TrainingConfigurationException(e.Message, e);
        }
    }
}
