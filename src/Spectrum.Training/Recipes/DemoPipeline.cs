// The built-in demo on generated data: corpus → tokenizer → small model → brief pretraining → (the caller scans) → full vs Spectrum fine-tuning on a shifted task, with task accuracy.
using System.Diagnostics;
using Spectrum.Checkpoints;
using Spectrum.Modeling;
using Spectrum.Text;
using static TorchSharp.torch;

namespace Spectrum.Training.Recipes;

/// <summary>Every dimension and count of one demo; <see cref="Standard"/> is the README's run, <see cref="Quick"/> the CLI test's.</summary>
/// <param name="VocabularySize">Requested tokenizer size; the model's vocabulary is what the tokenizer really got.</param>
/// <param name="BatchSize">Packed rows per step.</param>
public sealed record DemoSize(
    string Name,
    int HiddenSize,
    int IntermediateSize,
    int Layers,
    int Heads,
    int KeyValueHeads,
    int VocabularySize,
    int SequenceLength,
    int BatchSize,
    int PretrainExamples,
    int PretrainSteps,
    int FineTuneExamples,
    int FineTuneSteps,
    int EvaluationExamples)
{
    /// <summary>
    /// About 0.8 M parameters: a step of 8×128 tokens took 0.17 s on one busy core of the 2-core development machine,
    /// so the 1,000 steps here fit the demo's few-minutes budget (under a minute), while pretraining still leaves
    /// per-layer structure for the scan to rank. 400 pretraining steps see each pretraining example about four times;
    /// 300 fine-tuning steps (about 40 packed examples each) see each of the 32 recall keys about 380 times, enough for
    /// the held-out accuracy to separate the methods (at 150 steps it hovered at a few of 32, where rounding noise
    /// decided the order); 64 held-out examples.
    /// </summary>
    public static DemoSize Standard { get; } = new("standard", 128, 352, 4, 4, 2, 384, 128, 8,
        PretrainExamples: 4000, PretrainSteps: 400, FineTuneExamples: 1200, FineTuneSteps: 300, EvaluationExamples: 64);

    /// <summary>
    /// Seconds, not minutes: checks that every stage runs and reports, not that the model learns. Four layers so that
    /// 25% of each type is one module, and sequences of 128 so the longest pretraining prompt still fits with its answer.
    /// </summary>
    public static DemoSize Quick { get; } = new("quick", 32, 64, 4, 2, 1, 384, 128, 2,
        PretrainExamples: 120, PretrainSteps: 6, FineTuneExamples: 60, FineTuneSteps: 4, EvaluationExamples: 4);
}

public sealed record DemoOptions
{
    /// <summary>Receives data/, tokenizer/, base/ (initial weights), pretrain/ (with model/) and one folder per fine-tune.</summary>
    public required string WorkFolder { get; init; }
    public DemoSize Size { get; init; } = DemoSize.Standard;
    /// <summary>Percent per module type that Spectrum fine-tuning trains, taken from the scan results.</summary>
    public double TopPercent { get; init; } = 25;
    public int Seed { get; init; } = 7;
    /// <summary>From-scratch pretraining of a tiny model needs rates far above the paper's 1e-5 fine-tuning rate.</summary>
    public double PretrainLearningRate { get; init; } = 3e-3;
    /// <summary>The same for both methods, so the comparison differs only in what trains.</summary>
    public double FineTuneLearningRate { get; init; } = 1e-3;
}

/// <param name="ModelFolder">The pretrained Hugging Face folder (float32 safetensors, tokenizer files): what the caller scans.</param>
public sealed record DemoPretraining(string ModelFolder, LlamaConfig Config, int Steps, double FirstLoss, double LastLoss, TimeSpan Elapsed);

