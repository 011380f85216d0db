// `spectrum train`: settings and the few lines that run the fine-tuning recipe.
using System.ComponentModel;
using Spectre.Console;
using Spectre.Console.Cli;
using Spectrum.Training;
using Spectrum.Training.Recipes;

namespace Spectrum.Cli.Commands;

public sealed class TrainSettings : CommandSettings
{
    [CommandArgument(0, "<MODEL>")]
    [Description("A Hugging Face model folder: config.json, safetensors and tokenizer files.")]
    public string Model { get; init; } = "";

    [CommandOption("--data <FILE>")]
    [Description("JSONL training records: text, instruction/input/output, or messages/conversations.")]
    public string Data { get; init; } = "";

    [CommandOption("--method <METHOD>")]
    [Description("full, spectrum, lora, qlora or spectrum-qlora (QLoRA on the Spectrum-selected projections).")]
    public string Method { get; init; } = "";

    [CommandOption("--selection <YAML>")]
    [Description("The scanner's Axolotl YAML (unfrozen_parameters). Spectrum methods only.")]
    public string? Selection { get; init; }

    [CommandOption("--scan <JSON>")]
    [Description("Scan results (snr_results*.json) to select from with --top-percent. Spectrum methods only.")]
    public string? Scan { get; init; }

    [CommandOption("--top-percent <N>")]
    [Description("Percent of each module type to train, from --scan (default 50, the reference's).")]
    public double? TopPercent { get; init; }

    [CommandOption("--no-embeddings")]
    [Description("With --scan: do not also train the embedding and output head.")]
    public bool NoEmbeddings { get; init; }

    [CommandOption("--out <DIR>")]
    [Description("Output folder: checkpoints/, metrics.jsonl and the final model/.")]
    public string Out { get; init; } = "";

    [CommandOption("--steps <N>")] [Description("Optimizer steps, each of batch-size × grad-accum packed rows (default 100).")] public int? Steps { get; init; }
    [CommandOption("--epochs <E>")] [Description("Instead of --steps: passes over the packed training rows (fractions allowed); the steps follow from the data.")] public double? Epochs { get; init; }
    [CommandOption("--lr <X>")] [Description("Default 1e-5 (full, spectrum) or 2e-4 (LoRA methods).")] public double? LearningRate { get; init; }
    [CommandOption("--seq-len <N>")] [Description("Tokens per packed row; a longer example continues over the next rows.")] [DefaultValue(512)] public int SequenceLength { get; init; } = 512;
    [CommandOption("--batch-size <N>")] [Description("Packed rows per micro-batch.")] [DefaultValue(1)] public int BatchSize { get; init; } = 1;
    [CommandOption("--grad-accum <N>")] [Description("Micro-batches whose gradients are summed into one optimizer step.")] [DefaultValue(1)] public int GradientAccumulation { get; init; } = 1;
    [CommandOption("--warmup <N>")] [Description("Steps of linear warm-up before the cosine decay.")] [DefaultValue(0)] public int Warmup { get; init; }
    [CommandOption("--warmup-ratio <F>")] [Description("Instead of --warmup: this share of the steps, rounded up.")] public double? WarmupRatio { get; init; }
    [CommandOption("--validation-fraction <F>")] [Description("Share of the records held out for validation loss; 0 for none.")] [DefaultValue(0.05)] public double ValidationFraction { get; init; } = 0.05;
    [CommandOption("--validate-every <N>")] [Description("Validation loss every N steps; 0: once, after the last step.")] [DefaultValue(0)] public int ValidateEvery { get; init; }
    [CommandOption("--checkpoint-every <N>")] [Description("Crash-safe checkpoint into <out>/checkpoints every N steps and after the last; 0: none (no --resume).")] [DefaultValue(0)] public int CheckpointEvery { get; init; }
    [CommandOption("--lora-targets <LIST>")] [Description("Comma-separated LoRA targets, PEFT-style (q_proj,v_proj or self_attn.o_proj); default all seven projections.")]
    public string? LoraTargets { get; init; }
    [CommandOption("--lora-rank <R>")] [Description("Default 32.")] public int? LoraRank { get; init; }
    [CommandOption("--lora-alpha <A>")] [Description("Default 16.")] public double? LoraAlpha { get; init; }
    [CommandOption("--lora-dropout <D>")] [Description("Default 0.05.")] public double? LoraDropout { get; init; }
    [CommandOption("--seed <S>")] [Description("Seeds initialisation of adapters, data order, split and dropout: the same seed gives the same run.")] [DefaultValue(42)] public int Seed { get; init; } = 42;
    [CommandOption("--resume")] [Description("Continue from the last complete checkpoint in --out.")] public bool Resume { get; init; }
    [CommandOption("--adapter-only")] [Description("Save a PEFT adapter folder instead of the merged model.")] public bool AdapterOnly { get; init; }
    [CommandOption("--gradient-checkpointing")] [Description("Recompute each layer's activations in backward: less activation memory for about a third more compute.")] public bool GradientCheckpointing { get; init; }
    [CommandOption("--chat-template <NAME>")] [Description("Format of conversations and instructions: chatml, llama3, mistral, gemma, phi3, or auto (the model's own format where recognised, else chatml).")] [DefaultValue("chatml")]
    public string ChatTemplate { get; init; } = "chatml";
    [CommandOption("--train-on-inputs")] [Description("Loss on prompts too, not only responses.")] public bool TrainOnInputs { get; init; }
    [CommandOption("--attend-across-documents")] [Description("Let examples packed into one row see the earlier ones (by default each sees only itself, positions from 0, as Axolotl's sample packing).")]
    public bool AttendAcrossDocuments { get; init; }
    [CommandOption("--keep-freed-memory")] [Description("Let glibc keep freed memory for reuse instead of returning it every step: 5-12% faster steps measured, peak up to ~0.5 GB higher (Linux/glibc).")]
    public bool KeepFreedMemory { get; init; }
    [CommandOption("--precision <P>")] [Description("fp32, or bf16: bf16 weights and activations with float32 master copies of the trained weights (saves bf16).")] [DefaultValue("fp32")]
    public string Precision { get; init; } = "fp32";

