// Settings of one training run; combinations that cannot work are rejected by the trainer before any step.
using System.Globalization;

namespace Spectrum.Training;

/// <summary>
/// Defaults follow HF Trainer (AdamW betas 0.9/0.999, eps 1e-8, no weight decay, clip at 1.0) and the paper's full
/// and Spectrum learning rate (1e-5; QLoRA used 2e-4).
/// </summary>
public sealed record TrainerOptions
{
    /// <summary>Optimizer steps to run in total (each of <see cref="GradientAccumulationSteps"/> micro-batches).</summary>
    public required int TotalSteps { get; init; }
    public double LearningRate { get; init; } = 1e-5;
    public double WeightDecay { get; init; }
    public double Beta1 { get; init; } = 0.9;
    public double Beta2 { get; init; } = 0.999;
    public double Eps { get; init; } = 1e-8;
    public int WarmupSteps { get; init; }
    /// <summary>The cosine ends at LearningRate × this (0 = HF's plain cosine).</summary>
    public double MinLearningRateRatio { get; init; }
    public int GradientAccumulationSteps { get; init; } = 1;
    /// <summary>Clip the global gradient L2 norm to this; null = no clipping (the norm is still logged).</summary>
    public double? MaxGradNorm { get; init; } = 1.0;
    /// <summary>Seeds torch's global generator (dropout) when the trainer is created; a resume restores the saved state instead.</summary>
    public long Seed { get; init; } = 42;
    /// <summary>Save a checkpoint every N steps and after the last step; 0 = never.</summary>
    public int CheckpointEvery { get; init; }
    public int KeepLastCheckpoints { get; init; } = 2;
    /// <summary>Evaluate every N steps on <see cref="ValidationBatches"/> batches of the validation source, always the same ones; 0 = never.</summary>
    public int ValidateEvery { get; init; }
    public int ValidationBatches { get; init; }
    /// <summary>JSON-lines metrics file: one object per step and per validation; null = no file.</summary>
    public string? MetricsLogPath { get; init; }

    /// <exception cref="TrainingConfigurationException">A value or combination that cannot work, naming the options involved.</exception>
    public void Validate(bool hasValidationSource, bool hasCheckpointStore)
    {
        _ = new CosineSchedule(WarmupSteps, TotalSteps, MinLearningRateRatio);
        if (GradientAccumulationSteps < 1)
            throw new TrainingConfigurationException($"GradientAccumulationSteps is {GradientAccumulationSteps}; expected at least 1.");
        if (MaxGradNorm is { } max && !(max > 0))
            throw new TrainingConfigurationException($"MaxGradNorm is {max}; expected a value > 0, or null to disable clipping.");
        if (CheckpointEvery < 0 || ValidateEvery < 0 || ValidationBatches < 0)
            throw new TrainingConfigurationException(
                $"CheckpointEvery ({CheckpointEvery}), ValidateEvery ({ValidateEvery}) and ValidationBatches ({ValidationBatches}) must not be negative.");
        if (CheckpointEvery > 0 && !hasCheckpointStore)
            throw new TrainingConfigurationException(
                $"CheckpointEvery is {CheckpointEvery} but no checkpoint store was given to the trainer. Pass a TrainingCheckpointStore or set CheckpointEvery to 0.");
        if (CheckpointEvery > 0 && KeepLastCheckpoints < 1)
            throw new TrainingConfigurationException(
                $"CheckpointEvery is {CheckpointEvery} but KeepLastCheckpoints is {KeepLastCheckpoints}: every checkpoint would be deleted. Keep at least 1.");
        if (ValidateEvery > 0 && !hasValidationSource)
            throw new TrainingConfigurationException(
                $"ValidateEvery is {ValidateEvery} but no validation batch source was given. Pass one or set ValidateEvery to 0.");
        if (ValidateEvery > 0 && ValidationBatches < 1)
            throw new TrainingConfigurationException(
                $"ValidateEvery is {ValidateEvery} but ValidationBatches is {ValidationBatches}; set how many validation batches to evaluate.");
        if (ValidateEvery == 0 && ValidationBatches > 0)
            throw new TrainingConfigurationException(
                $"ValidationBatches is {ValidationBatches} but ValidateEvery is 0, so validation never runs. Set ValidateEvery or drop ValidationBatches.");
        AdamWOptimizer.ValidateOptions(AdamWOptions);
    }

    internal AdamWOptions AdamWOptions => new(LearningRate, Beta1, Beta2, Eps, WeightDecay);

    /// <summary>The options a checkpoint must have been written with for an exact resume.</summary>
    internal IReadOnlyDictionary<string, string> ResumeSettings() => new Dictionary<string, string>(StringComparer.Ordinal)
    {
        [nameof(TotalSteps)] = Text(TotalSteps),
        [nameof(LearningRate)] = Text(LearningRate),
        [nameof(WeightDecay)] = Text(WeightDecay),
        [nameof(Beta1)] = Text(Beta1),
        [nameof(Beta2)] = Text(Beta2),
        [nameof(Eps)] = Text(Eps),
        [nameof(WarmupSteps)] = Text(WarmupSteps),
        [nameof(MinLearningRateRatio)] = Text(MinLearningRateRatio),
        [nameof(GradientAccumulationSteps)] = Text(GradientAccumulationSteps),
        [nameof(MaxGradNorm)] = MaxGradNorm is { } m ? Text(m) : "none",
        [nameof(Seed)] = Text(Seed),
    };

    private static string Text(double value) => value.ToString("R", CultureInfo.InvariantCulture);

    private static string Text(long value) => value.ToString(CultureInfo.InvariantCulture);
}