/// <param name="PeakRssBytes">Highest resident memory of the process during setup and training of this run (VmHWM after a reset); when <paramref name="PeakIsPerRun"/> is false, of the whole process so far.</param>
/// <param name="PeakGrowthBytes">PeakRssBytes minus the resident memory just before the run: what this run added.</param>
/// <param name="TrainingStateBytes">Gradients and AdamW state (and float32 masters) read off the run's optimizer: the memory the method decides, which at this size the activations and allocator hide in RSS.</param>
/// <param name="MedianStepSeconds">Median over steps 2..N (the first pays for one-time allocations).</param>
/// <param name="Accuracy">Exact-match accuracy of greedy answers on the held-out examples after this run.</param>
public sealed record DemoRun(
    string Label,
    FineTuneMethod Method,
    long TrainableParameters,
    long TotalParameters,
    long PeakRssBytes,
    long PeakGrowthBytes,
    bool PeakIsPerRun,
    long TrainingStateBytes,
    double MedianStepSeconds,
    double FinalLoss,
    double? ValidationLoss,
    AccuracyReport Accuracy,
    TimeSpan Elapsed)
{
    public double TrainableFraction => TotalParameters == 0 ? 0 : (double)TrainableParameters / TotalParameters;
}

/// <summary>
/// Stages of the demo, called in order: <see cref="Pretrain"/>, then (after the caller has scanned the pretrained
/// folder with its own progress display) <see cref="EvaluatePretrained"/> and <see cref="FineTune"/> per method.
/// Pretraining mixes addition, word reversal and letter shifting; fine-tuning teaches key→value recall, a task and
/// an answer vocabulary the model never saw, so accuracy before fine-tuning is near zero and any rise is the
/// fine-tune's doing. The tokenizer is trained on the pretraining corpus only, as a base model's tokenizer would be.
/// Fine-tunes run one after another in this process; before each, freed heap is handed back to the OS and the peak
/// is reset, so each run's peak is its own and not inflated or hidden by the run before.
/// </summary>
public sealed class DemoPipeline
{
    public static IReadOnlyList<SyntheticTask> PretrainTasks { get; } =
        [SyntheticTask.Addition, SyntheticTask.WordReversal, SyntheticTask.LetterShift];

    public const SyntheticTask FineTuneTask = SyntheticTask.KeyValueRecall;

    private readonly DemoOptions _options;
    private readonly IReadOnlyList<SyntheticExample> _fineTuneExamples;
    private readonly IReadOnlyList<SyntheticExample> _heldOut;
    private DemoPretraining? _pretrained;

    public DemoPipeline(DemoOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (!(options.TopPercent > 0 && options.TopPercent <= 100))
            throw new TrainingConfigurationException($"--top-percent is {options.TopPercent}; expected a value in (0, 100].");
        _options = options;
        // The held-out examples come after the training ones in the same stream: the recall table is fixed by the seed,
        // so the keys recur (learning the table is the task) but these exact examples are never trained on.
        var recall = SyntheticCorpus.Generate(FineTuneTask, options.Size.FineTuneExamples + options.Size.EvaluationExamples, options.Seed);
        _fineTuneExamples = recall.Take(options.Size.FineTuneExamples).ToList();
        _heldOut = recall.Skip(options.Size.FineTuneExamples).ToList();
    }

    public DemoSize Size => _options.Size;
    public double TopPercent => _options.TopPercent;
    public IReadOnlyList<SyntheticExample> HeldOutExamples => _heldOut;

    /// <summary>Methods compared by the demo, in the order they run, with their table labels.</summary>
    public IReadOnlyList<(string Label, FineTuneMethod Method)> Methods =>
        [("full", FineTuneMethod.Full), ($"Spectrum-{_options.TopPercent:0.##}", FineTuneMethod.Spectrum)];

    private string Folder(string name) => Path.Combine(_options.WorkFolder, name);

