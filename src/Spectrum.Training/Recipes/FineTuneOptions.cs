// The settings of one fine-tuning run and the check that rejects combinations that cannot work, before any file is touched.
using System.Globalization;
using System.Text.Json;

namespace Spectrum.Training.Recipes;

/// <summary>What is trained: every weight, the Spectrum-selected ones, LoRA adapters (over a dense or NF4 base), or NF4 QLoRA on the selected projections.</summary>
public enum FineTuneMethod
{
    Full,
    Spectrum,
    Lora,
    QLora,
    SpectrumQLora,
}

/// <summary>
/// How weights are held and multiplied. Float32: everything float32 (exact, the reference for tests). BFloat16: the
/// model runs in bf16 (weights, activations; norms, softmax and the loss in float32) and every trainable weight has a
/// float32 master copy that AdamW updates — HF/Axolotl's <c>bf16: true</c> with DeepSpeed-style master weights. Frozen
/// weights exist only in bf16, which is where Spectrum's memory saving grows; bf16 matrix products are also several
/// times faster than float32 ones on CPUs with AVX512-BF16 or AMX.
/// </summary>
public enum TrainingPrecision
{
    Float32,
    BFloat16,
}

/// <summary>
/// One run of <see cref="FineTuneRecipe"/>. Option names in messages are the CLI's (<c>--selection</c>), since that is
/// where users meet them. Null hyper-parameters take the method's default (learning rate 1e-5 for full/Spectrum,
/// 2e-4 for the LoRA family, as the paper used; LoRA r 32, alpha 16, dropout 0.05).
/// </summary>
public sealed record FineTuneOptions
{
    /// <summary>Hugging Face folder: config.json, safetensors and tokenizer files.</summary>
    public required string ModelFolder { get; init; }
    /// <summary>JSONL training records (text, instruction or conversation).</summary>
    public required string DataPath { get; init; }
    /// <summary>Receives checkpoints/, metrics.jsonl, run.json and the final model/.</summary>
    public required string OutputFolder { get; init; }
    public required FineTuneMethod Method { get; init; }

    /// <summary>The scanner's Axolotl YAML (<c>unfrozen_parameters</c>); Spectrum methods only.</summary>
    public string? SelectionYaml { get; init; }
    /// <summary>Scan results JSON (ours or the reference's); selected with <see cref="TopPercent"/>. Spectrum methods only.</summary>
    public string? ScanResults { get; init; }
    /// <summary>Percent per module type kept from <see cref="ScanResults"/>; null = the reference default, 50.</summary>
    public double? TopPercent { get; init; }
    /// <summary>With <see cref="ScanResults"/>, also train the embedding and output head when the model has them (the reference always adds them).</summary>
    public bool IncludeEmbeddingsAndHead { get; init; } = true;

    /// <summary>
    /// The chat format conversations and instruction records are rendered in: a <see cref="Spectrum.Text.ChatTemplate.BuiltIn"/>
    /// name, or <see cref="Spectrum.Text.ChatTemplate.AutoName"/> for the format of the model's own chat_template
    /// (<see cref="Spectrum.Text.ChatTemplate.Resolve"/>).
    /// </summary>
    public string ChatTemplateName { get; init; } = "chatml";

    /// <summary>Optimizer steps; ignored when <see cref="Epochs"/> is set.</summary>
    public int Steps { get; init; } = 100;
    /// <summary>
    /// Passes over the packed training rows (fractions allowed, as Hugging Face's num_train_epochs): the run takes
    /// ceil(epochs × rows / (batch-size × grad-accum)) steps, known once the data is packed. Null: <see cref="Steps"/>.
    /// </summary>
    public double? Epochs { get; init; }
    public double? LearningRate { get; init; }
    public int SequenceLength { get; init; } = 512;
    public int BatchSize { get; init; } = 1;
    public int GradientAccumulation { get; init; } = 1;
    public int WarmupSteps { get; init; }
    /// <summary>Instead of <see cref="WarmupSteps"/>: this share of the run's steps, rounded up (Hugging Face's warmup_ratio).</summary>
    public double? WarmupRatio { get; init; }
    public double ValidationFraction { get; init; } = 0.05;
    /// <summary>Validation loss every N steps over the whole validation split; 0 = once, after the last step (when there is a split).</summary>
    public int ValidateEvery { get; init; }
    /// <summary>Crash-safe checkpoint every N steps and after the last; 0 = only what <see cref="Resume"/> needs: none.</summary>
    public int CheckpointEvery { get; init; }

