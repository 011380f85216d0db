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
        var table = new Table().Border(TableBorder.Rounded)
            .Title($"Fine-tuning on {DemoPipeline.FineTuneTask} ({pipeline.Size.FineTuneSteps} steps), a task absent from pretraining")
            .AddColumn("Method").AddColumn(new TableColumn("Trainable").RightAligned())
            .AddColumn(new TableColumn("Peak RSS (added)").RightAligned()).AddColumn(new TableColumn("s/step").RightAligned())
            .AddColumn(new TableColumn("Final loss").RightAligned()).AddColumn(new TableColumn("Validation loss").RightAligned())
            .AddColumn(new TableColumn("Accuracy").RightAligned());
        table.AddRow("before fine-tuning", "–", "–", "–", "–", "–", Accuracy(before));
        var full = runs.FirstOrDefault(r => r.Method == FineTuneMethod.Full);
        foreach (var run in runs)
        {
            string ratio = full is null || run == full ? "" : $" ({(double)run.PeakGrowthBytes / full.PeakGrowthBytes:F2}×)";
            string timeRatio = full is null || run == full ? "" : $" ({run.MedianStepSeconds / full.MedianStepSeconds:F2}×)";
            table.AddRow(
                Markup.Escape(run.Label),
                $"{run.TrainableParameters:N0} ({run.TrainableFraction:P0})",
                $"{Mb(run.PeakRssBytes)} ({Mb(run.PeakGrowthBytes)}){ratio}",
                $"{run.MedianStepSeconds:F3}{timeRatio}",
                run.FinalLoss.ToString("F3", CultureInfo.InvariantCulture),
                run.ValidationLoss is { } v ? v.ToString("F3", CultureInfo.InvariantCulture) : "–",
                Accuracy(run.Accuracy));
        }
        console.Write(table);
        bool perRun = runs.All(r => r.PeakIsPerRun);
        console.MarkupLine($"[grey]Peak RSS: the process's high-water mark {(perRun ? "during each run (reset before it)" : "so far (this system cannot reset it, so later rows include earlier runs)")}; " +
                           "added: above the resident memory just before the run, which is what the method itself costs. s/step: median, first step excluded. " +
                           $"Accuracy: exact answers on {pipeline.HeldOutExamples.Count} held-out examples, greedy decoding.[/]");
        console.MarkupLine("Next: [bold]spectrum scan <your model folder>[/], then [bold]spectrum train <folder> --method spectrum --scan <snr_results.json> --top-percent 25[/].");
    }

    private static string Accuracy(AccuracyReport report) => $"{report.Correct}/{report.Total} ({report.Accuracy:P0})";

    private static string Mb(long bytes) => $"{bytes / 1048576.0:F0} MiB";
}
