// The fine-tuning recipe: set up model, method and data → train with checkpoints and metrics → save a Hugging Face folder or PEFT adapter.
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Spectrum.Checkpoints;
using Spectrum.Modeling;
using Spectrum.Selection;
using Spectrum.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace Spectrum.Training.Recipes;

/// <param name="TrainableParameters">Elements that get gradients and AdamW state.</param>
/// <param name="Memory">Weights (as held, NF4 included), float32 master copies (bf16 precision only), gradients and AdamW moments.</param>
/// <param name="ActivationBytes">Rough activation memory of one micro-batch; see <see cref="FineTuneRecipe.EstimateActivationBytes"/>.</param>
/// <param name="Modules">The unfrozen parameters (full, Spectrum) or the LoRA-wrapped modules.</param>
/// <param name="NativeBf16">For bf16 precision: whether this CPU multiplies bf16 natively (<see cref="CpuFeatures"/>); null for fp32 or when unknown.</param>
public sealed record FineTunePlan(
    FineTuneMethod Method,
    TrainingPrecision Precision,
    long TrainableParameters,
    long TotalParameters,
    MemoryEstimate Memory,
    long ActivationBytes,
    IReadOnlyList<string> Modules,
    int TrainingSequences,
    int ValidationSequences,
    int? ResumedFromStep,
    bool? NativeBf16 = null,
    bool IsolatedDocuments = true,
    string? ChatTemplate = null,
    IReadOnlyList<string>? Warnings = null,
    int TotalSteps = 0,
    int RowsPerStep = 0)
{
    public double TrainableFraction => TotalParameters == 0 ? 0 : (double)TrainableParameters / TotalParameters;

    /// <summary>Passes over the training rows that <see cref="TotalSteps"/> make.</summary>
    public double Epochs => TrainingSequences == 0 ? 0 : (double)TotalSteps * RowsPerStep / TrainingSequences;
}

/// <param name="ModelFolder">The saved model (or adapter) folder, <c>&lt;out&gt;/model</c>.</param>
public sealed record FineTuneResult(FineTunePlan Plan, TrainingSummary Summary, string ModelFolder, string MetricsPath);

/// <summary>
/// One readable procedure per <see cref="FineTuneMethod"/>: <see cref="Setup"/> validates the options, loads the model
/// in the run's <see cref="TrainingPrecision"/> (bf16 weights are trained through float32 master copies, since bf16
/// AdamW updates of ~1e-5 would round away), freezes or wraps it, tokenizes and packs the data and builds the trainer;
/// <see cref="Train"/> runs (or resumes) it; <see cref="Save"/> writes <c>&lt;out&gt;/model</c>. <see cref="Run"/> does all three.
/// QLoRA quantises each projection to NF4 as the loader reads it, so the dense projection weights are never resident:
/// setup peaks at the NF4 model plus one dense tensor.
/// </summary>
public sealed class FineTuneRecipe : IDisposable
{
    private readonly FineTuneOptions _options;
    private readonly ModelTokenizer _tokenizer;

    private FineTuneRecipe(FineTuneOptions options, LlamaForCausalLM model, ModelTokenizer tokenizer, Trainer trainer,
        FineTunePlan plan)
    {
        _options = options;
        Model = model;
        _tokenizer = tokenizer;
        Trainer = trainer;
        Plan = plan;
    }

    public LlamaForCausalLM Model { get; }
    public Trainer Trainer { get; }
    public FineTunePlan Plan { get; }
    public string ModelOutputFolder => _options.ExportFolder;
    public string MetricsPath => MetricsPathIn(_options.OutputFolder);

