// `spectrum select`: re-select from a saved or published scan, optionally counting parameters against the model.
using System.ComponentModel;
using Spectre.Console;
using Spectre.Console.Cli;
using Spectrum.Checkpoints;
using Spectrum.Scanning;
using Spectrum.Selection;

namespace Spectrum.Cli.Commands;

public sealed class SelectSettings : SelectionOutputSettings
{
    [CommandArgument(0, "<SCAN>")]
    [Description("A scan result in the reference's flat or sorted JSON layout (ours or a published snr_results_*.json).")]
    public string Scan { get; init; } = "";

    [CommandOption("--model <MODEL>")]
    [Description("The scanned model: counts trainable parameters and unfreezes only the embedding/head names it really has.")]
    public string? Model { get; init; }
}

public sealed class SelectCommand(IAnsiConsole console) : Command<SelectSettings>
{
    public override int Execute(CommandContext context, SelectSettings settings, CancellationToken cancellationToken)
    {
        var scores = ScanResultsJson.Read(settings.Scan, groupExperts: !settings.PerExpertTypes);
        console.MarkupLine($"Read [bold]{scores.Count}[/] module scores from [blue]{Markup.Escape(settings.Scan)}[/]");
        SelectionSummary summary;
        if (settings.Model is not null)
        {
            using var checkpoint = Checkpoint.Open(settings.Model);
            summary = ScanJob.Summarize(checkpoint, scores, new ScanOptions
            {
                TopPercent = settings.TopPercent,
                IncludeEmbeddingsAndHead = !settings.NoEmbeddings,
            });
        }
        else
        {
            var extras = settings.NoEmbeddings ? [] : AxolotlYaml.ReferenceExtraParameterNames;
            summary = SelectionSummary.Build(scores, settings.TopPercent, extras, modelTensors: null);
        }
        var written = ScanJob.WriteOutputs(settings.Out, scores, summary);
        SelectionView.Write(console, summary, written);
        return ExitCodes.Success;
    }
}
