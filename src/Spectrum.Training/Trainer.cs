// The training loop: accumulate micro-batches, clip, AdamW step on the trainable parameters, log, validate, checkpoint, resume.
using System.Diagnostics;
using Spectrum.Modeling;
using Spectrum.Selection;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Spectrum.Training;

/// <summary>
/// Trains whatever parameters of <c>model</c> require gradients (freeze first: <see cref="ParameterFreezer"/>).
/// Each optimizer step takes <see cref="TrainerOptions.GradientAccumulationSteps"/> micro-batches, divides the summed
/// token loss by the step's total target count (so accumulation equals one large batch), masks frozen rows, clips
/// the global gradient norm, applies AdamW at the cosine schedule's rate, then logs, validates and checkpoints.
/// <see cref="Resume"/> restores weights, optimizer, schedule, RNG, data position and log from the last complete
/// checkpoint, so the remaining steps give exactly the losses of an uninterrupted run (same machine and threads).
/// </summary>
public sealed class Trainer : IDisposable
{
    private readonly nn.Module<Tensor, Tensor> _model;
    private readonly IBatchSource _training;
    private readonly IBatchSource? _validation;
    private readonly string? _validationStart;
    private readonly TrainingCheckpointStore? _checkpoints;
    private readonly TrainerOptions _options;
    private readonly CosineSchedule _schedule;
    private readonly AdamWOptimizer _optimizer;
    private readonly IReadOnlyList<(string Name, Parameter Parameter)> _trainable;
    private readonly MetricsLog _log;
    private List<string> _logHistory = [];
    private int _step;
    private int _schedulerStep;
    private double _epoch;

    /// <param name="model">input ids (batch, seq) int64 → logits (batch, seq, vocab).</param>
    /// <param name="rowRanges">From <see cref="FreezeReport.RowRanges"/> when patterns carried <c>[start:end]</c>.</param>
    /// <exception cref="TrainingConfigurationException">Invalid options or combinations, or no trainable parameter; nothing has run.</exception>
    public Trainer(nn.Module<Tensor, Tensor> model, IBatchSource training, TrainerOptions options, IBatchSource? validation = null,
        TrainingCheckpointStore? checkpoints = null, IReadOnlyDictionary<string, IReadOnlyList<RowRange>>? rowRanges = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(training);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate(validation is not null, checkpoints is not null);
        _model = model;
        _training = training;
        _validation = validation;
        _checkpoints = checkpoints;
        _options = options;
        _schedule = new CosineSchedule(options.WarmupSteps, options.TotalSteps, options.MinLearningRateRatio);
        _trainable = AdamWOptimizer.Trainable(model);
        _optimizer = new AdamWOptimizer(_trainable, options.AdamWOptions, rowRanges);
        _log = new MetricsLog(options.MetricsLogPath);
        // Each validation replays the same batches: the source is rewound to where it stood now.
        _validationStart = validation?.SaveState();
        torch.random.manual_seed(options.Seed);
    }

    public int CompletedSteps => _step;

    public TrainerOptions Options => _options;

    public AdamWOptimizer Optimizer => _optimizer;

    /// <summary>The metrics entries so far (JSON objects), including those restored by <see cref="Resume"/>.</summary>
    public IReadOnlyList<string> LogHistory => _logHistory;

    /// <summary>Raised after every optimizer step (after its validation and checkpoint). An exception thrown here stops training.</summary>
    public event Action<TrainingProgress>? Progress;

    /// <summary>
    /// Restores the newest complete checkpoint of <paramref name="store"/> that loads cleanly, passing over interrupted
    /// or corrupted ones (listed in the result). With none, training starts from step 0.
    /// </summary>
    /// <exception cref="TrainingConfigurationException">The checkpoint belongs to a different set-up (options, trainable parameters).</exception>
    public ResumeResult Resume(TrainingCheckpointStore store)
    {
        ArgumentNullException.ThrowIfNull(store);
        var scan = store.Scan();
        var skipped = scan.Skipped.ToList();
        foreach (var checkpoint in scan.Complete.Reverse())
        {
            TrainingState state;
            try
            {
                state = store.Load(checkpoint);
            }
            catch (TrainingCheckpointException e)
            {
                skipped.Add(new SkippedCheckpoint(checkpoint.Folder, e.Message));
                continue;
            }
            using (state)
                RestoreState(state);
            return new ResumeResult(checkpoint, skipped);
        }
        return new ResumeResult(null, skipped);
    }