    /// <summary>Setup, <paramref name="onPlan"/> (print the plan before the first step), train, save.</summary>
    public static FineTuneResult Run(FineTuneOptions options, Action<FineTunePlan>? onPlan = null,
        Action<TrainingProgress>? onProgress = null, CancellationToken cancellationToken = default)
    {
        using var recipe = Setup(options);
        onPlan?.Invoke(recipe.Plan);
        if (onProgress is not null)
            recipe.Trainer.Progress += onProgress;
        var summary = recipe.Train(cancellationToken);
        string saved;
        try
        {
            saved = recipe.Save();
        }
        catch (Exception e) when (e is CheckpointException or IOException or UnauthorizedAccessException)
        {
            throw new IOException(ExportFailure(options, recipe.ModelOutputFolder, summary, e), e);
        }
        return new FineTuneResult(recipe.Plan, summary, saved, recipe.MetricsPath);
    }

    /// <summary>Writing the model failed after training: say where the trained state is and how to write it without training again.</summary>
    internal static string ExportFailure(FineTuneOptions options, string folder, TrainingSummary summary, Exception failure)
    {
        string what = $"Training finished (step {summary.LastStep}), but writing the model to {folder} failed: " +
                      $"{TrainingCheckpointStore.CauseOf(failure)}.";
        return options.CheckpointEvery > 0
            ? $"{what} The trained state is in the checkpoint of step {summary.LastStep} ({options.CheckpointFolder}): fix the cause " +
              "(e.g. free disk space) and run the same command with --resume to write the model without training again."
            : $"{what} Without --checkpoint-every the trained weights were only in memory; fix the cause and train again, with " +
              "--checkpoint-every N so that a failure like this one can be recovered with --resume.";
    }

