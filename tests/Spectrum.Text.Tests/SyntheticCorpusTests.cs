// Synthetic corpora: reproducible from the seed, answers that follow the rule, JSONL that loads, and exact-match scoring.
using Spectrum.Text.Tests.TestSupport;

namespace Spectrum.Text.Tests;

public sealed class SyntheticCorpusTests
{
    [Theory]
    [InlineData(SyntheticTask.Addition)]
    [InlineData(SyntheticTask.LetterShift)]
    [InlineData(SyntheticTask.KeyValueRecall)]
    [InlineData(SyntheticTask.WordReversal)]
    public void SameSeedSameExamplesOtherSeedOthers(SyntheticTask task)
    {
        Assert.Equal(SyntheticCorpus.Generate(task, 50, seed: 1), SyntheticCorpus.Generate(task, 50, seed: 1));
        Assert.NotEqual(SyntheticCorpus.Generate(task, 50, seed: 1), SyntheticCorpus.Generate(task, 50, seed: 2));
    }

    [Fact]
    public void AdditionAnswersAreTheSum()
    {
        Assert.All(SyntheticCorpus.Generate(SyntheticTask.Addition, 200, seed: 3), example =>
        {
            int[] terms = example.Input.Split('+').Select(int.Parse).ToArray();
            Assert.All(terms, t => Assert.InRange(t, 0, 99));
            Assert.Equal((terms[0] + terms[1]).ToString(), example.Answer);
            Assert.Equal(SyntheticCorpus.AdditionInstruction, example.Instruction);
        });
    }

    [Fact]
    public void LetterShiftMovesEveryLetterOnAndWrapsZ()
    {
        Assert.All(SyntheticCorpus.Generate(SyntheticTask.LetterShift, 200, seed: 3), example =>
        {
            Assert.InRange(example.Input.Length, 3, 6);
            Assert.Equal(example.Input.Length, example.Answer.Length);
            Assert.All(example.Input.Zip(example.Answer), pair => Assert.Equal(pair.First == 'z' ? 'a' : (char)(pair.First + 1), pair.Second));
        });
    }

    [Fact]
    public void RecallAnswersComeFromTheSeedsTable()
    {
        string[] table = SyntheticCorpus.RecallTable(seed: 4);
        IReadOnlyList<SyntheticExample> examples = SyntheticCorpus.Generate(SyntheticTask.KeyValueRecall, 300, seed: 4);

        Assert.All(examples, example => Assert.Equal(table[int.Parse(example.Input[1..])], example.Answer));
        Assert.True(examples.Select(e => e.Input).Distinct().Count() > SyntheticCorpus.KeyCount / 2, "keys should vary");
        Assert.NotEqual(table, SyntheticCorpus.RecallTable(seed: 5));
    }

    [Fact]
    public void WordReversalReversesTheWords()
    {
        Assert.All(SyntheticCorpus.Generate(SyntheticTask.WordReversal, 100, seed: 3), example =>
            Assert.Equal(example.Input.Split(' ').Reverse(), example.Answer.Split(' ')));
    }

    [Fact]
    public void MixedCorpusTakesTasksInTurnWithEachTasksOwnExamples()
    {
        SyntheticTask[] tasks = [SyntheticTask.Addition, SyntheticTask.WordReversal];

        IReadOnlyList<SyntheticExample> mixed = SyntheticCorpus.GenerateMixed(tasks, 7, seed: 9);

        Assert.Equal(Enumerable.Range(0, 7).Select(i => tasks[i % 2]), mixed.Select(e => e.Task));
        Assert.Equal(SyntheticCorpus.Generate(SyntheticTask.Addition, 4, seed: 9), mixed.Where(e => e.Task == SyntheticTask.Addition));
    }

    [Fact]
    public void WrittenJsonlLoadsAsInstructionRecords()
    {
        using var folder = new TempFolder();
        string path = folder.File("synthetic.jsonl");
        IReadOnlyList<SyntheticExample> examples = SyntheticCorpus.GenerateMixed(Enum.GetValues<SyntheticTask>(), 12, seed: 2);

        SyntheticCorpus.WriteJsonl(path, examples);
        IReadOnlyList<TrainingRecord> records = TrainingRecords.Load(path);

        Assert.Equal(examples.Select((e, i) => e.ToRecord(path, i + 1)), records);
    }

    [Fact]
    public void AccuracyCountsExactAnswersOverallAndPerTask()
    {
        SyntheticExample[] examples =
        [
            new(SyntheticTask.Addition, "Add.", "1+1", "2"),
            new(SyntheticTask.Addition, "Add.", "2+2", "4"),
            new(SyntheticTask.WordReversal, "Reverse.", "a b", "b a"),
        ];

        AccuracyReport report = TaskAccuracy.Score(examples, [" 2\n", "5", "b  a"]);

        Assert.Equal(1, report.Correct);
        Assert.Equal(3, report.Total);
        Assert.Equal(1.0 / 3, report.Accuracy, 12);
        Assert.Equal((1, 2), report.ByTask[SyntheticTask.Addition]);
        Assert.Equal((0, 1), report.ByTask[SyntheticTask.WordReversal]);
    }

    [Fact]
    public void AccuracyNeedsOneAnswerPerExample()
    {
        Assert.Throws<ArgumentException>(() => TaskAccuracy.Score([new(SyntheticTask.Addition, "Add.", "1+1", "2")], []));
    }
}