    /// <summary>Runs the remaining steps up to <see cref="TrainerOptions.TotalSteps"/>.</summary>
    /// <exception cref="OperationCanceledException">
    /// Cancelled between steps. With checkpointing on, the steps finished so far are checkpointed first (unless the last
    /// one already was), so a resume loses none of them.
    /// </exception>
    public TrainingSummary Train(CancellationToken cancellationToken = default)
    {
        _log.Reset(_logHistory);
        int firstStep = _step + 1;
        var losses = new List<double>();
        double? lastValidation = null;
        var session = Stopwatch.StartNew();
        while (_step < _options.TotalSteps)
        {
            if (cancellationToken.IsCancellationRequested)
            {
                if (_options.CheckpointEvery > 0 && _step >= firstStep && !IsCheckpointStep(_step))
                    SaveCheckpoint();
                cancellationToken.ThrowIfCancellationRequested();
            }
            var clock = Stopwatch.StartNew();
            double learningRate = _schedule.LearningRate(_options.LearningRate, _schedulerStep);
            var (loss, gradNorm, inputTokens, targets, phases) = OptimizerStep(learningRate);
            double seconds = clock.Elapsed.TotalSeconds;
            _epoch = (_training as IEpochAware)?.Epoch ?? 0;
            losses.Add(loss);
            Record(MetricsLog.Entry(("type", "train"), ("step", _step), ("epoch", _epoch), ("loss", loss), ("learning_rate", learningRate),
                ("grad_norm", gradNorm), ("input_tokens", inputTokens), ("target_tokens", targets),
                ("tokens_per_second", inputTokens / Math.Max(seconds, 1e-9)), ("forward_seconds", phases.ForwardSeconds),
                ("backward_seconds", phases.BackwardSeconds), ("optimizer_seconds", phases.OptimizerSeconds), ("elapsed_seconds", session.Elapsed.TotalSeconds)));

            double? validationLoss = null;
            if (_options.ValidateEvery > 0 && _step % _options.ValidateEvery == 0)
            {
                var (value, validationTargets) = Validate();
                validationLoss = lastValidation = value;
                Record(MetricsLog.Entry(("type", "validation"), ("step", _step), ("loss", value), ("target_tokens", validationTargets)));
            }

            string? checkpointFolder = null;
            if (_options.CheckpointEvery > 0 && IsCheckpointStep(_step))
                checkpointFolder = SaveCheckpoint();

            int done = _step - firstStep + 1;
            var remaining = TimeSpan.FromSeconds(session.Elapsed.TotalSeconds / done * (_options.TotalSteps - _step));
            Progress?.Invoke(new TrainingProgress(_step, _options.TotalSteps, loss, learningRate, gradNorm,
                inputTokens / Math.Max(seconds, 1e-9), seconds, session.Elapsed, remaining, validationLoss, checkpointFolder, phases));
        }
        return new TrainingSummary(firstStep, _step, losses, lastValidation);
    }

    /// <summary>The steps the schedule checkpoints: every <see cref="TrainerOptions.CheckpointEvery"/>-th and the last.</summary>
    private bool IsCheckpointStep(int step) => step % _options.CheckpointEvery == 0 || step == _options.TotalSteps;

    private string SaveCheckpoint()
    {
        string folder = _checkpoints!.Save(CaptureState()).Folder;
        _checkpoints.Prune(_options.KeepLastCheckpoints);
        return folder;
    }

    /// <summary>The run's state now; its tensors are the live ones, so save it before the next step.</summary>
    public TrainingState CaptureState()
    {
        using var rng = torch.random.get_rng_state();
        return new TrainingState
        {
            Step = _step,
            Epoch = _epoch,
            SchedulerStep = _schedulerStep,
            TrainableWeights = _trainable.ToDictionary(p => p.Name, p => _optimizer.TrainedWeight(p.Name), StringComparer.Ordinal),
            OptimizerState = _trainable.ToDictionary(p => p.Name, p => _optimizer.StateOf(p.Name), StringComparer.Ordinal),
            RngStates = new Dictionary<string, byte[]>(StringComparer.Ordinal) { [TrainingState.TorchDefaultGenerator] = rng.bytes.ToArray() },
            DataPosition = _training.SaveState(),
            LogHistory = _logHistory.ToList(),
            Settings = _options.ResumeSettings(),
        };
    }