    /// <exception cref="TrainingConfigurationException">Invalid options or a selection that matches nothing; nothing is written.</exception>
    /// <exception cref="DataFormatException">Unreadable data or tokenizer.</exception>
    /// <exception cref="ScanResultsException">Unreadable selection YAML or scan results.</exception>
    /// <exception cref="CheckpointException">Unreadable model folder.</exception>
    /// <exception cref="ModelLoadException">Weights that do not fit config.json.</exception>
    public static FineTuneRecipe Setup(FineTuneOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (options.KeepFreedMemory && !FreedMemoryPolicy.KeepFreedMemory())
            throw new TrainingConfigurationException(
                "--keep-freed-memory tunes glibc's malloc, which this system does not use (or which refused the setting); drop the option.");

        // Everything that can be read without the model first, so a typo fails in milliseconds; the checkpoint's
        // header first, so a wrong model path is reported as a checkpoint problem rather than a missing tokenizer.
        HashSet<string> tensorNames;
        using (var checkpoint = Checkpoint.Open(options.ModelFolder))
        {
            if (checkpoint.Config is { } header)
                RequireSequenceWithinContext(options, LlamaConfig.From(header));
            tensorNames = checkpoint.Tensors.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        }
        var patterns = options.UsesSelection ? SelectionPatterns(options, tensorNames) : null;
        var tokenizer = ModelTokenizer.Load(options.ModelFolder);
        var (training, validation, chatTemplate, dataWarnings) = PrepareData(options, tokenizer);
        options = options.WithLengthFor(training.Sequences.Count);

        var quantized = new Dictionary<string, Nf4Tensor>(StringComparer.Ordinal);
        LlamaForCausalLM? model = null;
        try
        {
            model = LlamaForCausalLM.FromPretrained(options.ModelFolder, ModelDType(options.Precision),
                options.QuantizesBase ? QuantizeProjectionsWhileLoading(quantized, options.ModelFolder) : null);
            if (options.QuantizesBase)
                InstallQuantizedProjections(model, quantized);
            if (tokenizer.VocabSize > model.Config.VocabSize)
                throw new TrainingConfigurationException(
                    $"The tokenizer in {options.ModelFolder} has {tokenizer.VocabSize} ids but config.json's vocab_size is {model.Config.VocabSize}: " +
                    "some token ids would have no embedding. Use the model's own tokenizer files.");
            model.GradientCheckpointing = options.GradientCheckpointing;
            var warnings = dataWarnings.Concat(patterns is null ? [] : UnmatchedSelectionWarnings(options, patterns, tensorNames)).ToList();
            var (modules, rowRanges) = PrepareMethod(options, model, patterns);

            var trainable = AdamWOptimizer.Trainable(model);
            long trainableCount = trainable.Sum(p => p.Parameter.numel());
            // The checkpoint's own parameters (tied embeddings once) plus any adapters, which are all trainable.
            long total = model.Config.ParameterCount + (options.UsesLora ? trainableCount : 0);
            var plan = new FineTunePlan(options.Method, options.Precision, trainableCount, total, EstimateMemory(model, trainable, options.GradientAccumulation),
                // A batch never holds more rows than the data packs into.
                EstimateActivationBytes(model.Config, Math.Min(options.BatchSize, training.Sequences.Count), options.SequenceLength, options.GradientCheckpointing,
                    options.Precision == TrainingPrecision.BFloat16 ? 2 : 4),
                modules, training.Sequences.Count, validation?.Sequences.Count ?? 0, ResumedFromStep: null,
                NativeBf16: options.Precision == TrainingPrecision.BFloat16 ? CpuFeatures.HasNativeBf16MatrixProducts() : null,
                IsolatedDocuments: !options.AttendAcrossDocuments, ChatTemplate: chatTemplate, Warnings: warnings,
                TotalSteps: options.Steps, RowsPerStep: options.BatchSize * options.GradientAccumulation);

            RequireFitsInMemory(plan, options, GC.GetGCMemoryInfo().TotalAvailableMemoryBytes);

            // Held-out data is never left unused: without --validate-every it is evaluated once, after the last step.
            int validateEvery = validation is null ? 0 : options.ValidateEvery > 0 ? options.ValidateEvery : options.Steps;
            var trainerOptions = new TrainerOptions
            {
                TotalSteps = options.Steps,
                LearningRate = options.EffectiveLearningRate,
                WarmupSteps = options.WarmupSteps,
                GradientAccumulationSteps = options.GradientAccumulation,
                Seed = options.Seed,
                CheckpointEvery = options.CheckpointEvery,
                ValidateEvery = validateEvery,
                ValidationBatches = validateEvery > 0 ? (validation!.Sequences.Count + options.BatchSize - 1) / options.BatchSize : 0,
                MetricsLogPath = MetricsPathIn(options.OutputFolder),
            };
            var store = options.CheckpointEvery > 0 ? new TrainingCheckpointStore(options.CheckpointFolder) : null;
            bool isolate = !options.AttendAcrossDocuments;
            var trainer = new Trainer(model, new PackedBatchSource(training, options.BatchSize, options.Seed, isolate), trainerOptions,
                validateEvery > 0 ? new PackedBatchSource(validation!, options.BatchSize, options.Seed, isolate) : null, store, rowRanges);

            if (options.Resume)
            {
                var resumed = trainer.Resume(store!);
                plan = plan with { ResumedFromStep = resumed.Checkpoint?.Step };
            }
            Directory.CreateDirectory(options.OutputFolder);
            File.WriteAllText(Path.Combine(options.OutputFolder, FineTuneOptions.RunFileName),
                JsonSerializer.Serialize(options.ResumeIdentity(), new JsonSerializerOptions { WriteIndented = true }));
            return new FineTuneRecipe(options, model, tokenizer, trainer, plan);
        }
        catch
        {
            model?.Dispose();
            foreach (var leftover in quantized.Values)
                leftover.Dispose();
            throw;
        }
    }

    /// <summary>Quantises every projection weight ("….q_proj.weight" … "….down_proj.weight") to NF4 as it is read, keyed by module name.</summary>
    /// <exception cref="InvalidDataException">A weight NF4 cannot represent (NaN or infinite values), naming it.</exception>
    private static LoadDiversion QuantizeProjectionsWhileLoading(Dictionary<string, Nf4Tensor> quantized, string folder) => new(
        name => IsProjectionWeight(name),
        (name, weight) =>
        {
            try
            {
                quantized[name[..^".weight".Length]] = Nf4Tensor.Quantize(weight);
            }
            catch (ArgumentException e)
            {
                throw new InvalidDataException(
                    $"{folder}: tensor \"{name}\" cannot be quantised to NF4 for QLoRA: {e.Message} The checkpoint is damaged or " +
                    "diverged; check it with `spectrum scan` (NaN scores) and use an intact copy.", e);
            }
        });

