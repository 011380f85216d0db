// Packed batches: rows and labels as packed, document ids only when documents are to be kept apart.
using Spectrum.Text;
using Spectrum.Training.Recipes;

namespace Spectrum.Training.Tests.Recipes;

public sealed class PackedBatchSourceTests
{
    private static PackedDataset Packed() => SequencePacker.Pack(
        [new TokenizedExample([1, 2, 3], [false, true, true]), new TokenizedExample([4, 5], [true, true]), new TokenizedExample([6, 7, 8, 9], [true, true, true, true])],
        sequenceLength: 6, padId: 0);

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void BatchesCarryTheRowsAndDocumentIdsOnlyWhenIsolating(bool isolate)
    {
        var data = Packed();
        var source = new PackedBatchSource(data, batchSize: data.Sequences.Count, seed: 1, isolateDocuments: isolate);
        using var batch = source.Next();
        var rows = Enumerable.Range(0, data.Sequences.Count).ToDictionary(r => data.Sequences[r].InputIds[0]);
        for (int b = 0; b < batch.InputIds.shape[0]; b++)
        {
            var sequence = data.Sequences[rows[(int)batch.InputIds[b, 0].item<long>()]];
            Assert.Equal(sequence.InputIds.Select(i => (long)i), batch.InputIds[b].data<long>().ToArray());
            Assert.Equal(sequence.Labels.Select(i => (long)i), batch.Labels[b].data<long>().ToArray());
            if (isolate)
                Assert.Equal(sequence.DocumentIds.Select(i => (long)i), batch.DocumentIds![b].data<long>().ToArray());
        }
        Assert.Equal(isolate, batch.DocumentIds is not null);
    }

    [Fact]
    public void TargetsThatCrossIntoTheNextDocumentAreDropped()
    {
        using var labels = TorchSharp.torch.tensor(new long[,] { { 7, 8, 9, 10, 11, 12 } });
        using var documents = TorchSharp.torch.tensor(new long[,] { { 0, 0, 1, 1, 1, 2 } });
        using var masked = CausalLmLoss.WithoutDocumentStarts(labels, documents);
        Assert.Equal(new long[] { 7, 8, CausalLmLoss.IgnoreIndex, 10, 11, CausalLmLoss.IgnoreIndex }, masked.data<long>().ToArray());
        Assert.Equal(new long[] { 7, 8, 9, 10, 11, 12 }, labels.data<long>().ToArray());   // the input is not changed
    }
}