    /// <summary>Puts a saved state back: trainable weights, optimizer moments and steps, schedule, torch RNG, data position, log history.</summary>
    /// <exception cref="TrainingConfigurationException">Different options, trainable parameters, shapes or dtypes; nothing is changed then.</exception>
    public void RestoreState(TrainingState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        var expected = _options.ResumeSettings();
        foreach (var (key, value) in expected)
        {
            if (!state.Settings.TryGetValue(key, out var saved) || saved != value)
                throw new TrainingConfigurationException(
                    $"The checkpoint of step {state.Step} was written with {key} = {saved ?? "(not recorded)"}, but this run has {key} = {value}. " +
                    $"An exact resume needs the same {key}; use the original value, or start a new run from the saved weights.");
        }
        var names = _trainable.Select(p => p.Name).ToHashSet(StringComparer.Ordinal);
        var missing = names.Where(n => !state.TrainableWeights.ContainsKey(n)).ToList();
        var extra = state.TrainableWeights.Keys.Where(n => !names.Contains(n)).ToList();
        if (missing.Count > 0 || extra.Count > 0)
            throw new TrainingConfigurationException(
                "The checkpoint's trainable parameters differ from this model's" +
                (missing.Count > 0 ? $"; not in the checkpoint: {string.Join(", ", missing.Take(5))}" : "") +
                (extra.Count > 0 ? $"; not trainable here: {string.Join(", ", extra.Take(5))}" : "") +
                ". Freeze the model exactly as the run that saved it did.");
        foreach (var (name, _) in _trainable)
        {
            var saved = state.TrainableWeights[name];
            var trained = _optimizer.TrainedWeight(name);
            if (!saved.shape.SequenceEqual(trained.shape) || saved.dtype != trained.dtype)
                throw new TrainingConfigurationException(
                    $"The checkpoint holds \"{name}\" as {saved.dtype} [{string.Join(", ", saved.shape)}]; this run trains it as " +
                    $"{trained.dtype} [{string.Join(", ", trained.shape)}]. Resume with the same model, dtype and precision.");
        }
        if (!state.RngStates.TryGetValue(TrainingState.TorchDefaultGenerator, out var rngBytes))
            throw new TrainingConfigurationException($"The checkpoint of step {state.Step} has no {TrainingState.TorchDefaultGenerator} state; it cannot be resumed exactly.");
        if (state.Step > _options.TotalSteps)
            throw new TrainingConfigurationException($"The checkpoint is at step {state.Step}, past TotalSteps ({_options.TotalSteps}).");

        _optimizer.LoadState(state.OptimizerState);
        foreach (var (name, _) in _trainable)
            _optimizer.SetTrainedWeight(name, state.TrainableWeights[name]);
        using (var rng = torch.tensor(rngBytes, dtype: ScalarType.Byte))
            torch.random.set_rng_state(rng);
        _training.RestoreState(state.DataPosition);
        _step = state.Step;
        _schedulerStep = state.SchedulerStep;
        _epoch = state.Epoch;
        _logHistory = state.LogHistory.ToList();
    }

    public void Dispose() => _optimizer.Dispose();

