// `spectrum demo`: the README's first command; pretrains a small model on generated tasks, scans it, and compares full and Spectrum fine-tuning.
using System.ComponentModel;
using Spectre.Console;
using Spectre.Console.Cli;
using Spectrum.Checkpoints;
using Spectrum.Scanning;
using Spectrum.Training.Recipes;

namespace Spectrum.Cli.Commands;

public sealed class DemoSettings : CommandSettings
{
    [CommandOption("--keep <DIR>")]
    [Description("Write the generated data, tokenizer and models into DIR and keep them (default: a temporary folder, deleted afterwards).")]
    public string? Keep { get; init; }

    [CommandOption("-o|--out <DIR>")]
    [Description("Folder for the scan's result files.")]
    [DefaultValue("spectrum-out")]
    public string Out { get; init; } = "spectrum-out";

    [CommandOption("--top-percent <N>")]
    [Description("Select the top N% of each type, and fine-tune those with Spectrum.")]
    [DefaultValue(25.0)]
    public double TopPercent { get; init; } = 25;

    [CommandOption("--quick")]
    [Description("Tiny model and a few steps: checks that every stage runs, in seconds; the model learns little.")]
    public bool Quick { get; init; }

    public override ValidationResult Validate()
    {
        if (TopPercent is not (> 0 and <= 100))
            return ValidationResult.Error($"--top-percent must be in (0, 100]; got {TopPercent}.");
        // The demo writes models and data with fixed names there; it must not mix with, or replace, what is already in it.
        if (Keep is not null && Directory.Exists(Keep) && Directory.EnumerateFileSystemEntries(Keep).Any())
            return ValidationResult.Error($"--keep {Keep} is not empty; the demo writes its data and models there. Choose a new or empty folder.");
        return base.Validate();
    }
}

public sealed class DemoCommand(IAnsiConsole console) : Command<DemoSettings>
{
    public override int Execute(CommandContext context, DemoSettings settings, CancellationToken cancellationToken)
    {
        string folder = settings.Keep ?? Path.Combine(Path.GetTempPath(), $"spectrum-demo-{Guid.NewGuid():N}");
        try
        {
            var pipeline = new DemoPipeline(new DemoOptions
            {
                WorkFolder = folder, Size = settings.Quick ? DemoSize.Quick : DemoSize.Standard, TopPercent = settings.TopPercent,
            });
            DemoView.WriteIntroduction(console, pipeline, folder);
            var pretrained = TrainProgressView.Run(console, (onPlan, onProgress) =>
                pipeline.Pretrain(onPlan, onProgress, cancellationToken));
            DemoView.WritePretraining(console, pretrained);

            using (var checkpoint = Checkpoint.Open(pretrained.ModelFolder))
            {
                var candidates = ModuleCatalog.Discover(checkpoint, false, true).Choose(null);
                var outcome = ScanProgressView.Run(console, progress =>
                    ScanJob.Run(checkpoint, candidates, new ScanOptions { TopPercent = settings.TopPercent }, settings.Out, progress, cancellationToken));
                SelectionView.Write(console, outcome.Summary, outcome.WrittenFiles);
            }

            var before = pipeline.EvaluatePretrained();
            string scanResults = Path.Combine(settings.Out, ScanJob.ResultsFileName);
            var runs = pipeline.Methods.Select(m => TrainProgressView.Run(console, (onPlan, onProgress) =>
                pipeline.FineTune(m.Label, m.Method, scanResults, onPlan, onProgress, cancellationToken))).ToList();
            DemoView.WriteComparison(console, pipeline, before, runs);
            return ExitCodes.Success;
        }
        finally
        {
            if (settings.Keep is null && Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
    }
}
