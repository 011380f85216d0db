// Packs tokenized examples into fixed-length training sequences with Hugging Face-style labels.
namespace Spectrum.Text;

/// <summary>
/// One training row of exactly the packed length. <see cref="Labels"/> are aligned with <see cref="InputIds"/>, not
/// shifted (Labels[i] is InputIds[i] or <see cref="SequencePacker.IgnoreLabel"/>), as Hugging Face does: the loss
/// compares the prediction at position i-1 with Labels[i], so Labels[0] never counts. Positions from
/// <see cref="TokenCount"/> on are padding. <see cref="DocumentIds"/> numbers the examples in the row 0, 1, 2, …
/// (the padding after them one more), for training that keeps packed examples from attending to each other.
/// </summary>
public sealed record PackedSequence(int[] InputIds, int[] Labels, int TokenCount, int[] DocumentIds);

/// <summary>The packed rows and what packing had to do to fit the examples.</summary>
/// <param name="UntrainedRowCount">
/// Rows left out because no position in them has a loss (the prompt-only part of a split example): they cost a step's
/// work and teach nothing, and a batch of only such rows has no loss at all.
/// </param>
public sealed record PackedDataset(
    IReadOnlyList<PackedSequence> Sequences,
    int SequenceLength,
    int ExampleCount,
    int SplitExampleCount,
    int PaddingTokenCount,
    int UntrainedRowCount = 0)
{
    public int TrainedLabelCount => Sequences.Sum(s => s.Labels.Count(label => label != SequencePacker.IgnoreLabel));
}

/// <summary>
/// Greedy packing that drops nothing: examples are placed one after another in their given order (each already ends
/// with EOS, which separates them); an example that does not fit in the space left starts a new row, and the row it
/// leaves is padded. An example longer than a row starts a new row and continues over as many rows as it needs
/// (counted in <see cref="PackedDataset.SplitExampleCount"/>), so no token is truncated; each row's part of it is a
/// document of its own there. A row in which no position has a loss (labels past the first, which nothing predicts) is
/// left out and counted in <see cref="PackedDataset.UntrainedRowCount"/>. Whether packed examples may attend to earlier ones in the same row is the trainer's
/// choice (<see cref="PackedSequence.DocumentIds"/> lets it keep them apart).
/// </summary>
public static class SequencePacker
{
    /// <summary>The label PyTorch's cross-entropy ignores: prompts, BOS and padding.</summary>
    public const int IgnoreLabel = -100;

    /// <param name="keepUntrainedRows">Keep rows without any loss too (the whole layout, for inspection and tests).</param>
    public static PackedDataset Pack(IEnumerable<TokenizedExample> examples, int sequenceLength, int padId, bool keepUntrainedRows = false)
    {
        ArgumentNullException.ThrowIfNull(examples);
        ArgumentOutOfRangeException.ThrowIfLessThan(sequenceLength, 2);
        ArgumentOutOfRangeException.ThrowIfNegative(padId);

        var rows = new List<PackedSequence>();
        var ids = new List<int>(sequenceLength);
        var labels = new List<int>(sequenceLength);
        var documents = new List<int>(sequenceLength);
        int exampleCount = 0, splitCount = 0, paddingCount = 0, untrainedCount = 0;
        int document = -1;   // the current example's number within the current row

        void FinishRow()
        {
            int tokenCount = ids.Count;
            if (keepUntrainedRows || labels.Skip(1).Any(label => label != IgnoreLabel))
            {
                paddingCount += sequenceLength - tokenCount;
                while (ids.Count < sequenceLength)
                {
                    ids.Add(padId);
                    labels.Add(IgnoreLabel);
                    documents.Add(document + 1);
                }
                rows.Add(new PackedSequence([.. ids], [.. labels], tokenCount, [.. documents]));
            }
            else
            {
                untrainedCount++;
            }
            ids.Clear();
            labels.Clear();
            documents.Clear();
            document = 0;   // a split example continues as the next row's first document
        }

        foreach (TokenizedExample example in examples)
        {
            exampleCount++;
            bool fitsInOneRow = example.Length <= sequenceLength;
            if (ids.Count > 0 && (!fitsInOneRow || ids.Count + example.Length > sequenceLength))
            {
                FinishRow();
            }
            if (!fitsInOneRow)
            {
                splitCount++;
            }
            document = ids.Count == 0 ? 0 : document + 1;
            for (int i = 0; i < example.Length; i++)
            {
                if (ids.Count == sequenceLength)
                {
                    FinishRow();
                }
                ids.Add(example.InputIds[i]);
                labels.Add(example.LossMask[i] ? example.InputIds[i] : IgnoreLabel);
                documents.Add(document);
            }
        }
        if (ids.Count > 0)
        {
            FinishRow();
        }
        return new PackedDataset(rows, sequenceLength, exampleCount, splitCount, paddingCount, untrainedCount);
    }
}