    private (double Loss, double GradNorm, long InputTokens, long Targets, StepPhases Phases) OptimizerStep(double learningRate)
    {
        var microBatches = new List<Batch>(_options.GradientAccumulationSteps);
        try
        {
            for (int i = 0; i < _options.GradientAccumulationSteps; i++)
                microBatches.Add(CheckedBatch(_training.Next(), "training"));
            long targets = microBatches.Sum(b => CausalLmLoss.CountTargets(b.Labels));
            if (targets == 0)
                throw new InvalidDataException(
                    $"Step {_step + 1}: its {microBatches.Count} micro-batch(es) have no label other than {CausalLmLoss.IgnoreIndex}, so there is no loss to train on. " +
                    "Check the data preparation (masking) or drop such examples.");

            _model.train();
            double lossSum = 0, forwardSeconds = 0, backwardSeconds = 0;
            long inputTokens = 0;
            var clock = Stopwatch.StartNew();
            for (int i = 0; i < microBatches.Count; i++)
            {
                var batch = microBatches[i];
                using var scope = torch.NewDisposeScope();
                double start = clock.Elapsed.TotalSeconds;
                var summed = SummedLoss(batch);                                        // ()
                double forwardDone = clock.Elapsed.TotalSeconds;
                (summed / targets).backward();
                _optimizer.AccumulateGradients(lastMicroBatch: i == microBatches.Count - 1);
                forwardSeconds += forwardDone - start;
                backwardSeconds += clock.Elapsed.TotalSeconds - forwardDone;
                lossSum += summed.item<float>();
                inputTokens += batch.InputIds.numel();
            }

            double optimizerStart = clock.Elapsed.TotalSeconds;
            _optimizer.MaskFrozenRowGradients();
            double gradNorm = _optimizer.ClipGradientNorm(_options.MaxGradNorm);
            _optimizer.LearningRate = learningRate;
            _optimizer.Step();
            _optimizer.ZeroGrad();
            _step++;
            _schedulerStep++;
            var phases = new StepPhases(forwardSeconds, backwardSeconds, clock.Elapsed.TotalSeconds - optimizerStart);
            return (lossSum / targets, gradNorm, inputTokens, targets, phases);
        }
        finally
        {
            foreach (var batch in microBatches)
                batch.Dispose();
        }
    }

    private (double Loss, long Targets) Validate()
    {
        _validation!.RestoreState(_validationStart!);
        _model.eval();
        try
        {
            using var noGrad = torch.no_grad();
            double lossSum = 0;
            long targets = 0;
            for (int i = 0; i < _options.ValidationBatches; i++)
            {
                using var batch = CheckedBatch(_validation.Next(), "validation");
                using var scope = torch.NewDisposeScope();
                lossSum += SummedLoss(batch).item<float>();
                targets += CausalLmLoss.CountTargets(batch.Labels);
            }
            return (targets == 0 ? double.NaN : lossSum / targets, targets);
        }
        finally
        {
            _model.train();
        }
    }

    /// <summary>The batch's summed next-token loss; logits only at the target positions when the model can do that.</summary>
    private Tensor SummedLoss(Batch batch)
    {
        if (_model is not ISelectiveLogits selective)
        {
            if (batch.DocumentIds is not null)
                throw new TrainingConfigurationException(
                    $"The batches mark packed documents to keep apart, but the model ({_model.GetType().Name}) cannot mask attention " +
                    $"between them: it does not implement {nameof(ISelectiveLogits)}. Use a model that does, or batches without document ids.");
            return CausalLmLoss.SumOverTargets(_model.call(batch.InputIds), batch.Labels);   // (b, s, v) logits
        }
        var (positions, targets) = CausalLmLoss.Targets(batch.Labels);
        return CausalLmLoss.SumOverSelected(selective.LogitsAt(batch.InputIds, positions, batch.DocumentIds), targets);   // (n, v) logits
    }

    private static Batch CheckedBatch(Batch batch, string source)
    {
        if (batch.InputIds.dim() != 2 || !batch.InputIds.shape.SequenceEqual(batch.Labels.shape)
            || batch.InputIds.dtype != ScalarType.Int64 || batch.Labels.dtype != ScalarType.Int64
            || (batch.DocumentIds is { } documents && (!documents.shape.SequenceEqual(batch.InputIds.shape) || documents.dtype != ScalarType.Int64)))
        {
            var message = $"The {source} batch source returned input ids {batch.InputIds.dtype} [{string.Join(", ", batch.InputIds.shape)}], labels " +
                $"{batch.Labels.dtype} [{string.Join(", ", batch.Labels.shape)}]" +
                (batch.DocumentIds is { } d ? $" and document ids {d.dtype} [{string.Join(", ", d.shape)}]" : "") +
                "; expected all int64 (batch, seq) with the same shape.";
            batch.Dispose();
            throw new InvalidDataException(message);
        }
        if (batch.DocumentIds is null)
            return batch;
        // Targets that cross into a new packed document are not trained (CausalLmLoss.WithoutDocumentStarts).
        var labels = CausalLmLoss.WithoutDocumentStarts(batch.Labels, batch.DocumentIds);
        batch.Labels.Dispose();
        return batch with { Labels = labels };
    }

    private void Record(string entry)
    {
        _logHistory.Add(entry);
        _log.Append(entry);
    }
}
