// Small seeded instruction datasets with learnable structure, for demos and benchmarks that must not download data.
using System.Text.Json;

namespace Spectrum.Text;

/// <summary>Task families of <see cref="SyntheticCorpus"/>; each has one fixed instruction and an exact answer.</summary>
public enum SyntheticTask
{
    /// <summary>"37+58" → "95": two numbers from 0 to 99.</summary>
    Addition,
    /// <summary>"cat" → "dbu": every letter one place on, z wrapping to a.</summary>
    LetterShift,
    /// <summary>"k07" → "amber heron": a key → value table fixed by the seed, so the task is memorisation.</summary>
    KeyValueRecall,
    /// <summary>"red fox jumps" → "jumps fox red".</summary>
    WordReversal,
}

public sealed record SyntheticExample(SyntheticTask Task, string Instruction, string Input, string Answer)
{
    public InstructionRecord ToRecord(string filePath, int lineNumber) => new(Instruction, Input, Answer, filePath, lineNumber);

    /// <summary>The example as one JSONL line in the instruction format <see cref="TrainingRecords"/> reads.</summary>
    public string ToJsonLine() =>
        JsonSerializer.Serialize(new Dictionary<string, string> { ["instruction"] = Instruction, ["input"] = Input, ["output"] = Answer });
}

/// <summary>
/// Deterministic corpora: the same task, count and seed always give the same examples, on any machine. Answers follow
/// from the input by a fixed rule (or, for recall, a fixed table), so a fine-tuned model's exact-match accuracy
/// (<see cref="TaskAccuracy"/>) shows whether training worked. Validation examples may repeat training inputs; for
/// recall that is the point (the table is what is learned).
/// </summary>
public static class SyntheticCorpus
{
    public const string AdditionInstruction = "Add the two numbers.";
    public const string LetterShiftInstruction = "Shift every letter one place forward in the alphabet (z becomes a).";
    public const string KeyValueInstruction = "What value is stored under this key?";
    public const string WordReversalInstruction = "Reverse the order of the words.";
    public const int KeyCount = 32;

    private static readonly string[] Words =
    [
        "red", "blue", "green", "fox", "owl", "river", "stone", "quick", "slow", "jumps", "sings", "over", "under",
        "bright", "cold", "warm", "tree", "cloud", "moon", "sun",
    ];

    private static readonly string[] Adjectives = ["amber", "silver", "quiet", "rapid", "golden", "hollow", "bitter", "gentle"];
    private static readonly string[] Animals = ["heron", "otter", "lynx", "falcon", "badger", "salmon", "beetle", "moth"];

    public static IReadOnlyList<SyntheticExample> Generate(SyntheticTask task, int count, int seed)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        return Examples(task, seed).Take(count).ToList();
    }

    /// <summary>count examples taken in turn from each task, in the order given; each task's examples are those of Generate.</summary>
    public static IReadOnlyList<SyntheticExample> GenerateMixed(IReadOnlyList<SyntheticTask> tasks, int count, int seed)
    {
        ArgumentOutOfRangeException.ThrowIfZero(tasks.Count);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        var streams = tasks.Distinct().ToDictionary(task => task, task => Examples(task, seed).GetEnumerator());
        var mixed = new List<SyntheticExample>(count);
        for (int i = 0; i < count; i++)
        {
            IEnumerator<SyntheticExample> stream = streams[tasks[i % tasks.Count]];
            stream.MoveNext();
            mixed.Add(stream.Current);
        }
        return mixed;
    }

    private static IEnumerable<SyntheticExample> Examples(SyntheticTask task, int seed)
    {
        // Streams 100+ keep corpus draws apart from the split (-1), the recall table (-2) and epoch orders (0, 1, ...).
        var random = SeededRandom.ForStream(seed, 100 + (int)task);
        string[] recallTable = RecallTable(seed);
        while (true)
        {
            yield return task switch
            {
                SyntheticTask.Addition => Addition(random),
                SyntheticTask.LetterShift => LetterShift(random),
                SyntheticTask.KeyValueRecall => Recall(random, recallTable),
                SyntheticTask.WordReversal => WordReversal(random),
                _ => throw new ArgumentOutOfRangeException(nameof(task), task, "Unknown synthetic task."),
            };
        }
    }

    public static void WriteJsonl(string path, IEnumerable<SyntheticExample> examples) =>
        File.WriteAllLines(path, examples.Select(e => e.ToJsonLine()));

    private static SyntheticExample Addition(SeededRandom random)
    {
        int a = random.NextInt(100), b = random.NextInt(100);
        return new SyntheticExample(SyntheticTask.Addition, AdditionInstruction, $"{a}+{b}", (a + b).ToString());
    }

    private static SyntheticExample LetterShift(SeededRandom random)
    {
        char[] word = new char[random.NextInt(3, 7)];
        for (int i = 0; i < word.Length; i++)
        {
            word[i] = (char)('a' + random.NextInt(26));
        }
        string shifted = new(word.Select(c => (char)('a' + (c - 'a' + 1) % 26)).ToArray());
        return new SyntheticExample(SyntheticTask.LetterShift, LetterShiftInstruction, new string(word), shifted);
    }

    private static SyntheticExample Recall(SeededRandom random, string[] table)
    {
        int key = random.NextInt(table.Length);
        return new SyntheticExample(SyntheticTask.KeyValueRecall, KeyValueInstruction, $"k{key:D2}", table[key]);
    }

    private static SyntheticExample WordReversal(SeededRandom random)
    {
        string[] words = Enumerable.Range(0, random.NextInt(3, 6)).Select(_ => random.Pick(Words)).ToArray();
        return new SyntheticExample(SyntheticTask.WordReversal, WordReversalInstruction, string.Join(' ', words),
            string.Join(' ', words.Reverse()));
    }

    /// <summary>The key → value table of a seed: value i is an adjective and an animal, different seeds different tables.</summary>
    public static string[] RecallTable(int seed)
    {
        var random = SeededRandom.ForStream(seed, -2);
        return Enumerable.Range(0, KeyCount).Select(_ => $"{random.Pick(Adjectives)} {random.Pick(Animals)}").ToArray();
    }
}
