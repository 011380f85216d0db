// The learning-rate schedule: linear warm-up, then a half cosine down to a floor (HF get_cosine_schedule_with_warmup).
namespace Spectrum.Training;

/// <summary>
/// Multiplier of the base learning rate for the optimizer step with 0-based index <c>step</c>, exactly as HF's
/// <c>LambdaLR</c> applies it: step 0 uses <c>lr_lambda(0)</c> (0 during warm-up), and the scheduler advances after
/// each optimizer step. With <c>minLrRatio</c> r the cosine runs from 1 down to r (HF's
/// <c>get_cosine_with_min_lr_schedule_with_warmup</c>); r = 0 is the plain HF schedule.
/// </summary>
public sealed class CosineSchedule
{
    /// <exception cref="TrainingConfigurationException">Negative warm-up, no steps, warm-up longer than training, or a ratio outside [0, 1].</exception>
    public CosineSchedule(int warmupSteps, int totalSteps, double minLrRatio = 0.0)
    {
        if (totalSteps < 1)
            throw new TrainingConfigurationException($"TotalSteps is {totalSteps}; expected at least 1.");
        if (warmupSteps < 0)
            throw new TrainingConfigurationException($"WarmupSteps is {warmupSteps}; expected 0 or more.");
        if (warmupSteps > totalSteps)
            throw new TrainingConfigurationException(
                $"WarmupSteps ({warmupSteps}) exceeds TotalSteps ({totalSteps}): the learning rate would never leave warm-up. Lower WarmupSteps or raise TotalSteps.");
        if (!(minLrRatio is >= 0 and <= 1))
            throw new TrainingConfigurationException($"MinLearningRateRatio is {minLrRatio}; expected a value in [0, 1].");
        WarmupSteps = warmupSteps;
        TotalSteps = totalSteps;
        MinLrRatio = minLrRatio;
    }

    public int WarmupSteps { get; }
    public int TotalSteps { get; }
    public double MinLrRatio { get; }

    /// <summary>lr(step) / base lr. Steps past <see cref="TotalSteps"/> stay at the floor.</summary>
    public double Multiplier(int step)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(step);
        if (step < WarmupSteps)
            return (double)step / Math.Max(1, WarmupSteps);
        double progress = Math.Min(1.0, (double)(step - WarmupSteps) / Math.Max(1, TotalSteps - WarmupSteps));
        double cosine = 0.5 * (1.0 + Math.Cos(Math.PI * progress));
        return MinLrRatio + (1.0 - MinLrRatio) * cosine;
    }

    public double LearningRate(double baseLearningRate, int step) => baseLearningRate * Multiplier(step);
}
