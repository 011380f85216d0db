// Rough training memory for full fine-tuning vs a Spectrum selection: weights, master copies, gradients, AdamW state.
namespace Spectrum.Selection;

/// <summary>
/// Bytes per parameter for mixed-precision AdamW training. Defaults: every weight held in bf16 (2 B); each trainable
/// parameter adds an fp32 master copy (4 B), a bf16 gradient (2 B) and AdamW's two fp32 moments (8 B), so full
/// fine-tuning costs 16 B per parameter. Activations, temporary buffers, CUDA context and fragmentation are NOT
/// included: they depend on batch size, sequence length and checkpointing, not on which modules are trainable.
/// </summary>
public sealed record TrainingMemoryAssumptions(
    int WeightBytesPerParameter = 2,
    int MasterWeightBytesPerTrainableParameter = 4,
    int GradientBytesPerTrainableParameter = 2,
    int OptimizerBytesPerTrainableParameter = 8)
{
    public static TrainingMemoryAssumptions MixedPrecisionAdamW { get; } = new();
}

/// <summary>Bytes per part of the training state; activations are not included (see <see cref="TrainingMemoryAssumptions"/>).</summary>
public sealed record MemoryEstimate(long WeightBytes, long MasterWeightBytes, long GradientBytes, long OptimizerBytes)
{
    public long TotalBytes => checked(WeightBytes + MasterWeightBytes + GradientBytes + OptimizerBytes);
}

public static class TrainingMemoryEstimator
{
    /// <exception cref="ArgumentOutOfRangeException">A count or byte size is negative, or more parameters are trainable than exist.</exception>
    /// <exception cref="OverflowException">A byte count does not fit 64 bits.</exception>
    public static MemoryEstimate Estimate(long totalParameters, long trainableParameters, TrainingMemoryAssumptions? assumptions = null)
    {
        var a = assumptions ?? TrainingMemoryAssumptions.MixedPrecisionAdamW;
        ArgumentOutOfRangeException.ThrowIfNegative(totalParameters);
        ArgumentOutOfRangeException.ThrowIfNegative(trainableParameters);
        if (trainableParameters > totalParameters)
            throw new ArgumentOutOfRangeException(nameof(trainableParameters), trainableParameters,
                $"Expected at most the {totalParameters} parameters of the model to be trainable, got {trainableParameters}. " +
                "Count both from the same list of tensors.");
        foreach (var (name, bytes) in (ReadOnlySpan<(string, int)>)
                 [(nameof(a.WeightBytesPerParameter), a.WeightBytesPerParameter),
                  (nameof(a.MasterWeightBytesPerTrainableParameter), a.MasterWeightBytesPerTrainableParameter),
                  (nameof(a.GradientBytesPerTrainableParameter), a.GradientBytesPerTrainableParameter),
                  (nameof(a.OptimizerBytesPerTrainableParameter), a.OptimizerBytesPerTrainableParameter)])
        {
            if (bytes < 0)
                throw new ArgumentOutOfRangeException(nameof(assumptions), bytes, $"{name} must not be negative.");
        }
        return new MemoryEstimate(
            checked(totalParameters * a.WeightBytesPerParameter),
            checked(trainableParameters * a.MasterWeightBytesPerTrainableParameter),
            checked(trainableParameters * a.GradientBytesPerTrainableParameter),
            checked(trainableParameters * a.OptimizerBytesPerTrainableParameter));
    }
}
