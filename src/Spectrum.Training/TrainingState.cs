// Everything a run needs to continue exactly where it stopped: weights, optimizer, schedule, RNG, data position, history.
using static TorchSharp.torch;

namespace Spectrum.Training;

/// <summary>
/// A snapshot of a training run after <see cref="Step"/> optimizer steps. Captured from a live trainer its tensors
/// are the live ones (save it before the next step); loaded from a checkpoint it owns them and
/// <see cref="Dispose"/> frees them.
/// </summary>
public sealed class TrainingState : IDisposable
{
    /// <summary>Name of the torch default CPU generator's state in <see cref="RngStates"/> (it drives dropout).</summary>
    public const string TorchDefaultGenerator = "torch.default_generator";

    /// <summary>Optimizer steps completed.</summary>
    public required int Step { get; init; }

    /// <summary>Epochs of training data seen, as the batch source reports it (<see cref="IEpochAware"/>); 0 when unknown.</summary>
    public double Epoch { get; init; }

    /// <summary>Scheduler steps taken; the next optimizer step uses the schedule's value at this index.</summary>
    public required int SchedulerStep { get; init; }

    /// <summary>Every trainable parameter by full name (frozen ones come from the base model, not the checkpoint).</summary>
    public required IReadOnlyDictionary<string, Tensor> TrainableWeights { get; init; }

    /// <summary>AdamW moments and step per trainable parameter: exactly the names of <see cref="TrainableWeights"/>.</summary>
    public required IReadOnlyDictionary<string, AdamWParameterState> OptimizerState { get; init; }

    /// <summary>Generator states as raw bytes, e.g. <see cref="TorchDefaultGenerator"/>; the run uses no System.Random.</summary>
    public required IReadOnlyDictionary<string, byte[]> RngStates { get; init; }

    /// <summary>The training batch source's own position (<see cref="IBatchSource.SaveState"/>), opaque JSON.</summary>
    public required string DataPosition { get; init; }

    /// <summary>The metrics log so far, one JSON object per entry, exactly as written.</summary>
    public IReadOnlyList<string> LogHistory { get; init; } = [];

    /// <summary>Options that must be equal when resuming (schedule, optimizer, accumulation, seed), as text.</summary>
    public IReadOnlyDictionary<string, string> Settings { get; init; } = new Dictionary<string, string>(StringComparer.Ordinal);

    internal bool OwnsTensors { get; init; }

    public void Dispose()
    {
        if (!OwnsTensors)
            return;
        foreach (var tensor in TrainableWeights.Values)
            tensor.Dispose();
        foreach (var state in OptimizerState.Values)
        {
            state.ExpAvg.Dispose();
            state.ExpAvgSq.Dispose();
        }
    }
}