    /// <summary>
    /// LoRA target modules by PEFT's list rule (a module name, or the end of one after a dot: "q_proj",
    /// "self_attn.v_proj", "model.layers.3.mlp.down_proj"); null = all seven projections. lora and qlora only.
    /// </summary>
    public IReadOnlyList<string>? LoraTargets { get; init; }
    public int? LoraRank { get; init; }
    public double? LoraAlpha { get; init; }
    public double? LoraDropout { get; init; }

    public int Seed { get; init; } = 42;
    /// <summary>Continue from the last complete checkpoint in <c>&lt;out&gt;/checkpoints</c> (same options required).</summary>
    public bool Resume { get; init; }
    /// <summary>Save a PEFT adapter folder instead of merging the adapters into a full model (LoRA methods only).</summary>
    public bool AdapterOnly { get; init; }
    public bool GradientCheckpointing { get; init; }
    /// <summary>Loss on prompts too, not only on responses.</summary>
    public bool TrainOnInputs { get; init; }
    /// <summary>
    /// Let examples packed into one row attend to the earlier ones (causal over the whole row). Default false: each
    /// example gets positions from 0 and sees only itself, as Axolotl's sample packing does.
    /// </summary>
    public bool AttendAcrossDocuments { get; init; }
    /// <summary>Keep freed memory in the process for reuse (<see cref="FreedMemoryPolicy"/>): faster steps, higher peak. glibc only.</summary>
    public bool KeepFreedMemory { get; init; }
    public TrainingPrecision Precision { get; init; } = TrainingPrecision.Float32;

    public bool UsesLora => Method is FineTuneMethod.Lora or FineTuneMethod.QLora or FineTuneMethod.SpectrumQLora;
    public bool UsesSelection => Method is FineTuneMethod.Spectrum or FineTuneMethod.SpectrumQLora;
    public bool QuantizesBase => Method is FineTuneMethod.QLora or FineTuneMethod.SpectrumQLora;

    public double EffectiveLearningRate => LearningRate ?? (UsesLora ? 2e-4 : 1e-5);

    public LoraOptions LoraOptions(IReadOnlyList<string>? targets) =>
        new(LoraRank ?? 32, LoraAlpha ?? 16, LoraDropout ?? 0.05, targets);

    public static string CliName(TrainingPrecision precision) => precision == TrainingPrecision.BFloat16 ? "bf16" : "fp32";

    public static string CliName(FineTuneMethod method) => method switch
    {
        FineTuneMethod.QLora => "qlora",
        FineTuneMethod.SpectrumQLora => "spectrum-qlora",
        _ => method.ToString().ToLowerInvariant(),
    };

    public const string RunFileName = "run.json";

    /// <summary>Where the fine-tuned model (or adapter) is written: <c>&lt;out&gt;/model</c>.</summary>
    public string ExportFolder => Path.Combine(OutputFolder, "model");

    /// <summary>Where checkpoints go: <c>&lt;out&gt;/checkpoints</c>.</summary>
    public string CheckpointFolder => Path.Combine(OutputFolder, "checkpoints");