    /// <summary>What pretraining and fine-tuning share: this size's sequences and batches, warm-up over the first tenth, the seed.</summary>
    private FineTuneOptions StageOptions(string model, string data, string output, FineTuneMethod method, int steps, double learningRate) => new()
    {
        ModelFolder = model,
        DataPath = data,
        OutputFolder = output,
        Method = method,
        Steps = steps,
        LearningRate = learningRate,
        WarmupSteps = Math.Max(1, steps / 10),
        SequenceLength = _options.Size.SequenceLength,
        BatchSize = _options.Size.BatchSize,
        Seed = _options.Seed,
    };

    /// <summary>Writes the corpora, tokenizer and initial weights, then pretrains every weight (full fine-tuning recipe).</summary>
    public DemoPretraining Pretrain(Action<FineTunePlan>? onPlan = null, Action<TrainingProgress>? onProgress = null,
        CancellationToken cancellationToken = default)
    {
        var size = _options.Size;
        Directory.CreateDirectory(Folder("data"));
        var pretrainExamples = SyntheticCorpus.GenerateMixed(PretrainTasks, size.PretrainExamples, _options.Seed);
        string pretrainData = Path.Combine(Folder("data"), "pretrain.jsonl");
        SyntheticCorpus.WriteJsonl(pretrainData, pretrainExamples);
        SyntheticCorpus.WriteJsonl(Path.Combine(Folder("data"), "finetune.jsonl"), _fineTuneExamples);

        var texts = pretrainExamples.Select((e, i) => ChatTemplate.ChatMl.RenderText(ChatTemplate.ToMessages(e.ToRecord(pretrainData, i + 1))));
        ByteLevelTokenizerBuilder.Write(Folder("tokenizer"), texts, size.VocabularySize);
        var tokenizer = ModelTokenizer.Load(Folder("tokenizer"));

        var config = LlamaConfig.Tiny(hiddenSize: size.HiddenSize, intermediateSize: size.IntermediateSize, numHiddenLayers: size.Layers,
            numAttentionHeads: size.Heads, numKeyValueHeads: size.KeyValueHeads, vocabSize: tokenizer.VocabSize, tieWordEmbeddings: true);
        using (var generator = new Generator((ulong)_options.Seed))
        using (var initial = new LlamaForCausalLM(config, ScalarType.Float32, generator: generator))
        {
            HuggingFaceExporter.Save(initial, config, Folder("base"), SafetensorsDType.F32, extraFilesToCopy: tokenizer.FilesToCopy);
        }

        var clock = Stopwatch.StartNew();
        var result = FineTuneRecipe.Run(
            StageOptions(Folder("base"), pretrainData, Folder("pretrain"), FineTuneMethod.Full, size.PretrainSteps, _options.PretrainLearningRate)
                with { ValidationFraction = 0 },
            onPlan, onProgress, cancellationToken);
        var losses = result.Summary.Losses;
        _pretrained = new DemoPretraining(result.ModelFolder, config, losses.Count, losses[0], losses[^1], clock.Elapsed);
        return _pretrained;
    }

    /// <summary>Accuracy of the pretrained model on the held-out recall examples, before any fine-tuning.</summary>
    public AccuracyReport EvaluatePretrained()
    {
        string folder = RequirePretrained().ModelFolder;
        using var model = LlamaForCausalLM.FromPretrained(folder, ScalarType.Float32);
        return Evaluate(model, ModelTokenizer.Load(folder), _heldOut);
    }