    private static bool IsProjectionWeight(string name) =>
        name.StartsWith("model.layers.", StringComparison.Ordinal) && name.EndsWith("_proj.weight", StringComparison.Ordinal);

    /// <summary>Puts an <see cref="Nf4Linear"/> (the loaded codes + the dense bias, if any) where each projection was; the dense modules, never written, are freed.</summary>
    private static void InstallQuantizedProjections(LlamaForCausalLM model, Dictionary<string, Nf4Tensor> quantized)
    {
        foreach (var (name, linear) in model.Projections().ToList())
        {
            if (!quantized.Remove(name, out var weight))
                throw new InvalidOperationException($"{name}.weight was not quantised while loading.");
            model.ReplaceModule(name, new Nf4Linear(weight, linear.bias));
            linear.Dispose();
        }
    }

    /// <summary>Runs the remaining steps (all of them, or those after the resumed checkpoint).</summary>
    public TrainingSummary Train(CancellationToken cancellationToken = default) => Trainer.Train(cancellationToken);

    /// <summary>
    /// Writes <c>&lt;out&gt;/model</c>: a Hugging Face folder with LoRA merged (safetensors in the checkpoint's dtype when
    /// it is float32/float16, else bf16; always bf16 for a bf16-precision run, whose model runs on the bf16 weights;
    /// tokenizer files copied), or with <see cref="FineTuneOptions.AdapterOnly"/> a PEFT adapter folder. Returns the folder.
    /// </summary>
    public string Save()
    {
        string folder = ModelOutputFolder;
        if (_options.AdapterOnly)
        {
            // A LoRA method's plan lists exactly the wrapped modules, which are the adapter's targets.
            PeftAdapterWriter.Write(Model, _options.LoraOptions(Plan.Modules), Path.GetFullPath(_options.ModelFolder), folder, _tokenizer.FilesToCopy);
            WriteChatTemplate(folder);
            return folder;
        }
        using var checkpoint = Checkpoint.Open(_options.ModelFolder);
        var dtype = _options.Precision == TrainingPrecision.BFloat16 ? SafetensorsDType.BF16 : checkpoint.Config?.TorchDtype switch
        {
            "float32" => SafetensorsDType.F32,
            "float16" => SafetensorsDType.F16,
            _ => SafetensorsDType.BF16,
        };
        // transformers' save_pretrained keeps the base's generation defaults (sampling, end-of-sequence ids) too.
        string baseGenerationConfig = Path.Combine(_options.ModelFolder, GenerationConfigFileName);
        var extras = File.Exists(baseGenerationConfig) ? _tokenizer.FilesToCopy.Append(baseGenerationConfig) : _tokenizer.FilesToCopy;
        HuggingFaceExporter.Save(Model, Model.Config, folder, dtype, extraFilesToCopy: extras);
        WriteChatTemplate(folder);
        AddReplyEndToGenerationConfig(folder);
        return folder;
    }

    public const string GenerationConfigFileName = "generation_config.json";

