// The data path the trainer runs, end to end on a fixture tokenizer: JSONL → records → split → examples → rows → batches.
using Spectrum.Text.Tests.TestSupport;

namespace Spectrum.Text.Tests;

public sealed class DataPipelineTests
{
    [Theory]
    [InlineData(Fixtures.ByteLevelBpe)]
    [InlineData(Fixtures.SentencePieceBpe)]
    public void SyntheticCorpusBecomesPackedBatchesWithEveryAnswerTrained(string folder)
    {
        using var temp = new TempFolder();
        string path = temp.File("train.jsonl");
        IReadOnlyList<SyntheticExample> corpus = SyntheticCorpus.GenerateMixed(Enum.GetValues<SyntheticTask>(), 40, seed: 1);
        SyntheticCorpus.WriteJsonl(path, corpus);
        ModelTokenizer tokenizer = Fixtures.Tokenizer(folder);

        TrainValidationSplit<TrainingRecord> split = DatasetSplit.Split(TrainingRecords.Load(path), 0.1, seed: 1);
        IReadOnlyList<TokenizedExample> examples = new ExampleTokenizer(tokenizer, ChatTemplate.ChatMl).TokenizeAll(split.Train);
        // SentencePiece Llama models define no pad token; padding is never trained, so EOS serves.
        PackedDataset packed = SequencePacker.Pack(examples, sequenceLength: 128, padId: tokenizer.PadId ?? tokenizer.EosId!.Value);
        var cursor = new BatchCursor(packed.Sequences.Count, batchSize: 2, seed: 1);

        Assert.Equal(36, split.Train.Count);
        Assert.Equal(4, split.Validation.Count);
        Assert.Equal(examples.Sum(e => e.TrainedTokenCount), packed.TrainedLabelCount);
        Assert.Equal(0, packed.SplitExampleCount);
        string trainedText = string.Concat(Enumerable.Range(0, (packed.Sequences.Count + 1) / 2)
            .SelectMany(_ => cursor.NextBatch())
            .Order()
            .Select(row => tokenizer.Decode(packed.Sequences[row].Labels.Where(label => label != SequencePacker.IgnoreLabel))));
        string[] expectedAnswers = split.Train.Cast<InstructionRecord>().Select(r => r.Output + "<|im_end|>").ToArray();
        int position = 0;
        foreach (string answer in expectedAnswers)
        {
            position = trainedText.IndexOf(answer, position, StringComparison.Ordinal);
            Assert.True(position >= 0, $"the trained labels should hold the answer \"{answer}\" in order");
            position += answer.Length;
        }
    }
}