    /// <summary>
    /// Every check that needs no model: option combinations, ranges, and on <see cref="Resume"/> that the folder's
    /// run.json was written by the same method and data settings. Reads at most run.json; writes nothing.
    /// </summary>
    /// <exception cref="TrainingConfigurationException">Names the options involved and what to change.</exception>
    public void Validate()
    {
        string method = $"--method {CliName(Method)}";
        if (UsesSelection && SelectionYaml is null && ScanResults is null)
            Fail($"{method} trains the Spectrum-selected modules, but neither --selection nor --scan was given. Pass the scanner's YAML with --selection, or its JSON with --scan and --top-percent.");
        if (SelectionYaml is not null && ScanResults is not null)
            Fail("--selection and --scan both choose the modules; pass one of them.");
        if (!UsesSelection && (SelectionYaml ?? ScanResults) is not null)
            Fail($"{(SelectionYaml is not null ? "--selection" : "--scan")} is given with {method}, which does not use a selection. Use --method spectrum or spectrum-qlora, or drop it.");
        if (TopPercent is not null && ScanResults is null)
            Fail($"--top-percent selects from scan results, but --scan was not given{(SelectionYaml is not null ? " (--selection is already a finished selection)" : "")}. Pass --scan, or drop --top-percent.");
        if (TopPercent is { } percent && !(percent > 0 && percent <= 100))
            Fail($"--top-percent is {percent}; expected a value in (0, 100].");
        if (!UsesLora && (LoraRank ?? LoraAlpha ?? LoraDropout) is not null)
            Fail($"--lora-rank/--lora-alpha/--lora-dropout are given with {method}, which trains no adapter. Use lora, qlora or spectrum-qlora, or drop them.");
        if (LoraTargets is not null && !UsesLora)
            Fail($"--lora-targets chooses LoRA targets, but {method} trains no adapter. Use lora or qlora, or drop --lora-targets.");
        if (LoraTargets is not null && Method == FineTuneMethod.SpectrumQLora)
            Fail("--lora-targets and --method spectrum-qlora both choose the LoRA targets (spectrum-qlora takes them from the selection); use --method qlora with --lora-targets, or drop it.");
        if (LoraTargets is { Count: 0 })
            Fail("--lora-targets is empty; list module names such as q_proj,v_proj, or drop it to target all seven projections.");
        var projectionNames = Spectrum.Modeling.LlamaAttention.ProjectionNames.Concat(Spectrum.Modeling.LlamaMlp.ProjectionNames).ToList();
        if (LoraTargets?.FirstOrDefault(t => !projectionNames.Contains(t.Split('.')[^1])) is { } notProjection)
            Fail($"--lora-targets \"{notProjection}\" is not a projection; LoRA goes on {string.Join(", ", projectionNames)} " +
                 "(by name, or a dotted suffix such as self_attn.v_proj or model.layers.3.mlp.down_proj), not on embeddings or the head.");
        if (!UsesLora && AdapterOnly)
            Fail($"--adapter-only saves LoRA adapters, but {method} trains none. Drop --adapter-only or use a LoRA method.");
        if (UsesLora)
            LoraOptions(null).Validate();
        if (!Spectrum.Text.ChatTemplate.IsName(ChatTemplateName))
            Fail($"--chat-template is \"{ChatTemplateName}\"; expected one of {string.Join(", ", Spectrum.Text.ChatTemplate.BuiltIn.Select(t => t.Name))} or {Spectrum.Text.ChatTemplate.AutoName}.");
        if (Epochs is { } epochs && !(epochs > 0 && double.IsFinite(epochs)))
            Fail($"--epochs is {epochs}; expected a finite value > 0.");
        if (Epochs is null && Steps < 1)
            Fail($"--steps is {Steps}; expected at least 1.");
        if (SequenceLength < 2)
            Fail($"--seq-len is {SequenceLength}; expected at least 2 (one input and one predicted token).");
        if (BatchSize < 1 || GradientAccumulation < 1)
            Fail($"--batch-size ({BatchSize}) and --grad-accum ({GradientAccumulation}) must be at least 1.");
        if (WarmupRatio is { } ratio && !(ratio >= 0 && ratio <= 1))
            Fail($"--warmup-ratio is {ratio}; expected a share of the steps in [0, 1].");
        if (WarmupRatio is not null && WarmupSteps != 0)
            Fail($"--warmup {WarmupSteps} and --warmup-ratio {WarmupRatio} both set the warm-up; give one.");
        if (WarmupSteps < 0 || (Epochs is null && WarmupSteps > Steps))
            Fail($"--warmup is {WarmupSteps} with --steps {Steps}; expected 0..{Steps}.");
        if (LearningRate is { } lr && !(lr > 0 && double.IsFinite(lr)))
            Fail($"--lr is {lr}; expected a finite value > 0.");
        if (!(ValidationFraction >= 0 && ValidationFraction < 1))
            Fail($"--validation-fraction is {ValidationFraction}; expected a value in [0, 1).");
        if (ValidateEvery < 0 || CheckpointEvery < 0)
            Fail($"--validate-every ({ValidateEvery}) and --checkpoint-every ({CheckpointEvery}) must not be negative.");
        if (ValidateEvery > 0 && ValidationFraction == 0)
            Fail($"--validate-every {ValidateEvery} needs validation data, but --validation-fraction is 0. Set a fraction such as 0.05, or drop --validate-every.");
        if (Resume && CheckpointEvery == 0)
            Fail("--resume continues from checkpoints, but --checkpoint-every is 0, so the resumed run would save none. Pass the original --checkpoint-every.");

        // Writing <out>/model replaces what is there and removes stale shards; the user's files must never be those.
        foreach (string written in new[] { ExportFolder, CheckpointFolder })
        {
            if (IsSameOrInside(ModelFolder, written))
                Fail($"--out {OutputFolder} would write into {Path.GetFullPath(written)}, which holds the model being trained ({ModelFolder}): " +
                     "it would be replaced. Choose another --out, such as a new folder beside the model.");
        }
        string runFile = Path.Combine(OutputFolder, RunFileName);
        bool previousRun = File.Exists(runFile);
        if (!Resume && previousRun && Directory.Exists(CheckpointFolder))
            Fail($"--out {OutputFolder} holds checkpoints of an earlier run. Pass --resume to continue it, or choose another --out.");
        if (!Resume && Directory.Exists(ExportFolder) && Directory.EnumerateFileSystemEntries(ExportFolder).Any())
            Fail($"--out {OutputFolder} already holds a fine-tuned model ({Path.GetFullPath(ExportFolder)}) that this run would replace. " +
                 "Choose another --out, or move that folder away first.");
        if (Resume && previousRun)
        {
            var saved = JsonSerializer.Deserialize<Dictionary<string, string>>(File.ReadAllText(runFile)) ?? [];
            foreach (var (key, value) in ResumeIdentity())
            {
                if (saved.TryGetValue(key, out var before) && before != value)
                    Fail($"--resume: the run in {OutputFolder} used {key} {before}, this one {key} {value}. Resume with the original {key}, or choose another --out.");
            }
        }
    }

