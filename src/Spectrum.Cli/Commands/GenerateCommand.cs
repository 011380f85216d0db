// `spectrum generate`: settings and the few lines that stream a model's reply to a prompt.
using System.ComponentModel;
using System.Globalization;
using Spectre.Console;
using Spectre.Console.Cli;
using Spectrum.Training;
using Spectrum.Training.Recipes;

namespace Spectrum.Cli.Commands;

public sealed class GenerateSettings : CommandSettings
{
    [CommandArgument(0, "<MODEL>")]
    [Description("A Hugging Face model folder (e.g. a `spectrum train` output's model/): config.json, safetensors and tokenizer files.")]
    public string Model { get; init; } = "";

    [CommandOption("--adapter <DIR>")] [Description("A PEFT LoRA adapter folder (e.g. from `train --adapter-only`) to merge into the model first. An adapter folder given as <MODEL> finds its base model by itself.")]
    public string? Adapter { get; init; }
    [CommandOption("-p|--prompt <TEXT>")] [Description("The prompt.")] public string? Prompt { get; init; }
    [CommandOption("--prompt-file <FILE>")] [Description("Read the prompt from a UTF-8 file; - reads standard input.")] public string? PromptFile { get; init; }
    [CommandOption("--chat")] [Description("Send the prompt as a user message in the model's chat format and generate the reply.")] public bool Chat { get; init; }
    [CommandOption("--system <TEXT>")] [Description("A system message before the prompt (with --chat).")] public string? System { get; init; }
    [CommandOption("--chat-template <NAME>")] [Description("auto (the model's own format where recognised, else chatml), or chatml, llama3, mistral, gemma, phi3.")] [DefaultValue("auto")]
    public string ChatTemplate { get; init; } = "auto";
    [CommandOption("-n|--max-new-tokens <N>")] [Description("At most this many new tokens (default: the model's generation_config.json, else 256).")] public int? MaxNewTokens { get; init; }
    [CommandOption("--sample")] [Description("Draw each token (temperature, top-k, top-p) instead of taking the most likely one.")] public bool Sample { get; init; }
    [CommandOption("--greedy")] [Description("Take the most likely token, even where generation_config.json says to sample.")] public bool Greedy { get; init; }
    [CommandOption("--temperature <T>")] [Description("With sampling (default: generation_config.json, else 1).")] public double? Temperature { get; init; }
    [CommandOption("--top-k <K>")] [Description("With sampling: keep the K most likely tokens; 0 keeps all (default: generation_config.json, else 50).")] public int? TopK { get; init; }
    [CommandOption("--top-p <P>")] [Description("With sampling: keep the most likely tokens that add up to P (default: generation_config.json, else 1).")] public double? TopP { get; init; }
    [CommandOption("--seed <S>")] [Description("Seeds the draws: the same seed gives the same text.")] [DefaultValue(0L)] public long Seed { get; init; }
    [CommandOption("--precision <P>")] [Description("auto (bf16 for a bf16 checkpoint, else fp32), fp32 or bf16.")] [DefaultValue("auto")]
    public string Precision { get; init; } = "auto";
    [CommandOption("-q|--quiet")] [Description("Print only the generated text: no notes, no timing line.")] public bool Quiet { get; init; }

    private static readonly IReadOnlyDictionary<string, TrainingPrecision?> PrecisionNames =
        new Dictionary<string, TrainingPrecision?>(StringComparer.OrdinalIgnoreCase)
        {
            ["auto"] = null,
            ["fp32"] = TrainingPrecision.Float32, ["float32"] = TrainingPrecision.Float32,
            ["bf16"] = TrainingPrecision.BFloat16, ["bfloat16"] = TrainingPrecision.BFloat16,
        };

    public override ValidationResult Validate()
    {
        if ((Prompt is null) == (PromptFile is null))
            return ValidationResult.Error("Give the prompt with one of --prompt TEXT or --prompt-file FILE (- for standard input).");
        if (Sample && Greedy)
            return ValidationResult.Error("--sample and --greedy contradict each other; give one.");
        if (!PrecisionNames.ContainsKey(Precision))
            return ValidationResult.Error($"--precision must be auto, fp32 or bf16; got '{Precision}'.");
        return base.Validate();
    }

    /// <exception cref="IOException">The prompt file cannot be read.</exception>
    public GenerateOptions ToOptions() => new()
    {
        ModelFolder = Model, AdapterFolder = Adapter,
        Prompt = Prompt ?? (PromptFile == "-" ? Console.In.ReadToEnd() : File.ReadAllText(PromptFile!)),
        Chat = Chat, SystemPrompt = System, ChatTemplateName = ChatTemplate, MaxNewTokens = MaxNewTokens,
        Sample = Sample ? true : Greedy ? false : null, Temperature = Temperature, TopK = TopK, TopP = TopP, Seed = Seed,
        Precision = PrecisionNames[Precision],
    };
}

public sealed class GenerateCommand(IAnsiConsole console) : Command<GenerateSettings>
{
    public override int Execute(CommandContext context, GenerateSettings settings, CancellationToken cancellationToken)
    {
        using var generation = TextGeneration.Load(settings.ToOptions());
        var plan = generation.Plan;
        if (!settings.Quiet)
        {
            foreach (string note in plan.Notes)
                console.MarkupLine($"[yellow]Note:[/] {Markup.Escape(note)}");
        }
        bool interrupted = false;
        try
        {
            foreach (string piece in generation.Stream(cancellationToken))
                console.Write(new Spectre.Console.Text(piece));
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            interrupted = true;
        }
        console.WriteLine();
        if (!settings.Quiet && generation.Result is { } result)
            console.MarkupLine($"[dim]{Markup.Escape(Summary(plan, generation.PromptIds.Count, result, interrupted))}[/]");
        return interrupted ? ExitCodes.Interrupted : ExitCodes.Success;
    }

    private static string Summary(GenerationPlan plan, int promptTokens, GenerationResult result, bool interrupted)
    {
        string ending = interrupted ? "interrupted" : result.EndedOnStopToken ? "ended by the model" : $"reached --max-new-tokens {plan.MaxNewTokens}";
        string decoding = plan.Sampling is { } s
            ? string.Create(CultureInfo.InvariantCulture, $"sampled (temperature {s.Temperature:G4}, top-k {s.TopK}, top-p {s.TopP:G4}, seed {s.Seed})")
            : "greedy";
        string speed = double.IsNaN(result.TokensPerSecond) ? "" : string.Create(CultureInfo.InvariantCulture, $", {result.TokensPerSecond:F1} tokens/s");
        string format = plan.ChatTemplate is { } name ? $", {name} chat format" : "";
        return string.Create(CultureInfo.InvariantCulture,
            $"{promptTokens} prompt tokens in {result.PromptSeconds:F2} s; {result.GeneratedTokens} new tokens ({ending}){speed}; {decoding}{format}, {FineTuneOptions.CliName(plan.Precision)}.");
    }
}