    /// <summary>
    /// Adds the chat format's end-of-reply token to generation_config.json's eos_token_id when the model learnt to end
    /// replies with it and the ids there (or the tokenizer's EOS, without the file) do not include it, as Llama 3
    /// Instruct lists &lt;|eot_id|&gt;: otherwise transformers' generate runs past the reply into a next turn. A file
    /// that is not a JSON object is left as copied.
    /// </summary>
    private void AddReplyEndToGenerationConfig(string folder)
    {
        if (Plan.ChatTemplate is not { } name || _tokenizer.TokenToId(ChatTemplate.Named(name).AssistantTurnEnd) is not { } replyEnd)
            return;
        string path = Path.Combine(folder, GenerationConfigFileName);
        JsonObject? config;
        try
        {
            config = File.Exists(path) ? JsonNode.Parse(File.ReadAllText(path)) as JsonObject : new JsonObject();
        }
        catch (JsonException)
        {
            return;
        }
        if (config is null)
            return;
        var eos = config["eos_token_id"] switch
        {
            // Entries that are not ids are dropped rather than failing the export after training.
            JsonArray list => list.Select(id => id is JsonValue value && value.TryGetValue(out int parsed) ? parsed : (int?)null).OfType<int>().ToList(),
            JsonValue single when single.TryGetValue(out int id) => [id],
            _ => _tokenizer.EosId is { } id ? [id] : new List<int>(),
        };
        if (eos.Contains(replyEnd))
            return;
        eos.Add(replyEnd);
        if (!config.ContainsKey("bos_token_id") && _tokenizer.BosId is { } bos)
            config["bos_token_id"] = bos;
        config["eos_token_id"] = eos.Count == 1 ? JsonValue.Create(eos[0]) : new JsonArray(eos.Select(id => (JsonNode)JsonValue.Create(id)).ToArray());
        AtomicFile.WriteText(path, writer => writer.Write(config.ToJsonString(new JsonSerializerOptions { WriteIndented = true })));
    }

    /// <summary>
    /// A model fine-tuned on conversations carries the chat format it was trained in, so transformers'
    /// apply_chat_template prompts it as trained (Axolotl saves its chat_template the same way): written into the
    /// copied tokenizer_config.json, and into chat_template.jinja where the model has one (transformers prefers that
    /// file). The model's own template is kept when it is already in that format.
    /// </summary>
    private void WriteChatTemplate(string folder)
    {
        if (Plan.ChatTemplate is not { } name)
            return;
        var template = ChatTemplate.Named(name);
        if (ChatTemplate.Recognise(_tokenizer.ChatTemplateSource) == template)
            return;
        string jinja = template.ToJinja(startWithBos: _tokenizer.AddsBosToken && _tokenizer.BosId is not null);
        string configPath = Path.Combine(folder, "tokenizer_config.json");
        var config = File.Exists(configPath)
            ? JsonNode.Parse(File.ReadAllText(configPath))?.AsObject() ?? new JsonObject()
            : new JsonObject();
        config["chat_template"] = jinja;
        AtomicFile.WriteText(configPath, writer => writer.Write(config.ToJsonString(new JsonSerializerOptions { WriteIndented = true })));
        string jinjaFile = Path.Combine(folder, "chat_template.jinja");
        if (File.Exists(jinjaFile))
            AtomicFile.WriteText(jinjaFile, writer => writer.Write(jinja));
    }

    public void Dispose()
    {
        Trainer.Dispose();
        Model.Dispose();
    }

    // ------------------------------------------------------------------------------------------------ setup steps

    /// <summary>Axolotl patterns from the YAML, or from scan results + percent with the embedding/head names the model really has.</summary>
    /// <param name="names">The checkpoint's tensor names.</param>
    private static IReadOnlyList<string> SelectionPatterns(FineTuneOptions options, IReadOnlySet<string> names)
    {
        if (options.SelectionYaml is not null)
            return AxolotlYaml.ReadPatterns(options.SelectionYaml);
        var scores = ScanResultsJson.Read(options.ScanResults!);
        // A scan describes one model; modules this one lacks mean it was made for another, whose top N% would be wrong here.
        var foreign = scores.Where(s => !names.Contains(s.Module + ".weight")).Select(s => s.Module).ToList();
        if (foreign.Count > 0)
            throw new TrainingConfigurationException(
                $"--scan {options.ScanResults} scores {foreign.Count} of its {scores.Count} modules that {options.ModelFolder} does not have " +
                $"({string.Join(", ", foreign.Take(3))}{(foreign.Count > 3 ? ", ..." : "")}): it was made for another model. " +
                $"Scan this one with `spectrum scan {options.ModelFolder}`.");
        var selection = TopPercentSelection.Select(scores, options.TopPercent ?? 50);
        IReadOnlyList<string> extras = options.IncludeEmbeddingsAndHead
            ? AxolotlYaml.ReferenceExtraParameterNames.Where(names.Contains).ToList()
            : [];
        return AxolotlYaml.Patterns(selection, extras);
    }

