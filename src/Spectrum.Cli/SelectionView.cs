// Renders a selection for people: per-type table, what training only these modules saves, and the files written.
using System.Globalization;
using Spectre.Console;
using Spectrum.Scanning;

namespace Spectrum.Cli;

internal static class SelectionView
{
    public static void Write(IAnsiConsole console, SelectionSummary summary, IReadOnlyList<string> writtenFiles)
    {
        var table = new Table().Border(TableBorder.Rounded)
            .Title($"Top {summary.Selection.Percent.ToString(CultureInfo.InvariantCulture)}% per module type")
            .AddColumn("Type").AddColumn(new TableColumn("Modules").RightAligned())
            .AddColumn(new TableColumn("Selected").RightAligned()).AddColumn(new TableColumn("Score range").RightAligned())
            .AddColumn("Selected layers, best first");
        foreach (var type in summary.Selection.Types)
        {
            table.AddRow(
                Markup.Escape(type.Type),
                type.Count.ToString(CultureInfo.InvariantCulture),
                type.SelectedCount.ToString(CultureInfo.InvariantCulture),
                $"{Format(type.MinScore)} – {Format(type.MaxScore)}",
                Markup.Escape(string.Join(", ", type.Selected.Select(m => LayerOf(m.Module)))));
        }
        console.Write(table);

        if (summary.Parameters is { } p)
        {
            console.MarkupLine(
                $"Trainable parameters: [bold]{p.TrainableParameters:N0}[/] of {p.TotalParameters:N0} " +
                $"([bold]{100 * p.TrainableFraction:F1}%[/]){(summary.ExtraParameters.Count > 0 ? $", including {Markup.Escape(string.Join(" and ", summary.ExtraParameters))}" : "")}.");
            console.MarkupLine(
                $"Estimated training memory (weights + gradients + AdamW, bf16 mixed precision, activations excluded): " +
                $"full fine-tuning [bold]{Gib(p.FullFineTuning.TotalBytes)}[/], this selection [bold]{Gib(p.Selection.TotalBytes)}[/] " +
                $"([green]{100 * (1 - p.MemoryRatio):F0}% less[/]).");
        }
        foreach (var file in writtenFiles) console.MarkupLine($"Wrote [blue]{Markup.Escape(file)}[/]");
    }

    /// <summary>The layer number of a module inside numbered layers (`model.layers.12.mlp.up_proj` → 12), else the module name.</summary>
    private static string LayerOf(string module) =>
        module.Split('.').FirstOrDefault(part => part.Length > 0 && part.All(char.IsAsciiDigit)) ?? module;

    private static string Format(double score) =>
        double.IsNaN(score) ? "NaN" : double.IsInfinity(score) ? (score > 0 ? "inf" : "-inf") : score.ToString("G4", CultureInfo.InvariantCulture);

    private static string Gib(long bytes) => bytes >= 1L << 30
        ? $"{bytes / (double)(1L << 30):F2} GiB"
        : $"{bytes / (double)(1L << 20):F1} MiB";
}
