// Exact-match accuracy of generated answers, overall and per synthetic task, for demos and benchmarks.
namespace Spectrum.Text;

public sealed record AccuracyReport(int Correct, int Total, IReadOnlyDictionary<SyntheticTask, (int Correct, int Total)> ByTask)
{
    public double Accuracy => Total == 0 ? 0 : (double)Correct / Total;
}

/// <summary>
/// An answer counts when it equals the expected one after trimming surrounding whitespace; nothing else is forgiven
/// (case, inner spaces, extra words), so the number means the model really does the task. Decode generations without
/// special tokens and stop at the end-of-turn token before scoring.
/// </summary>
public static class TaskAccuracy
{
    public static bool IsCorrect(string expected, string generated) =>
        string.Equals(expected.Trim(), generated.Trim(), StringComparison.Ordinal);

    public static AccuracyReport Score(IReadOnlyList<SyntheticExample> examples, IReadOnlyList<string> generated)
    {
        if (examples.Count != generated.Count)
        {
            throw new ArgumentException($"{examples.Count} examples but {generated.Count} generated answers; give one answer per example.");
        }
        var byTask = new Dictionary<SyntheticTask, (int Correct, int Total)>();
        int correct = 0;
        for (int i = 0; i < examples.Count; i++)
        {
            bool right = IsCorrect(examples[i].Answer, generated[i]);
            correct += right ? 1 : 0;
            (int taskCorrect, int taskTotal) = byTask.GetValueOrDefault(examples[i].Task);
            byTask[examples[i].Task] = (taskCorrect + (right ? 1 : 0), taskTotal + 1);
        }
        return new AccuracyReport(correct, examples.Count, byTask);
    }
}