    /// <summary>
    /// Fine-tunes the pretrained model on the recall corpus with <paramref name="method"/> (Spectrum: the top
    /// <see cref="DemoOptions.TopPercent"/> of each type from <paramref name="scanResults"/>, plus the tied embedding),
    /// measures peak memory and step times, then scores the result on the held-out examples.
    /// </summary>
    public DemoRun FineTune(string label, FineTuneMethod method, string? scanResults, Action<FineTunePlan>? onPlan = null,
        Action<TrainingProgress>? onProgress = null, CancellationToken cancellationToken = default)
    {
        if (method is not (FineTuneMethod.Full or FineTuneMethod.Spectrum))
            throw new TrainingConfigurationException($"The demo compares full and Spectrum fine-tuning; {FineTuneOptions.CliName(method)} is for `spectrum train`.");
        var size = _options.Size;
        string model = RequirePretrained().ModelFolder;
        var options = StageOptions(model, Path.Combine(Folder("data"), "finetune.jsonl"), Folder($"finetune-{FineTuneOptions.CliName(method)}"),
            method, size.FineTuneSteps, _options.FineTuneLearningRate) with
        {
            ScanResults = method == FineTuneMethod.Spectrum ? scanResults : null,
            TopPercent = method == FineTuneMethod.Spectrum ? _options.TopPercent : null,
            ValidationFraction = 0.1,
            ValidateEvery = size.FineTuneSteps,
        };
        options.Validate();

        MemoryMeter.TryReturnFreedMemory();
        long before = MemoryMeter.Read().CurrentRssBytes;
        bool perRun = MemoryMeter.TryResetPeak();
        var clock = Stopwatch.StartNew();
        using var recipe = FineTuneRecipe.Setup(options);
        onPlan?.Invoke(recipe.Plan);
        var stepSeconds = new List<double>();
        recipe.Trainer.Progress += p => stepSeconds.Add(p.StepSeconds);
        if (onProgress is not null)
            recipe.Trainer.Progress += onProgress;
        var summary = recipe.Train(cancellationToken);
        var elapsed = clock.Elapsed;
        long peak = MemoryMeter.Read().PeakRssBytes;

        var accuracy = Evaluate(recipe.Model, ModelTokenizer.Load(model), _heldOut);
        return new DemoRun(label, method, recipe.Plan.TrainableParameters, recipe.Plan.TotalParameters, peak, peak - before, perRun,
            recipe.Trainer.Optimizer.TrainingStateBytes, MedianAfterFirst(stepSeconds), summary.Losses[^1], summary.LastValidationLoss, accuracy, elapsed);
    }

    /// <summary>
    /// Greedy answers scored by <see cref="TaskAccuracy"/>. The prompt is the example's own training tokens up to its
    /// first loss-masked id (the answer), so generation starts from exactly what training conditioned on.
    /// </summary>
    public static AccuracyReport Evaluate(LlamaForCausalLM model, ModelTokenizer tokenizer, IReadOnlyList<SyntheticExample> examples)
    {
        var encoder = new ExampleTokenizer(tokenizer, ChatTemplate.ChatMl);
        int? endOfTurn = tokenizer.TokenToId(ByteLevelTokenizerBuilder.ImEndToken) ?? tokenizer.EosId;
        var answers = new List<string>(examples.Count);
        for (int i = 0; i < examples.Count; i++)
        {
            var tokenized = encoder.Tokenize(examples[i].ToRecord("held-out", i + 1));
            int answerStart = Array.IndexOf(tokenized.LossMask, true);
            int answerLength = tokenized.LossMask.Count(flag => flag);
            // A couple of ids beyond the reference answer's length, so a too-long answer shows as wrong rather than cut to fit.
            var generated = TokenGenerator.Generate(model, tokenized.InputIds[..answerStart], new GenerationSettings
            {
                MaxNewTokens = answerLength + 2,
                StopTokenIds = endOfTurn is { } stop ? [stop] : [],
            }).ToList();
            answers.Add(tokenizer.Decode(generated.Where(id => id != endOfTurn), skipSpecialTokens: true));
        }
        return TaskAccuracy.Score(examples, answers);
    }

    private DemoPretraining RequirePretrained() =>
        _pretrained ?? throw new InvalidOperationException("Call Pretrain first: fine-tuning and evaluation start from the pretrained model.");

    private static double MedianAfterFirst(IReadOnlyList<double> values)
    {
        var sorted = (values.Count > 1 ? values.Skip(1) : values).Order().ToArray();
        if (sorted.Length == 0) return double.NaN;
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }
}
