// Packing: an exact small layout, and FsCheck properties over random examples (nothing lost, lengths, where -100 goes).
using FsCheck;
using FsCheck.Xunit;

namespace Spectrum.Text.Tests;

public sealed class SequencePackerTests
{
    private const int Pad = 0;

    /// <summary>Ids that say where they came from (example e, position i → 1000·(e+1) + i), never equal to Pad.</summary>
    private static TokenizedExample Example(int exampleIndex, int length, Func<int, bool> trained) =>
        new(Enumerable.Range(0, length).Select(i => 1000 * (exampleIndex + 1) + i).ToArray(),
            Enumerable.Range(0, length).Select(trained).ToArray());

    [Fact]
    public void ExamplesThatDoNotFitStartANewRowAndOverlongOnesContinueAcrossRows()
    {
        TokenizedExample a = Example(0, 3, i => i > 0);
        TokenizedExample b = Example(1, 4, _ => true);
        TokenizedExample c = Example(2, 7, i => i % 2 == 0);
        TokenizedExample d = Example(3, 2, _ => false);

        PackedDataset packed = SequencePacker.Pack([a, b, c, d], sequenceLength: 5, padId: Pad);

        const int X = SequencePacker.IgnoreLabel;
        Assert.Equal(
            [
                [1000, 1001, 1002, Pad, Pad],
                [2000, 2001, 2002, 2003, Pad],
                [3000, 3001, 3002, 3003, 3004],
                [3005, 3006, 4000, 4001, Pad],
            ],
            packed.Sequences.Select(s => s.InputIds));
        Assert.Equal(
            [
                [X, 1001, 1002, X, X],
                [2000, 2001, 2002, 2003, X],
                [3000, X, 3002, X, 3004],
                [X, 3006, X, X, X],
            ],
            packed.Sequences.Select(s => s.Labels));
        Assert.Equal([3, 4, 5, 4], packed.Sequences.Select(s => s.TokenCount));
        // Each row numbers its examples from 0 (a continued example is its row's first), padding one past the last.
        Assert.Equal(
            [
                [0, 0, 0, 1, 1],
                [0, 0, 0, 0, 1],
                [0, 0, 0, 0, 0],
                [0, 0, 1, 1, 2],
            ],
            packed.Sequences.Select(s => s.DocumentIds));
        Assert.Equal(4, packed.ExampleCount);
        Assert.Equal(1, packed.SplitExampleCount);
        Assert.Equal(4, packed.PaddingTokenCount);
    }

    [Fact]
    public void NoExamplesGiveNoRows()
    {
        PackedDataset packed = SequencePacker.Pack([], sequenceLength: 8, padId: Pad);

        Assert.Empty(packed.Sequences);
        Assert.Equal(0, packed.ExampleCount);
    }

    [Fact]
    public void RowsShorterThanTwoTokensAreRefused()
    {
        // With labels shifted by the loss, a one-token row can never contribute a target.
        Assert.Throws<ArgumentOutOfRangeException>(() => SequencePacker.Pack([Example(0, 3, _ => true)], 1, Pad));
    }

    private static (TokenizedExample[] Examples, int SequenceLength) Generate(PositiveInt[] lengths, PositiveInt length, int maskSeed)
    {
        TokenizedExample[] examples = lengths
            .Select((n, e) => Example(e, 1 + n.Get % 40, i => (e * 31 + i * 7 + maskSeed) % 3 != 0))
            .ToArray();
        return (examples, 2 + length.Get % 48);
    }

    /// <summary>Within a row, two tokens share a document id exactly when they come from the same example (padding aside), and ids count up from 0.</summary>
    [Property(MaxTest = 300)]
    public void DocumentIdsSeparateExactlyTheExamplesOfARow(PositiveInt[] lengths, PositiveInt sequenceLength, int maskSeed)
    {
        var (examples, length) = Generate(lengths, sequenceLength, maskSeed);
        foreach (PackedSequence row in SequencePacker.Pack(examples, length, Pad).Sequences)
        {
            Assert.Equal(length, row.DocumentIds.Length);
            Assert.Equal(0, row.DocumentIds[0]);
            for (int t = 1; t < length; t++)
            {
                int step = row.DocumentIds[t] - row.DocumentIds[t - 1];
                bool sameExample = t < row.TokenCount && row.InputIds[t] / 1000 == row.InputIds[t - 1] / 1000;
                bool paddingGoesOn = t > row.TokenCount;
                Assert.Equal(sameExample || paddingGoesOn ? 0 : 1, step);
            }
        }
    }

    [Property(MaxTest = 300)]
    public void EveryRowHasExactlyTheSequenceLength(PositiveInt[] lengths, PositiveInt sequenceLength, int maskSeed)
    {
        (TokenizedExample[] examples, int rowLength) = Generate(lengths, sequenceLength, maskSeed);

        PackedDataset packed = SequencePacker.Pack(examples, rowLength, Pad);

        Assert.All(packed.Sequences, row =>
        {
            Assert.Equal(rowLength, row.InputIds.Length);
            Assert.Equal(rowLength, row.Labels.Length);
            Assert.InRange(row.TokenCount, 1, rowLength);
        });
    }

