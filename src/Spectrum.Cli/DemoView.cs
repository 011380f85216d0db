// Renders the demo for people: what is built, how pretraining went, and the full vs Spectrum comparison table.
using System.Globalization;
using Spectre.Console;
using Spectrum.Text;
using Spectrum.Training.Recipes;

namespace Spectrum.Cli;

internal static class DemoView
{
    public static void WriteIntroduction(IAnsiConsole console, DemoPipeline pipeline, string folder)
    {
        var s = pipeline.Size;
        console.MarkupLine($"Building a [bold]{s.Name}[/] demo in [blue]{Markup.Escape(folder)}[/]: a byte-level tokenizer and a Llama model " +
                           $"(hidden {s.HiddenSize}, MLP {s.IntermediateSize}, {s.Layers} layers, tied embeddings), pretrained for {s.PretrainSteps} steps on " +
                           $"{string.Join(", ", DemoPipeline.PretrainTasks)} ({s.BatchSize}×{s.SequenceLength} tokens per step).");
    }

    public static void WritePretraining(IAnsiConsole console, DemoPretraining pretrained) =>
        console.MarkupLine($"Pretrained {pretrained.Config.ParameterCount:N0} parameters in {pretrained.Elapsed.TotalSeconds:F0} s: " +
                           $"loss {pretrained.FirstLoss:F3} → [bold]{pretrained.LastLoss:F3}[/]. Scanning it:");

    public static void WriteComparison(IAnsiConsole console, DemoPipeline pipeline, AccuracyReport before, IReadOnlyList<DemoRun> runs)
    {
        // One column per run and one row per measure, so the comparison fits an 80-column terminal.
        var full = runs.FirstOrDefault(r => r.Method == FineTuneMethod.Full);
        var table = new Table().Border(TableBorder.Rounded)
            .Title($"Fine-tuning on {DemoPipeline.FineTuneTask} ({pipeline.Size.FineTuneSteps} steps), a task absent from pretraining")
            .AddColumn("").AddColumn(new TableColumn("before").RightAligned());
        foreach (var run in runs)
            table.AddColumn(new TableColumn(Markup.Escape(run.Label)).RightAligned());
        string Compared(DemoRun run, string value, double measure, double baseline) =>
            full is null || run == full || !(baseline > 0) ? value : $"{value} ({(measure / baseline).ToString("F2", CultureInfo.InvariantCulture)}×)";
        void Row(string measure, string before, Func<DemoRun, string> cell) =>
            table.AddRow([measure, before, .. runs.Select(cell)]);
        Row("Trainable", "–", r => $"{r.TrainableParameters:N0} ({r.TrainableFraction:P0})");
        Row("Grads + AdamW", "–", r => Compared(r, Mb(r.TrainingStateBytes, "F1"), r.TrainingStateBytes, full?.TrainingStateBytes ?? 0));
        Row("Peak RSS (added)", "–", r => Compared(r, $"{Mb(r.PeakRssBytes)} ({Mb(r.PeakGrowthBytes)})", r.PeakGrowthBytes, full?.PeakGrowthBytes ?? 0));
        Row("s/step", "–", r => Compared(r, r.MedianStepSeconds.ToString("F3", CultureInfo.InvariantCulture), r.MedianStepSeconds, full?.MedianStepSeconds ?? 0));
        Row("Training loss", "–", r => r.FinalLoss.ToString("F3", CultureInfo.InvariantCulture));
        Row("Validation loss", "–", r => r.ValidationLoss is { } v ? v.ToString("F3", CultureInfo.InvariantCulture) : "–");
        Row("[bold]Accuracy[/]", Accuracy(before), r => $"[bold]{Accuracy(r.Accuracy)}[/]");
        console.Write(table);
        bool perRun = runs.All(r => r.PeakIsPerRun);
        console.MarkupLine("[grey]Grads + AdamW: the gradients, AdamW moments and any float32 master weights, read off each run's optimizer — the memory " +
                           "the method decides; at this model size activations and the allocator dominate the process's RSS, at 8B parameters these dominate. " +
                           $"Peak RSS: the process's high-water mark {(perRun ? "during each run (reset before it)" : "so far (this system cannot reset it, so later rows include earlier runs)")}; " +
                           "added: above the resident memory just before the run. Ratios are to full fine-tuning. s/step: median, first step excluded. " +
                           $"Accuracy: exact answers on {pipeline.HeldOutExamples.Count} held-out examples, greedy decoding.[/]");
        console.MarkupLine("Next: [bold]spectrum scan <your model folder>[/], then [bold]spectrum train <folder> --method spectrum --scan <snr_results.json> --top-percent 25 --out run[/], and [bold]spectrum generate run/model --chat --prompt \"…\"[/] to try the result.");
    }

    private static string Accuracy(AccuracyReport report) => $"{report.Correct}/{report.Total} ({report.Accuracy:P0})";

    private static string Mb(long bytes, string format = "F0") => $"{(bytes / 1048576.0).ToString(format, CultureInfo.InvariantCulture)} MiB";
}
