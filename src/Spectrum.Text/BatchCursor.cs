// Where training is in the data: epoch and position, with a seeded order per epoch, saved and restored for resume.
namespace Spectrum.Text;

/// <summary>
/// Everything needed to continue exactly where a run stopped; plain values so System.Text.Json writes it as is.
/// <see cref="Index"/> counts the items of epoch <see cref="Epoch"/> already handed out.
/// </summary>
public sealed record CursorState(int Epoch, int Index, int ItemCount, int BatchSize, int Seed);

/// <summary>
/// Hands out batches of item indices (rows of a packed dataset). Each epoch visits every item once, in an order that
/// depends only on (seed, epoch), so a cursor restored from <see cref="State"/> produces exactly the batches the
/// original would have. The last batch of an epoch holds whatever is left (it may be smaller); batches never mix epochs.
/// </summary>
public sealed class BatchCursor
{
    private int[]? _order;
    private int _orderEpoch = -1;

    public BatchCursor(int itemCount, int batchSize, int seed)
        : this(new CursorState(0, 0, itemCount, batchSize, seed))
    {
    }

    private BatchCursor(CursorState state)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(state.ItemCount, nameof(state.ItemCount));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(state.BatchSize, nameof(state.BatchSize));
        ArgumentOutOfRangeException.ThrowIfNegative(state.Epoch, nameof(state.Epoch));
        if (state.Index < 0 || state.Index > state.ItemCount)
        {
            throw new ArgumentOutOfRangeException(nameof(state), state.Index,
                $"The cursor's Index must lie between 0 and ItemCount ({state.ItemCount}).");
        }
        State = state;
    }

    public CursorState State { get; private set; }

    public int Epoch => State.Epoch;

    /// <summary>Restores a saved cursor, checking it was saved for a dataset of the same size.</summary>
    public static BatchCursor Restore(CursorState state, int itemCount)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.ItemCount != itemCount)
        {
            throw new ArgumentException(
                $"The saved cursor was made for {state.ItemCount} items but the dataset now has {itemCount}; " +
                "resume with the same data and sequence length, or start a new run.", nameof(itemCount));
        }
        return new BatchCursor(state);
    }

    public int[] NextBatch()
    {
        CursorState state = State;
        if (state.Index == state.ItemCount)
        {
            state = state with { Epoch = state.Epoch + 1, Index = 0 };
        }
        int[] order = OrderOf(state.Epoch, state);
        int count = Math.Min(state.BatchSize, state.ItemCount - state.Index);
        int[] batch = order.AsSpan(state.Index, count).ToArray();
        State = state with { Index = state.Index + count };
        return batch;
    }

    private int[] OrderOf(int epoch, CursorState state)
    {
        if (_orderEpoch != epoch)
        {
            _order = SeededRandom.ForStream(state.Seed, epoch).Permutation(state.ItemCount);
            _orderEpoch = epoch;
        }
        return _order!;
    }
}