    [Property(MaxTest = 300)]
    public void EveryTokenIsKeptInOrderAndPaddingOnlyFillsRowEnds(PositiveInt[] lengths, PositiveInt sequenceLength, int maskSeed)
    {
        (TokenizedExample[] examples, int rowLength) = Generate(lengths, sequenceLength, maskSeed);

        PackedDataset packed = SequencePacker.Pack(examples, rowLength, Pad, keepUntrainedRows: true);

        Assert.Equal(examples.SelectMany(e => e.InputIds), packed.Sequences.SelectMany(s => s.InputIds.Take(s.TokenCount)));
        Assert.All(packed.Sequences, row => Assert.All(row.InputIds.Skip(row.TokenCount), id => Assert.Equal(Pad, id)));
        Assert.Equal(packed.Sequences.Sum(s => rowLength - s.TokenCount), packed.PaddingTokenCount);
        Assert.Equal(examples.Length, packed.ExampleCount);
        Assert.Equal(examples.Count(e => e.Length > rowLength), packed.SplitExampleCount);
    }

    [Property(MaxTest = 300)]
    public void LabelsAreTheIdWhereTrainedAndIgnoreEverywhereElse(PositiveInt[] lengths, PositiveInt sequenceLength, int maskSeed)
    {
        (TokenizedExample[] examples, int rowLength) = Generate(lengths, sequenceLength, maskSeed);

        PackedDataset packed = SequencePacker.Pack(examples, rowLength, Pad, keepUntrainedRows: true);

        int[] expectedLabels = examples.SelectMany(e => e.InputIds.Select((id, i) => e.LossMask[i] ? id : SequencePacker.IgnoreLabel)).ToArray();
        Assert.Equal(expectedLabels, packed.Sequences.SelectMany(s => s.Labels.Take(s.TokenCount)));
        Assert.All(packed.Sequences, row => Assert.All(row.Labels.Skip(row.TokenCount), l => Assert.Equal(SequencePacker.IgnoreLabel, l)));
        Assert.Equal(examples.Sum(e => e.TrainedTokenCount), packed.TrainedLabelCount);
    }

    /// <summary>Training rows are the whole layout less exactly the rows in which no position has a loss.</summary>
    [Property(MaxTest = 300)]
    public void RowsWithoutAnyLossAreLeftOutAndCounted(PositiveInt[] lengths, PositiveInt sequenceLength, int maskSeed)
    {
        (TokenizedExample[] examples, int rowLength) = Generate(lengths, sequenceLength, maskSeed);
        static bool HasLoss(PackedSequence row) => row.Labels.Skip(1).Any(l => l != SequencePacker.IgnoreLabel);

        PackedDataset all = SequencePacker.Pack(examples, rowLength, Pad, keepUntrainedRows: true);
        PackedDataset training = SequencePacker.Pack(examples, rowLength, Pad);

        Assert.Equal(all.Sequences.Where(HasLoss).Select(r => r.InputIds), training.Sequences.Select(r => r.InputIds));
        Assert.Equal(all.Sequences.Where(HasLoss).Select(r => r.Labels), training.Sequences.Select(r => r.Labels));
        Assert.Equal(all.Sequences.Count(r => !HasLoss(r)), training.UntrainedRowCount);
        Assert.Equal(0, all.UntrainedRowCount);
        Assert.Equal(training.Sequences.Sum(s => rowLength - s.TokenCount), training.PaddingTokenCount);
    }

    [Fact]
    public void APromptLongerThanARowLeavesOnlyTheRowsWithTheResponse()
    {
        // A 12-token prompt and a 2-token response in rows of 5: rows 1-2 are prompt only.
        TokenizedExample example = Example(0, 14, i => i >= 12);

        PackedDataset packed = SequencePacker.Pack([example], sequenceLength: 5, padId: Pad);

        Assert.Equal([[1010, 1011, 1012, 1013, Pad]], packed.Sequences.Select(s => s.InputIds));
        Assert.Equal(2, packed.UntrainedRowCount);
        Assert.Equal(1, packed.SplitExampleCount);
    }

    [Property(MaxTest = 300)]
    public void AnExampleThatFitsIsNeverSplitAcrossRows(PositiveInt[] lengths, PositiveInt sequenceLength, int maskSeed)
    {
        (TokenizedExample[] examples, int rowLength) = Generate(lengths, sequenceLength, maskSeed);

        PackedDataset packed = SequencePacker.Pack(examples, rowLength, Pad, keepUntrainedRows: true);

        // An example's ids are unique to it (see Example), so the rows holding any of them identify where it went.
        foreach (TokenizedExample example in examples.Where(e => e.Length <= rowLength))
        {
            Assert.Single(packed.Sequences, row => row.InputIds.Take(row.TokenCount).Intersect(example.InputIds).Any());
        }
    }
}
