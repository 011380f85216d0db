// `spectrum demo`: the README's first command; generates a small Llama checkpoint with planted signal and scans it.
using System.ComponentModel;
using Spectre.Console;
using Spectre.Console.Cli;
using Spectrum.Checkpoints;
using Spectrum.Scanning;

namespace Spectrum.Cli.Commands;

public sealed class DemoSettings : CommandSettings
{
    [CommandOption("--keep <DIR>")]
    [Description("Write the synthetic checkpoint into DIR and keep it (default: a temporary folder, deleted afterwards).")]
    public string? Keep { get; init; }

    [CommandOption("-o|--out <DIR>")]
    [Description("Folder for the scan's result files.")]
    [DefaultValue("spectrum-out")]
    public string Out { get; init; } = "spectrum-out";

    [CommandOption("--top-percent <N>")]
    [Description("Select the top N% of each type.")]
    [DefaultValue(25.0)]
    public double TopPercent { get; init; } = 25;
}

public sealed class DemoCommand(IAnsiConsole console) : Command<DemoSettings>
{
    public override int Execute(CommandContext context, DemoSettings settings, CancellationToken cancellationToken)
    {
        string folder = settings.Keep ?? Path.Combine(Path.GetTempPath(), $"spectrum-demo-{Guid.NewGuid():N}");
        try
        {
            var shape = LlamaShape.Demo;
            console.MarkupLine($"Writing a synthetic [bold]{shape.Name}[/] Llama checkpoint ({shape.Layers} layers, hidden {shape.HiddenSize}, " +
                               $"MLP {shape.IntermediateSize}, bf16, 2 shards) with planted low-rank signal to [blue]{Markup.Escape(folder)}[/]");
            SyntheticLlama.Write(folder, shape, SafetensorsDType.BF16, maxShardBytes: shape.ParameterCount, seed: 7);
            using var checkpoint = Checkpoint.Open(folder);
            var options = new ScanOptions { TopPercent = settings.TopPercent };
            var candidates = ModuleCatalog.Discover(checkpoint, false, true).Choose(null);
            var outcome = ScanProgressView.Run(console, progress =>
                ScanJob.Run(checkpoint, candidates, options, settings.Out, progress, cancellationToken));
            SelectionView.Write(console, outcome.Summary, outcome.WrittenFiles);
            console.MarkupLine($"Scanned {candidates.Count} matrices in {outcome.Report.Elapsed.TotalSeconds:F1} s. " +
                               "Next: [bold]spectrum scan <your model folder>[/].");
            return ExitCodes.Success;
        }
        finally
        {
            if (settings.Keep is null && Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
    }
}