    public static readonly IReadOnlyDictionary<string, FineTuneMethod> Methods =
        Enum.GetValues<FineTuneMethod>().ToDictionary(FineTuneOptions.CliName, StringComparer.Ordinal);

    public static readonly IReadOnlyDictionary<string, TrainingPrecision> Precisions =
        Enum.GetValues<TrainingPrecision>().ToDictionary(FineTuneOptions.CliName, StringComparer.Ordinal);

    // torch's and scan's spellings, so `--precision float32` (as `spectrum scan` takes it) or `bfloat16` also work.
    private static readonly IReadOnlyDictionary<string, TrainingPrecision> PrecisionAliases =
        new Dictionary<string, TrainingPrecision>(Precisions, StringComparer.OrdinalIgnoreCase)
        {
            ["float32"] = TrainingPrecision.Float32,
            ["bfloat16"] = TrainingPrecision.BFloat16,
        };

    public override ValidationResult Validate()
    {
        if (!Methods.ContainsKey(Method))
            return ValidationResult.Error($"--method must be one of {string.Join(", ", Methods.Keys)}; got '{Method}'.");
        if (!PrecisionAliases.ContainsKey(Precision))
            return ValidationResult.Error($"--precision must be one of {string.Join(", ", Precisions.Keys)}; got '{Precision}'.");
        if (Data.Length == 0 || Out.Length == 0)
            return ValidationResult.Error("--data and --out are required.");
        if (Steps is not null && Epochs is not null)
            return ValidationResult.Error("--steps and --epochs both set the length of the run; give one.");
        return base.Validate();
    }

    public FineTuneOptions ToOptions() => new()
    {
        ModelFolder = Model, DataPath = Data, OutputFolder = Out, Method = Methods[Method],
        SelectionYaml = Selection, ScanResults = Scan, TopPercent = TopPercent, IncludeEmbeddingsAndHead = !NoEmbeddings,
        Steps = Steps ?? 100, Epochs = Epochs, LearningRate = LearningRate, SequenceLength = SequenceLength, BatchSize = BatchSize,
        GradientAccumulation = GradientAccumulation, WarmupSteps = Warmup, WarmupRatio = WarmupRatio, ValidationFraction = ValidationFraction,
        ValidateEvery = ValidateEvery, CheckpointEvery = CheckpointEvery,
        LoraTargets = LoraTargets?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
        LoraRank = LoraRank, LoraAlpha = LoraAlpha, LoraDropout = LoraDropout, Seed = Seed,
        ChatTemplateName = ChatTemplate, Resume = Resume, AdapterOnly = AdapterOnly, GradientCheckpointing = GradientCheckpointing, TrainOnInputs = TrainOnInputs,
        AttendAcrossDocuments = AttendAcrossDocuments, KeepFreedMemory = KeepFreedMemory, Precision = PrecisionAliases[Precision],
    };
}

public sealed class TrainCommand(IAnsiConsole console) : Command<TrainSettings>
{
    public override int Execute(CommandContext context, TrainSettings settings, CancellationToken cancellationToken)
    {
        var options = settings.ToOptions();
        TrainingProgress? last = null;
        FineTuneResult result;
        try
        {
            result = TrainProgressView.Run(console, (onPlan, onProgress) =>
                FineTuneRecipe.Run(options, onPlan, progress => { last = progress; onProgress(progress); }, cancellationToken));
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            WriteInterrupted(options, last);
            return ExitCodes.Interrupted;
        }
        var summary = result.Summary;
        if (summary.Losses.Count == 0)
            console.MarkupLine($"Nothing left to train: the checkpoint was at the last step ({summary.LastStep}); the model was written from it.");
        else
            console.MarkupLine($"Trained steps {summary.FirstStep}-{summary.LastStep}; final loss [bold]{summary.Losses[^1]:F4}[/]" +
                               (summary.LastValidationLoss is { } v ? $", validation loss [bold]{v:F4}[/]" : ""));
        console.MarkupLine($"Saved [blue]{Markup.Escape(result.ModelFolder)}[/]; metrics in [blue]{Markup.Escape(result.MetricsPath)}[/]");
        return ExitCodes.Success;
    }

    /// <summary>Ctrl-C stops between steps; say where the run stands and how to go on, as a crash-safe trainer should.</summary>
    private void WriteInterrupted(FineTuneOptions options, TrainingProgress? last)
    {
        string done = last is not null ? $"after step {last.Step} of {last.TotalSteps}" : "before the first step";
        var checkpoint = options.CheckpointEvery > 0 && Directory.Exists(options.CheckpointFolder)
            ? new TrainingCheckpointStore(options.CheckpointFolder).LatestComplete()
            : null;
        string next = checkpoint is not null
            ? $"The last complete checkpoint is step {checkpoint.Step} ([blue]{Markup.Escape(checkpoint.Folder)}[/]): run the same command with --resume to continue from it."
            : options.CheckpointEvery > 0
                ? "No checkpoint was complete yet, so nothing can be resumed; run the command again to start over."
                : "No checkpoints were saved (--checkpoint-every 0); run again with --checkpoint-every N to be able to resume an interrupted run.";
        console.MarkupLine($"[yellow]Interrupted[/] {done}; no model was saved. {next}");
    }
}