    /// <summary>
    /// JSONL → records → split → tokens (conversations and instructions in the chosen chat format, loss on responses
    /// unless TrainOnInputs) → packed rows. Also the chat format's name and its warnings when the data uses it.
    /// </summary>
    private static (PackedDataset Training, PackedDataset? Validation, string? ChatTemplate, IReadOnlyList<string> Warnings)
        PrepareData(FineTuneOptions options, ModelTokenizer tokenizer)
    {
        var records = TrainingRecords.Load(options.DataPath);
        if (options.ValidationFraction > 0 && records.Count < 2)
            throw new TrainingConfigurationException(
                $"--validation-fraction {options.ValidationFraction} needs at least 2 records, but --data {options.DataPath} has {records.Count}. Add data or set the fraction to 0.");
        var split = DatasetSplit.Split(records, options.ValidationFraction, options.Seed);
        var template = ChatTemplate.Resolve(options.ChatTemplateName, tokenizer.ChatTemplateSource);
        var examples = new ExampleTokenizer(tokenizer, template, options.TrainOnInputs);
        int padId = tokenizer.PadId ?? tokenizer.EosId!.Value;
        var training = SequencePacker.Pack(examples.TokenizeAll(split.Train), options.SequenceLength, padId);
        if (training.Sequences.Count == 0)
            throw new TrainingConfigurationException(
                $"No training example in {options.DataPath} leaves a token to learn within --seq-len {options.SequenceLength}: " +
                "the loss-bearing part (the responses, unless --train-on-inputs) of every row is empty. Raise --seq-len, or check the data.");
        var validation = split.Validation.Count > 0
            ? SequencePacker.Pack(examples.TokenizeAll(split.Validation), options.SequenceLength, padId)
            : null;
        bool usesTemplate = records.Any(r => r is not TextRecord);
        var warnings = new List<string>(usesTemplate ? ChatTemplateCheck.Warnings(template, tokenizer) : []);
        warnings.AddRange(PackingWarnings("training", training, options.SequenceLength));
        if (validation is not null)
        {
            warnings.AddRange(PackingWarnings("validation", validation, options.SequenceLength));
            if (validation.Sequences.Count == 0)
            {
                warnings.Add("No validation row is left, so validation is skipped.");
                validation = null;
            }
        }
        return (training, validation, usesTemplate ? template.Name : null, warnings);
    }

    /// <summary>What packing did that changes what the model sees: examples split over rows, rows left out.</summary>
    private static IEnumerable<string> PackingWarnings(string part, PackedDataset packed, int sequenceLength)
    {
        if (packed.SplitExampleCount > 0)
            yield return $"{packed.SplitExampleCount} of {packed.ExampleCount} {part} examples are longer than --seq-len {sequenceLength} " +
                         "tokens and continue over several rows: no token is cut, but a continuation does not see the start of its " +
                         "example. Raise --seq-len to keep them whole.";
        if (packed.UntrainedRowCount > 0)
            yield return $"{packed.UntrainedRowCount} {part} rows held no token with a loss (parts of long examples before their " +
                         "response) and were left out.";
    }

