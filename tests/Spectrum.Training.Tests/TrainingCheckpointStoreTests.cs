// Crash-safe checkpoints: exact round trip, interrupted saves, leftovers, corrupted markers and files, pruning.
using Spectrum.Training.Tests.TestSupport;
using TorchSharp;
using static TorchSharp.torch;

namespace Spectrum.Training.Tests;

public sealed class TrainingCheckpointStoreTests : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    private static TrainingState MakeState(int step, long bigElements = 10)
    {
        using var generator = new Generator((ulong)step);
        var weights = new Dictionary<string, Tensor>
        {
            ["model.layers.0.mlp.down_proj.weight"] = torch.randn(4, 3, generator: generator),
            ["model.norm.weight"] = torch.randn(3, generator: generator).to_type(ScalarType.BFloat16),
            ["model.embed_tokens.weight"] = torch.randn(bigElements, generator: generator),
        };
        var optimizer = weights.ToDictionary(p => p.Key, p => new AdamWParameterState(
            torch.randn_like(p.Value.to_type(ScalarType.Float32)).to_type(p.Value.dtype), torch.rand_like(p.Value.to_type(ScalarType.Float32)).to_type(p.Value.dtype), step * 10L + p.Key.Length));
        return new TrainingState
        {
            Step = step,
            Epoch = step / 3.0,
            SchedulerStep = step,
            TrainableWeights = weights,
            OptimizerState = optimizer,
            RngStates = new Dictionary<string, byte[]> { [TrainingState.TorchDefaultGenerator] = Enumerable.Range(0, 300).Select(i => (byte)(i * step)).ToArray() },
            DataPosition = $"{{\"position\":{step},\"file\":\"données \\\"quoted\\\"\"}}",
            LogHistory = [$"{{\"type\":\"train\",\"step\":{step},\"loss\":1E-05}}", "{\"note\":\"ünïcode\"}"],
            Settings = new Dictionary<string, string> { ["LearningRate"] = "1E-05", ["Seed"] = "42" },
            OwnsTensors = true,
        };
    }

    private static void AssertSameState(TrainingState expected, TrainingState actual)
    {
        Assert.Equal(expected.Step, actual.Step);
        Assert.Equal(expected.Epoch, actual.Epoch);
        Assert.Equal(expected.SchedulerStep, actual.SchedulerStep);
        Assert.Equal(expected.DataPosition, actual.DataPosition);
        Assert.Equal(expected.LogHistory, actual.LogHistory);
        Assert.Equal(expected.Settings.OrderBy(p => p.Key), actual.Settings.OrderBy(p => p.Key));
        Assert.Equal(expected.RngStates.Keys, actual.RngStates.Keys);
        Assert.Equal(expected.RngStates[TrainingState.TorchDefaultGenerator], actual.RngStates[TrainingState.TorchDefaultGenerator]);
        Assert.Equal(expected.TrainableWeights.Keys.Order(), actual.TrainableWeights.Keys.Order());
        foreach (var (name, tensor) in expected.TrainableWeights)
        {
            TensorAssert.Identical(tensor, actual.TrainableWeights[name], name);
            TensorAssert.Identical(expected.OptimizerState[name].ExpAvg, actual.OptimizerState[name].ExpAvg, name + " exp_avg");
            TensorAssert.Identical(expected.OptimizerState[name].ExpAvgSq, actual.OptimizerState[name].ExpAvgSq, name + " exp_avg_sq");
            Assert.Equal(expected.OptimizerState[name].Step, actual.OptimizerState[name].Step);
        }
    }

    [Fact]
    public void EverythingRoundTripsBitForBitIncludingTensorsLargerThanOneWriteChunk()
    {
        var store = new TrainingCheckpointStore(_folder.Path);
        using var state = MakeState(7, bigElements: TensorFiles.ChunkElements * 3 / 2);
        var info = store.Save(state);
        Assert.Equal(Path.Combine(_folder.Path, "checkpoint-7"), info.Folder);
        Assert.True(File.Exists(Path.Combine(info.Folder, TrainingCheckpointStore.MarkerFileName)));
        Assert.Equal(info, store.LatestComplete());
        using var loaded = store.Load(info);
        AssertSameState(state, loaded);
    }

    [Theory]
    [InlineData("files-written")]
    [InlineData("renamed")]
    public void ACrashDuringASaveLeavesThePreviousCheckpointAsTheLatest(string phase)
    {
        var store = new TrainingCheckpointStore(_folder.Path);
        using var first = MakeState(1);
        store.Save(first);
        store.OnSavePhase = p =>
        {
            if (p == phase)
                throw new IOException("simulated crash");
        };
        using var second = MakeState(2);
        var error = Assert.Throws<TrainingCheckpointException>(() => store.Save(second));
        Assert.Equal(TrainingCheckpointError.WriteFailed, error.Error);
        Assert.Contains("simulated crash", error.Message);

        Assert.Equal(1, store.LatestComplete()!.Step);
        Assert.Equal(["checkpoint-1"], Directory.GetDirectories(_folder.Path).Select(Path.GetFileName));
        using var loaded = store.Load(store.LatestComplete()!);
        AssertSameState(first, loaded);
    }

    [Fact]
    public void AFailureInsideTheTensorWriteLeavesNoPartialCheckpoint()
    {
        var store = new TrainingCheckpointStore(_folder.Path);
        using var first = MakeState(1);
        store.Save(first);
        var weights = new Dictionary<string, Tensor> { ["w"] = torch.zeros(new long[] { 2 }, ScalarType.ComplexFloat32) };
        using var bad = new TrainingState
        {
            Step = 2, SchedulerStep = 2, TrainableWeights = weights, DataPosition = "{}", RngStates = new Dictionary<string, byte[]>(),
            OptimizerState = new Dictionary<string, AdamWParameterState> { ["w"] = new(torch.zeros(2), torch.zeros(2), 1) },
            OwnsTensors = true,
        };
        var error = Assert.Throws<TrainingCheckpointException>(() => store.Save(bad));
        Assert.Equal(TrainingCheckpointError.WriteFailed, error.Error);
        Assert.Equal(["checkpoint-1"], Directory.GetDirectories(_folder.Path).Select(Path.GetFileName));
    }

    [Fact]
    public void AFileWritersFailureIsShownAsItsFileAndReasonWithoutItsOwnAdvice()
    {
        var written = new Spectrum.Checkpoints.CheckpointException(Spectrum.Checkpoints.CheckpointError.WriteFailed,
            "/runs/checkpoints/.checkpoint-2.tmp/optimizer.safetensors", "exp_avg.w", "… Fix the cause and write again.",
            new IOException("No space left on device"));

        Assert.Equal("optimizer.safetensors (tensor 'exp_avg.w'): No space left on device", TrainingCheckpointStore.CauseOf(written));
        Assert.Equal("plain", TrainingCheckpointStore.CauseOf(new InvalidOperationException("plain")));
    }

    [Fact]
    public void LeftoversOfAKilledSaveAreSkippedAndCleanedUp()
    {
        var store = new TrainingCheckpointStore(_folder.Path);
        using var first = MakeState(1);
        var good = store.Save(first);
        // A process killed mid-save leaves a temporary folder, or a renamed folder whose marker was never written.
        string temporary = Path.Combine(_folder.Path, ".checkpoint-3.tmp-0123456789abcdef");
        Directory.CreateDirectory(temporary);
        File.WriteAllBytes(Path.Combine(temporary, TrainingCheckpointStore.WeightsFileName), new byte[17]);
        string unmarked = Path.Combine(_folder.Path, "checkpoint-3");
        CopyFolder(good.Folder, unmarked);
        File.Delete(Path.Combine(unmarked, TrainingCheckpointStore.MarkerFileName));

        var scan = store.Scan();
        Assert.Equal([1], scan.Complete.Select(c => c.Step));
        Assert.Contains(scan.Skipped, s => s.Folder == temporary && s.Reason.Contains("did not finish"));
        Assert.Contains(scan.Skipped, s => s.Folder == unmarked && s.Reason.Contains("interrupted"));
        Assert.Equal(TrainingCheckpointError.MarkerMissing,
            Assert.Throws<TrainingCheckpointException>(() => store.Load(new CheckpointInfo(3, unmarked))).Error);

        using var fourth = MakeState(4);
        store.Save(fourth);
        store.Prune(keepLast: 5);
        Assert.Equal(["checkpoint-1", "checkpoint-4"], Directory.GetDirectories(_folder.Path).Select(Path.GetFileName).Order());
    }

    public static TheoryData<string, TrainingCheckpointError> Damage => new()
    {
        { "garbage-marker", TrainingCheckpointError.MarkerInvalid },
        { "marker-of-another-step", TrainingCheckpointError.MarkerInvalid },
        { "missing-optimizer", TrainingCheckpointError.FileMissing },
        { "truncated-weights", TrainingCheckpointError.FileSizeMismatch },
    };

    [Theory]
    [MemberData(nameof(Damage))]
    public void DamagedCheckpointsAreSkippedByScanAndRejectedByLoad(string damage, TrainingCheckpointError expected)
    {
        var store = new TrainingCheckpointStore(_folder.Path);
        using var first = MakeState(1);
        store.Save(first);
        using var second = MakeState(2);
        var damaged = store.Save(second);
        string marker = Path.Combine(damaged.Folder, TrainingCheckpointStore.MarkerFileName);
        switch (damage)
        {
            case "garbage-marker":
                File.WriteAllText(marker, "{\"format\": \"spectrum-training-checkpoint\", \"version\": 1, \"step\": ");
                break;
            case "marker-of-another-step":
                File.Copy(Path.Combine(_folder.Path, "checkpoint-1", TrainingCheckpointStore.MarkerFileName), marker, overwrite: true);
                break;
            case "missing-optimizer":
                File.Delete(Path.Combine(damaged.Folder, TrainingCheckpointStore.OptimizerFileName));
                break;
            case "truncated-weights":
                string weights = Path.Combine(damaged.Folder, TrainingCheckpointStore.WeightsFileName);
                File.WriteAllBytes(weights, File.ReadAllBytes(weights)[..^4]);
                break;
        }

        var scan = store.Scan();
        Assert.Equal([1], scan.Complete.Select(c => c.Step));
        Assert.Single(scan.Skipped, s => s.Folder == damaged.Folder);
        var error = Assert.Throws<TrainingCheckpointException>(() => store.Load(damaged));
        Assert.Equal(expected, error.Error);
        Assert.Contains(damaged.Folder, error.Message);
    }

    [Fact]
    public void SameSizeCorruptionIsCaughtByTheChecksumOnLoad()
    {
        var store = new TrainingCheckpointStore(_folder.Path);
        using var state = MakeState(3);
        var info = store.Save(state);
        string weights = Path.Combine(info.Folder, TrainingCheckpointStore.WeightsFileName);
        var bytes = File.ReadAllBytes(weights);
        bytes[^1] ^= 0x40;
        File.WriteAllBytes(weights, bytes);
        Assert.Equal(info, store.LatestComplete());   // sizes still match: only the checksum can tell
        var error = Assert.Throws<TrainingCheckpointException>(() => store.Load(info));
        Assert.Equal(TrainingCheckpointError.ChecksumMismatch, error.Error);
        Assert.Equal(weights, error.Path);
    }

    [Fact]
    public void PruneKeepsTheNewestCompleteCheckpoints()
    {
        var store = new TrainingCheckpointStore(_folder.Path);
        foreach (int step in new[] { 2, 4, 6, 8 })
        {
            using var state = MakeState(step);
            store.Save(state);
        }
        store.Prune(keepLast: 2);
        Assert.Equal([6, 8], store.Scan().Complete.Select(c => c.Step));
        Assert.Throws<ArgumentOutOfRangeException>(() => store.Prune(0));
    }

    [Fact]
    public void SavingAStepAgainReplacesItsCheckpoint()
    {
        var store = new TrainingCheckpointStore(_folder.Path);
        using var older = MakeState(5);
        store.Save(older);
        using var again = MakeState(5);
        var replaced = new TrainingState
        {
            Step = 5, SchedulerStep = 5, TrainableWeights = again.TrainableWeights, OptimizerState = again.OptimizerState,
            RngStates = again.RngStates, DataPosition = "{\"position\":99}",
        };
        store.Save(replaced);
        using var loaded = store.Load(store.LatestComplete()!);
        Assert.Equal("{\"position\":99}", loaded.DataPosition);
    }

    [Fact]
    public void AnEmptyOrMissingFolderHasNoCheckpoint()
    {
        Assert.Null(new TrainingCheckpointStore(_folder.File("absent")).LatestComplete());
        Assert.Null(new TrainingCheckpointStore(_folder.Path).LatestComplete());
    }

    private static void CopyFolder(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (string file in Directory.GetFiles(from))
            File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
    }
}
