// Options shared by the commands that select modules and write result files.
using System.ComponentModel;
using Spectre.Console;
using Spectre.Console.Cli;

namespace Spectrum.Cli.Commands;

public class SelectionOutputSettings : CommandSettings
{
    [CommandOption("--top-percent <N>")]
    [Description("Select the top N% of modules of each type (floor(count × N / 100)). The paper's Spectrum-25 is the default.")]
    [DefaultValue(25.0)]
    public double TopPercent { get; init; } = 25;

    [CommandOption("-o|--out <DIR>")]
    [Description("Folder for snr_results.json, snr_results_sorted.json and unfrozen_parameters.yaml.")]
    [DefaultValue("spectrum-out")]
    public string Out { get; init; } = "spectrum-out";

    [CommandOption("--no-embeddings")]
    [Description("Leave the embedding and output-head parameters out of the Axolotl YAML (the reference always adds them).")]
    public bool NoEmbeddings { get; init; }

    [CommandOption("--per-expert-types")]
    [Description("Give each mixture-of-experts expert its own type, like the reference, instead of grouping experts per projection.")]
    public bool PerExpertTypes { get; init; }

    public override ValidationResult Validate() =>
        TopPercent is > 0 and <= 100 && !double.IsNaN(TopPercent)
            ? ValidationResult.Success()
            : ValidationResult.Error($"--top-percent must be greater than 0 and at most 100; got {TopPercent}.");
}