    /// <summary>Freezes (full, Spectrum) or wraps (LoRA family) the model; returns what trains, the LoRA targets and any row ranges.</summary>
    private static (IReadOnlyList<string> Modules, IReadOnlyDictionary<string, IReadOnlyList<RowRange>>? RowRanges)
        PrepareMethod(FineTuneOptions options, LlamaForCausalLM model, IReadOnlyList<string>? patterns)
    {
        switch (options.Method)
        {
            case FineTuneMethod.Full:
                return (ParameterFreezer.FreezeAllExcept(model, _ => true).Trainable, null);
            case FineTuneMethod.Spectrum:
                var report = ParameterFreezer.Apply(model, patterns!);
                return (report.Trainable, report.RowRanges);
        }

        IReadOnlyList<string>? targets = null;   // null: every projection (the paper's "all linear"), lm_head excluded
        if (options.LoraTargets is { } requested)
        {
            // Validate() refused entries that name no projection at all; what is left to catch needs the model,
            // e.g. a layer it does not have. Reported here in --lora-targets' terms.
            var projections = model.ProjectionModuleNames().ToList();
            var outside = requested.Where(t => !projections.Any(name => LoraInjection.IsTarget(name, [t]))).ToList();
            if (outside.Count > 0)
                throw new TrainingConfigurationException(
                    $"--lora-targets {string.Join(", ", outside.Select(t => $"\"{t}\""))} match{(outside.Count == 1 ? "es" : "")} none of the model's projections; " +
                    "LoRA goes on q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj and down_proj (by name, or a dotted suffix such as " +
                    "self_attn.v_proj or model.layers.3.mlp.down_proj), not on embeddings or the head.");
            targets = requested;
        }
        if (options.Method == FineTuneMethod.SpectrumQLora)
        {
            targets = LoraInjection.ModulesSelectedBy(patterns!, model.ProjectionModuleNames());
            if (targets.Count == 0)
                throw new TrainingConfigurationException(
                    $"--method spectrum-qlora puts LoRA on the selected projections, but the selection ({string.Join(", ", patterns!.Take(4))}...) " +
                    "selects none of the model's q/k/v/o/gate/up/down projections (embeddings and head cannot carry LoRA). Check that the selection belongs to this model.");
        }
        using var generator = new Generator((ulong)options.Seed);
        var injected = LoraInjection.Apply(model, options.LoraOptions(targets), model.ReplaceModule,
            quantizeBase: options.QuantizesBase, generator: generator);
        // QLoRA's projections are all NF4 already (quantised while loading), the wrapped ones and the frozen rest;
        // embeddings, norms and head stay dense.
        ParameterFreezer.FreezeAllExcept(model, LoraLinear.IsAdapterParameter);
        return (injected.WrappedModules, null);
    }

    /// <summary>
    /// Axolotl skips patterns that match nothing, and so does the freezing here as long as one matches; a YAML made for
    /// a deeper model (layers this one lacks) then trains less than it says, so the plan names them.
    /// </summary>
    /// <param name="names">The checkpoint's tensor names: the parameters' names before QLoRA turns projections into NF4 buffers.</param>
    private static IEnumerable<string> UnmatchedSelectionWarnings(FineTuneOptions options, IReadOnlyList<string> patterns, IReadOnlySet<string> names)
    {
        var unmatched = patterns.Where(pattern => !MatchesAny(pattern)).ToList();
        if (unmatched.Count > 0)
            yield return $"{unmatched.Count} of the {patterns.Count} selection patterns match no parameter of this model " +
                         $"({string.Join(", ", unmatched.Take(3).Select(p => $"\"{p}\""))}{(unmatched.Count > 3 ? ", ..." : "")}) and select nothing; " +
                         $"was {options.SelectionYaml ?? "the selection"} made for another model?";

        bool MatchesAny(string pattern)
        {
            try
            {
                return names.Any(new AxolotlPatternMatcher(pattern).Matches);
            }
            catch (ArgumentException)
            {
                return true; // not a usable pattern: the freezing step reports it with its reason
            }
        }
    }

    private static string MetricsPathIn(string outputFolder) => Path.Combine(outputFolder, "metrics.jsonl");

    private static ScalarType ModelDType(TrainingPrecision precision) =>
        precision == TrainingPrecision.BFloat16 ? ScalarType.BFloat16 : ScalarType.Float32;

    /// <summary>Positions past max_position_embeddings were never trained (and rows are padded to --seq-len).</summary>
    private static void RequireSequenceWithinContext(FineTuneOptions options, LlamaConfig config)
    {
        if (options.SequenceLength > config.MaxPositionEmbeddings)
            throw new TrainingConfigurationException(
                $"--seq-len {options.SequenceLength} is longer than the model's context: max_position_embeddings is " +
                $"{config.MaxPositionEmbeddings} in {Path.Combine(options.ModelFolder, Checkpoint.ConfigFileName)}. Use --seq-len " +
                $"{config.MaxPositionEmbeddings} or less (to extend the context on purpose, raise max_position_embeddings there, " +
                "with a rope_scaling that fits).");
    }

    /// <summary>
    /// Refuses a run whose estimate alone exceeds the memory the process may use: measured peaks are at or above the
    /// estimate (1.0-1.3x), so it would be killed by the system partway, after loading the model and maybe hours of steps.
    /// </summary>
    /// <param name="availableBytes">What the process may use: physical memory, or its container's limit.</param>
    internal static void RequireFitsInMemory(FineTunePlan plan, FineTuneOptions options, long availableBytes)
    {
        long needed = plan.Memory.TotalBytes + plan.ActivationBytes;
        if (needed <= availableBytes)
            return;
        static string GiB(long bytes) => (bytes / (double)(1L << 30)).ToString("0.0", CultureInfo.InvariantCulture) + " GiB";
        throw new TrainingConfigurationException(
            $"This run needs at least {GiB(needed)} (weights, gradients and optimizer state {GiB(plan.Memory.TotalBytes)}, plus " +
            $"{GiB(plan.ActivationBytes)} of activations for one micro-batch of {Math.Min(options.BatchSize, plan.TrainingSequences)} x {options.SequenceLength} tokens), " +
            $"more than the {GiB(availableBytes)} this process may use; the system would kill it partway. Lower --seq-len or " +
            "--batch-size (keeping the tokens per step with --grad-accum), add --gradient-checkpointing, use --precision bf16, " +
            "or train fewer parameters (spectrum, lora, qlora).");
    }

    /// <summary>
    /// Resident weights as held (NF4 codes and scales count at their byte size); per trainable element a float32 master
    /// (4 B, reduced-precision parameters only), the gradient (the parameter's dtype; with gradient accumulation a
    /// reduced-precision parameter's is summed in float32, 4 B, beside the one backward produces) and AdamW moments (8 B).
    /// </summary>
    private static MemoryEstimate EstimateMemory(LlamaForCausalLM model, IReadOnlyList<(string Name, TorchSharp.Modules.Parameter Parameter)> trainable,
        int gradientAccumulation)
    {
        long weights = UniqueParameters.Of(model).Sum(p => p.Parameter.numel() * p.Parameter.element_size())
                       + model.named_buffers().Sum(b => b.buffer.numel() * b.buffer.element_size());
        long masters = 0, gradients = 0, moments = 0;
        foreach (var (_, parameter) in trainable)
        {
            long count = parameter.numel();
            bool reduced = parameter.dtype is ScalarType.BFloat16 or ScalarType.Float16;
            masters += reduced ? count * 4 : 0;
            gradients += count * parameter.element_size() + (reduced && gradientAccumulation > 1 ? count * 4 : 0);
            moments += count * 8;
        }
        return new MemoryEstimate(weights, masters, gradients, moments);
    }

    /// <summary>
    /// Rough activations kept for backward, one micro-batch of b×s tokens: per layer about 10·hidden + 3·intermediate
    /// values per token plus heads·s attention probabilities per token, at <paramref name="bytesPerValue"/> (4 for
    /// float32, 2 for bf16); the float32 logits and their softmax gradient add 2·vocab per token. With gradient checkpointing only each layer's input (hidden per
    /// token) is kept, plus one layer recomputed at a time. Allocator overhead and temporaries are not included.
    /// </summary>
    public static long EstimateActivationBytes(LlamaConfig config, int batchSize, int sequenceLength, bool gradientCheckpointing, int bytesPerValue = 4)
    {
        long tokens = (long)batchSize * sequenceLength;
        long perLayer = tokens * (10L * config.HiddenSize + 3L * config.IntermediateSize + (long)config.NumAttentionHeads * sequenceLength);
        long layers = gradientCheckpointing
            ? tokens * config.HiddenSize * config.NumHiddenLayers + perLayer
            : perLayer * config.NumHiddenLayers;
        return bytesPerValue * layers + 4 * tokens * 2L * config.VocabSize;
    }
}