    /// <summary>The settings that decide which parameters train and which batches come: a resumed run must match them.</summary>
    internal IReadOnlyDictionary<string, string> ResumeIdentity() => new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["--method"] = CliName(Method),
        ["--selection"] = SelectionYaml is null ? "none" : Path.GetFullPath(SelectionYaml),
        ["--scan"] = ScanResults is null ? "none" : Path.GetFullPath(ScanResults),
        ["--top-percent"] = (TopPercent ?? 50).ToString("R", CultureInfo.InvariantCulture),
        ["--data"] = Path.GetFullPath(DataPath),
        ["--seq-len"] = SequenceLength.ToString(CultureInfo.InvariantCulture),
        ["--batch-size"] = BatchSize.ToString(CultureInfo.InvariantCulture),
        ["--validation-fraction"] = ValidationFraction.ToString("R", CultureInfo.InvariantCulture),
        ["--lora-rank"] = UsesLora ? (LoraRank ?? 32).ToString(CultureInfo.InvariantCulture) : "none",
        ["--lora-targets"] = LoraTargets is null ? "all projections" : string.Join(",", LoraTargets),
        ["--train-on-inputs"] = TrainOnInputs ? "true" : "false",
        ["--chat-template"] = ChatTemplateName.ToLowerInvariant(),
        ["--attend-across-documents"] = AttendAcrossDocuments ? "true" : "false",
        ["--precision"] = CliName(Precision),
        ["model folder"] = Path.GetFullPath(ModelFolder),
        // The same paths with other contents would resume mid-epoch in different data, or another selection.
        ["--data contents (sha256)"] = ContentHash(DataPath),
        ["--selection contents (sha256)"] = SelectionYaml is null ? "none" : ContentHash(SelectionYaml),
        ["--scan contents (sha256)"] = ScanResults is null ? "none" : ContentHash(ScanResults),
    };

    /// <summary>
    /// The options with the run's length settled by the packed data: <see cref="Steps"/> (with <see cref="Epochs"/>, those
    /// that cover that many passes over <paramref name="trainingRows"/>) and <see cref="WarmupSteps"/> (with
    /// <see cref="WarmupRatio"/>, that share of them).
    /// </summary>
    /// <exception cref="TrainingConfigurationException">The warm-up is longer than the run that the epochs give.</exception>
    public FineTuneOptions WithLengthFor(int trainingRows)
    {
        int steps = Steps;
        if (Epochs is { } epochs)
        {
            long rowsPerStep = (long)BatchSize * GradientAccumulation;
            steps = (int)Math.Max(1, Math.Min(int.MaxValue, Math.Ceiling(epochs * trainingRows / rowsPerStep)));
            if (WarmupSteps > steps)
                Fail($"--warmup is {WarmupSteps}, but --epochs {epochs.ToString("R", CultureInfo.InvariantCulture)} over {trainingRows} training rows " +
                     $"({rowsPerStep} per step) gives {steps} steps; expected a warm-up of 0..{steps}.");
        }
        int warmup = WarmupRatio is { } ratio ? (int)Math.Ceiling(ratio * steps) : WarmupSteps;
        return this with { Steps = steps, WarmupSteps = warmup };
    }

    /// <summary>SHA-256 of a file's bytes, or why there is none (the loaders report a missing file with its reason).</summary>
    private static string ContentHash(string path)
    {
        try
        {
            using var stream = File.OpenRead(path);
            return Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(stream));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "unreadable";
        }
    }

    private static void Fail(string message) => throw new TrainingConfigurationException(message);

    private static bool IsSameOrInside(string path, string folder)
    {
        var comparison = OperatingSystem.IsLinux() ? StringComparison.Ordinal : StringComparison.OrdinalIgnoreCase;
        string full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(path));
        string container = Path.TrimEndingDirectorySeparator(Path.GetFullPath(folder));
        return full.Equals(container, comparison) || full.StartsWith(container + Path.DirectorySeparatorChar, comparison);
    }
}
