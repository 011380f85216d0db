// What the trainer reports: progress after each optimizer step, the summary of a Train call, the outcome of a resume.
namespace Spectrum.Training;

/// <param name="Step">Optimizer steps completed (1-based).</param>
/// <param name="Loss">Mean next-token loss over the step's target tokens (all accumulated micro-batches).</param>
/// <param name="LearningRate">The rate this step used.</param>
/// <param name="GradNorm">Global L2 norm of the gradients before clipping (HF logs the same).</param>
/// <param name="TokensPerSecond">Input tokens (batch × seq, all micro-batches) per second of this step.</param>
/// <param name="StepSeconds">Wall time of this optimizer step (batches, forward, backward, optimizer; no validation or checkpoint).</param>
/// <param name="EstimatedRemaining">Mean step time of this session × steps left.</param>
/// <param name="ValidationLoss">Set on steps where validation ran.</param>
/// <param name="CheckpointFolder">Set on steps where a checkpoint was saved.</param>
/// <param name="Phases">Where this step's time went (validation and checkpointing excluded).</param>
public sealed record TrainingProgress(
    int Step,
    int TotalSteps,
    double Loss,
    double LearningRate,
    double GradNorm,
    double TokensPerSecond,
    double StepSeconds,
    TimeSpan Elapsed,
    TimeSpan EstimatedRemaining,
    double? ValidationLoss,
    string? CheckpointFolder,
    StepPhases Phases);

/// <summary>Seconds of one optimizer step: forward with the loss, backward (incl. moving gradients to float32 masters), and clipping + AdamW + zeroing.</summary>
public sealed record StepPhases(double ForwardSeconds, double BackwardSeconds, double OptimizerSeconds)
{
    public double TotalSeconds => ForwardSeconds + BackwardSeconds + OptimizerSeconds;
}

/// <param name="Losses">Loss of each step run by this call, in order.</param>
/// <param name="LastValidationLoss">The latest validation loss, if any ran in this call.</param>
public sealed record TrainingSummary(int FirstStep, int LastStep, IReadOnlyList<double> Losses, double? LastValidationLoss);

/// <param name="Checkpoint">The checkpoint resumed from; null when there was none (training starts at step 0).</param>
/// <param name="Skipped">Checkpoints passed over (interrupted saves, corrupted files), with the reason.</param>
public sealed record ResumeResult(CheckpointInfo? Checkpoint, IReadOnlyList<SkippedCheckpoint> Skipped);
