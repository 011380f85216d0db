// `spectrum scan`: settings and the few lines that call the scanner.
using System.ComponentModel;
using Spectre.Console;
using Spectre.Console.Cli;
using Spectrum.Analysis;
using Spectrum.Checkpoints;
using Spectrum.Scanning;

namespace Spectrum.Cli.Commands;

public sealed class ScanSettings : SelectionOutputSettings
{
    [CommandArgument(0, "<MODEL>")]
    [Description("A Hugging Face model folder (config.json + model.safetensors or a sharded index) or one .safetensors file.")]
    public string Model { get; init; } = "";

    [CommandOption("--types <TYPES>")]
    [Description("Comma-separated module types to score (e.g. self_attn.q_proj,mlp.down_proj). Default: ask in a terminal, else every projection inside numbered layers.")]
    public string? Types { get; init; }

    [CommandOption("--include-vectors")]
    [Description("Also score 1-D weights (norms), as the reference does when asked; their score is meaningless (1).")]
    public bool IncludeVectors { get; init; }

    [CommandOption("--precision <MODE>")]
    [Description("Gram precision: auto (per shape, checked), float32 or float64.")]
    [DefaultValue("auto")]
    public string Precision { get; init; } = "auto";

    [CommandOption("--non-interactive")]
    [Description("Never prompt, even in a terminal.")]
    public bool NonInteractive { get; init; }

    public override ValidationResult Validate()
    {
        if (Precision is not ("auto" or "float32" or "float64"))
            return ValidationResult.Error($"--precision must be auto, float32 or float64; got '{Precision}'.");
        return base.Validate();
    }
}

public sealed class ScanCommand(IAnsiConsole console) : Command<ScanSettings>
{
    public override int Execute(CommandContext context, ScanSettings settings, CancellationToken cancellationToken)
    {
        using var checkpoint = Checkpoint.Open(settings.Model);
        var catalog = ModuleCatalog.Discover(checkpoint, settings.IncludeVectors, !settings.PerExpertTypes);
        var types = settings.Types is not null
            ? settings.Types.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            : Interaction.CanPrompt(console, settings.NonInteractive) ? AskForTypes(catalog) : null;
        var options = new ScanOptions
        {
            Types = types,
            TopPercent = settings.TopPercent,
            IncludeVectors = settings.IncludeVectors,
            GroupExperts = !settings.PerExpertTypes,
            IncludeEmbeddingsAndHead = !settings.NoEmbeddings,
            ForcePrecision = settings.Precision switch
            {
                "float32" => GramPrecision.Float32,
                "float64" => GramPrecision.Float64,
                _ => null,
            },
        };
        var candidates = catalog.Choose(options.Types);
        console.MarkupLine($"Scanning [bold]{candidates.Count}[/] matrices of {checkpoint.Tensors.Count} tensors in [blue]{Markup.Escape(checkpoint.RootPath)}[/]");
        var outcome = ScanProgressView.Run(console, progress =>
            ScanJob.Run(checkpoint, candidates, options, settings.Out, progress, cancellationToken));
        SelectionView.Write(console, outcome.Summary, outcome.WrittenFiles);
        console.MarkupLine($"Scan time {outcome.Report.Elapsed.TotalSeconds:F1} s.");
        return ExitCodes.Success;
    }

    private string[] AskForTypes(ModuleCatalog catalog)
    {
        var prompt = new MultiSelectionPrompt<string>()
            .Title("Which module types should be scored?")
            .InstructionsText("[grey](space to toggle, enter to accept)[/]")
            .AddChoices(catalog.Types);
        foreach (var type in catalog.DefaultTypes) prompt.Select(type);
        return console.Prompt(prompt).ToArray();
    }
}
