// The training loop on a tiny model: exact resume after a crash, freezing, accumulation, clipping, logs, option checks.
using System.Text.Json;
using Spectrum.Training.Tests.TestSupport;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Spectrum.Training.Tests;

public sealed class TrainerTests : IDisposable
{
    private const int Vocab = 13;
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    private static readonly string[] SpectrumPatterns = ["^lm_head.weight$", "model.layers.1.mlp", "model.norm"];

    private TrainerOptions ResumeOptions(string logName) => new()
    {
        TotalSteps = 10,
        LearningRate = 1e-2,
        WeightDecay = 0.01,
        WarmupSteps = 2,
        MinLearningRateRatio = 0.1,
        GradientAccumulationSteps = 2,
        MaxGradNorm = 0.5,
        Seed = 7,
        CheckpointEvery = 4,
        KeepLastCheckpoints = 3,
        ValidateEvery = 3,
        ValidationBatches = 2,
        MetricsLogPath = _folder.File(logName),
    };

    private static (TinyCausalLm Model, ToyBatchSource Training, ToyBatchSource Validation) FreshRun()
    {
        var model = new TinyCausalLm(vocab: Vocab, dropout: 0.2, seed: 1);
        ParameterFreezer.Apply(model, SpectrumPatterns);
        return (model, new ToyBatchSource(Vocab, batch: 2, seq: 7, seed: 100), new ToyBatchSource(Vocab, batch: 3, seq: 7, seed: 200));
    }

    [Fact]
    public void ResumingAfterACrashReproducesTheUninterruptedRunBitForBit()
    {
        // Uninterrupted: 10 steps.
        var (modelA, trainA, validA) = FreshRun();
        var storeA = new TrainingCheckpointStore(_folder.File("a"));
        IReadOnlyList<double> straight;
        using (var trainer = new Trainer(modelA, trainA, ResumeOptions("a.jsonl"), validA, storeA))
            straight = trainer.Train().Losses;
        Assert.Equal(10, straight.Count);
        Assert.All(straight, loss => Assert.True(double.IsFinite(loss)));

        // Crash after step 6; the last checkpoint is step 4.
        var (modelB, trainB, validB) = FreshRun();
        var storeB = new TrainingCheckpointStore(_folder.File("b"));
        var beforeCrash = new List<double>();
        using (var trainer = new Trainer(modelB, trainB, ResumeOptions("b.jsonl"), validB, storeB))
        {
            trainer.Progress += p =>
            {
                beforeCrash.Add(p.Loss);
                if (p.Step == 6)
                    throw new InvalidOperationException("simulated crash");
            };
            Assert.Throws<InvalidOperationException>(() => trainer.Train());
        }
        Assert.Equal(straight.Take(6), beforeCrash);
        Assert.Equal(4, storeB.LatestComplete()!.Step);

        // A new process: fresh model and sources, resume, run to the end.
        var (modelC, trainC, validC) = FreshRun();
        IReadOnlyList<double> resumed;
        using (var trainer = new Trainer(modelC, trainC, ResumeOptions("b.jsonl"), validC, storeB))
        {
            var resume = trainer.Resume(storeB);
            Assert.Equal(4, resume.Checkpoint!.Step);
            Assert.Equal(4, trainer.CompletedSteps);
            resumed = trainer.Train().Losses;
        }
        Assert.Equal(straight.Skip(4), resumed);   // exact double equality, steps 5..10

        foreach (var (name, parameter) in modelA.named_parameters())
            TensorAssert.Identical(parameter, modelC.named_parameters().Single(p => p.name == name).parameter, name);
        // The resumed log drops what the crashed run wrote after step 4, so it matches the uninterrupted log.
        Assert.Equal(DeterministicLog(_folder.File("a.jsonl")), DeterministicLog(_folder.File("b.jsonl")));
        Assert.Contains(DeterministicLog(_folder.File("a.jsonl")), line => line.Contains("\"type\":\"validation\""));
    }

    /// <summary>
    /// Stopping on request (Ctrl-C) between checkpoints checkpoints the finished steps first, and resuming from that
    /// checkpoint reproduces the uninterrupted run exactly.
    /// </summary>
    [Fact]
    public void StoppingOnRequestCheckpointsTheFinishedStepsAndResumesExactly()
    {
        var (modelA, trainA, validA) = FreshRun();
        IReadOnlyList<double> straight;
        using (var trainer = new Trainer(modelA, trainA, ResumeOptions("a.jsonl"), validA, new TrainingCheckpointStore(_folder.File("a"))))
            straight = trainer.Train().Losses;

        // Stop requested during step 6; checkpoints fall on steps 4 and 8.
        var store = RunUntilStoppedAt(6, "b");
        Assert.Equal([4, 6], store.Scan().Complete.Select(c => c.Step));

        var (modelC, trainC, validC) = FreshRun();
        IReadOnlyList<double> resumed;
        using (var trainer = new Trainer(modelC, trainC, ResumeOptions("b.jsonl"), validC, store))
        {
            Assert.Equal(6, trainer.Resume(store).Checkpoint!.Step);
            resumed = trainer.Train().Losses;
        }
        Assert.Equal(straight.Skip(6), resumed);
        Assert.Equal(DeterministicLog(_folder.File("a.jsonl")), DeterministicLog(_folder.File("b.jsonl")));

        // A stop right after a checkpointed step writes no second copy of it.
        Assert.Equal([4], RunUntilStoppedAt(4, "d").Scan().Complete.Select(c => c.Step));
    }

    /// <summary>A fresh run whose stop is requested during <paramref name="step"/>; returns its checkpoint store.</summary>
    private TrainingCheckpointStore RunUntilStoppedAt(int step, string name)
    {
        var (model, training, validation) = FreshRun();
        var store = new TrainingCheckpointStore(_folder.File(name));
        using var stop = new CancellationTokenSource();
        using var trainer = new Trainer(model, training, ResumeOptions($"{name}.jsonl"), validation, store);
        trainer.Progress += p =>
        {
            if (p.Step == step)
                stop.Cancel();
        };
        Assert.ThrowsAny<OperationCanceledException>(() => trainer.Train(stop.Token));
        Assert.Equal(step, trainer.CompletedSteps);
        return store;
    }

    /// <summary>
    /// A model that offers logits at chosen positions is trained through them alone (its full forward is never called)
    /// and the step equals the one a full-logits loss gives: loss to 1e-6, gradient norm to 1e-5 relative.
    /// </summary>
    [Fact]
    public void AModelWithSelectiveLogitsIsTrainedOnTheTargetPositionsOnlyWithTheSameResult()
    {
        var config = Spectrum.Modeling.LlamaConfig.Tiny(hiddenSize: 32, intermediateSize: 64, vocabSize: Vocab) with { TieWordEmbeddings = true };
        using var model = new SelectiveOnly(new Spectrum.Modeling.LlamaForCausalLM(config, generator: new Generator(8)));
        using var twin = new Spectrum.Modeling.LlamaForCausalLM(config, generator: new Generator(8));
        var options = new TrainerOptions { TotalSteps = 1, LearningRate = 1e-3, ValidateEvery = 1, ValidationBatches = 1 };
        TrainingProgress? reported = null;
        using (var trainer = new Trainer(model, new ToyBatchSource(Vocab, 2, 7, seed: 1), options, new ToyBatchSource(Vocab, 2, 7, seed: 1)))
        {
            trainer.Progress += p => reported = p;
            trainer.Train();
        }
        Assert.True(model.SelectedRows > 0);

        using var batch = new ToyBatchSource(Vocab, 2, 7, seed: 1).Next();
        using var logits = twin.call(batch.InputIds);
        using var summed = CausalLmLoss.SumOverTargets(logits, batch.Labels);
        double targets = CausalLmLoss.CountTargets(batch.Labels);
        (summed / targets).backward();
        double norm = Math.Sqrt(twin.parameters().Where(p => p.grad is not null).Sum(p => p.grad!.to_type(ScalarType.Float64).pow(2).sum().item<double>()));
        Assert.Equal(summed.item<float>() / targets, reported!.Loss, 1e-6 * Math.Abs(reported.Loss));
        Assert.Equal(norm, reported.GradNorm, 1e-5 * norm);
        Assert.True(double.IsFinite(reported.ValidationLoss!.Value));
    }

    /// <summary>
    /// Batches with document ids train each packed document as if alone: the trainer's first loss equals the loss of a
    /// twin model over the documents one by one (same weights, targets summed then divided by their count).
    /// </summary>
    [Fact]
    public void PackedDocumentsInABatchTrainAsIfEachWereAlone()
    {
        var config = Spectrum.Modeling.LlamaConfig.Tiny(hiddenSize: 32, intermediateSize: 64, vocabSize: Vocab) with { InitializerRange = 0.3 };
        using var model = new Spectrum.Modeling.LlamaForCausalLM(config, generator: new Generator(8));
        using var twin = new Spectrum.Modeling.LlamaForCausalLM(config, generator: new Generator(8));
        TrainingProgress? first = null;
        using (var trainer = new Trainer(model, new ToyBatchSource(Vocab, 2, 12, seed: 1, documentLength: 4), new TrainerOptions { TotalSteps = 1, LearningRate = 1e-3 }))
        {
            trainer.Progress += p => first ??= p;
            trainer.Train();
        }

        using var batch = new ToyBatchSource(Vocab, 2, 12, seed: 1).Next();
        double summed = 0, targets = 0, shared;
        using (torch.no_grad())
        {
            for (long start = 0; start < 12; start += 4)
            {
                using var ids = batch.InputIds.narrow(1, start, 4);
                using var labels = batch.Labels.narrow(1, start, 4);
                using var logits = twin.call(ids);
                summed += CausalLmLoss.SumOverTargets(logits, labels).item<float>();
                targets += CausalLmLoss.CountTargets(labels);
            }
            using var whole = twin.call(batch.InputIds);
            shared = CausalLmLoss.SumOverTargets(whole, batch.Labels).item<float>() / CausalLmLoss.CountTargets(batch.Labels);
        }
        Assert.Equal(summed / targets, first!.Loss, 1e-5 * Math.Abs(first.Loss));
        Assert.NotEqual(shared, first.Loss, 1e-3);   // the same rows with attention across documents
    }

    [Fact]
    public void DocumentIdsForAModelThatCannotMaskAttentionAreRefused()
    {
        using var model = new TinyCausalLm();
        using var trainer = new Trainer(model, new ToyBatchSource(Vocab, 2, 8, seed: 1, documentLength: 4), new TrainerOptions { TotalSteps = 1 });
        var error = Assert.Throws<TrainingConfigurationException>(() => trainer.Train());
        Assert.Contains("packed documents", error.Message);
        Assert.Contains(nameof(TinyCausalLm), error.Message);
    }

    /// <summary>Offers only <see cref="Spectrum.Modeling.ISelectiveLogits"/>: calling the full forward fails the test.</summary>
    private sealed class SelectiveOnly : nn.Module<Tensor, Tensor>, Spectrum.Modeling.ISelectiveLogits
    {
        private readonly Spectrum.Modeling.LlamaForCausalLM inner;

        public SelectiveOnly(Spectrum.Modeling.LlamaForCausalLM model) : base(nameof(SelectiveOnly))
        {
            inner = model;
            RegisterComponents();
        }

        public long SelectedRows { get; private set; }

        public override Tensor forward(Tensor input) => throw new InvalidOperationException("the trainer asked for every position's logits");

        public Tensor LogitsAt(Tensor inputIds, Tensor flatPositions, Tensor? documentIds = null)
        {
            SelectedRows += flatPositions.numel();
            return inner.LogitsAt(inputIds, flatPositions, documentIds);
        }
    }

    [Fact]
    public void FrozenTensorsStayBitIdenticalAndOnlyTrainableOnesChangeAndHaveState()
    {
        var (model, training, _) = FreshRun();
        var before = model.SnapshotParameters();
        using var trainer = new Trainer(model, training, new TrainerOptions { TotalSteps = 3, LearningRate = 1e-2, WeightDecay = 0.1 });
        trainer.Train();
        foreach (var (name, parameter) in model.named_parameters())
        {
            bool trainable = parameter.requires_grad;
            Assert.Equal(trainable, trainer.Optimizer.HasState(name));
            if (trainable)
                Assert.False(TensorAssert.BitEqual(before[name], parameter), $"{name} is trainable but did not change");
            else
                TensorAssert.Identical(before[name], parameter, name);
        }
        Assert.Contains(model.named_parameters(), p => !p.parameter.requires_grad);
    }

    [Fact]
    public void AccumulatingKMicroBatchesEqualsOneBatchKTimesLarger()
    {
        var small = new TinyCausalLm(vocab: Vocab, seed: 3);
        var large = new TinyCausalLm(vocab: Vocab, seed: 3);
        var options = new TrainerOptions { TotalSteps = 3, LearningRate = 1e-2, MaxGradNorm = null };
        IReadOnlyList<double> accumulated, single;
        var accumulatedNorms = new List<double>();
        var singleNorms = new List<double>();
        using (var trainer = new Trainer(small, new ToyBatchSource(Vocab, 2, 7, seed: 5), options with { GradientAccumulationSteps = 3 }))
        {
            trainer.Progress += p => accumulatedNorms.Add(p.GradNorm);
            accumulated = trainer.Train().Losses;
        }
        using (var trainer = new Trainer(large, new ConcatenatingSource(new ToyBatchSource(Vocab, 2, 7, seed: 5), 3), options))
        {
            trainer.Progress += p => singleNorms.Add(p.GradNorm);
            single = trainer.Train().Losses;
        }
        // The gradient itself, not just the parameters: Adam's update is nearly scale-free and would hide a wrongly scaled gradient.
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(single[i], accumulated[i], 1e-6);
            Assert.Equal(singleNorms[i], accumulatedNorms[i], 1e-5);
        }
        foreach (var (name, parameter) in small.named_parameters())
        {
            var other = large.named_parameters().Single(p => p.name == name).parameter;
            Assert.True((parameter - other).abs().max().item<float>() < 1e-5, $"{name} differs between accumulation and one large batch");
        }
    }

    /// <summary>
    /// The norm is reported before clipping, and the step applies clip_grad_norm_'s factor: the same update as
    /// TorchSharp's own clip_grad_norm_ followed by our step on the clipped gradients.
    /// </summary>
    [Theory]
    [InlineData(1.0, 5.0)]     // over the bound: scaled to norm 1
    [InlineData(10.0, 5.0)]    // under it: untouched
    [InlineData(null, 5.0)]
    public void ClippingReportsTheNormBeforeAndStepsWithClipGradNormsFactor(double? maxNorm, double expectedNorm)
    {
        var ours = new[] { new Parameter(torch.ones(2)), new Parameter(torch.ones(1)) };
        var theirs = ours.Select(p => new Parameter(p.detach().clone())).ToArray();
        using var optimizer = new AdamWOptimizer([("a", ours[0]), ("b", ours[1])], new AdamWOptions(LearningRate: 0.1));
        using var reference = new AdamWOptimizer([("a", theirs[0]), ("b", theirs[1])], new AdamWOptions(LearningRate: 0.1));
        // Two steps, so the second moment (which the scale enters squared) differs from a plain sign step.
        foreach (float factor in new[] { 1f, 0.5f })
        {
            foreach (var set in new[] { ours, theirs })
            {
                set[0].grad = torch.tensor(new[] { 3f * factor, 0f });
                set[1].grad = torch.tensor(new[] { 4f * factor });
            }
            double norm = optimizer.ClipGradientNorm(maxNorm);
            if (maxNorm is { } max)
                torch.nn.utils.clip_grad_norm_(theirs, max);
            Assert.Equal(expectedNorm * factor, norm, 6);
            Assert.Equal(3f * factor, ours[0].grad![0].item<float>());   // the gradient itself is left as it is
            optimizer.Step();
            reference.Step();
            optimizer.ZeroGrad();
            reference.ZeroGrad();
        }
        for (int i = 0; i < 2; i++)
            Assert.True((ours[i] - theirs[i]).abs().max().item<float>() <= 1e-7f, $"parameter {i} differs from clip_grad_norm_ then step");
    }

    [Fact]
    public void TheLoggedGradientNormIsTheUnclippedNormOfTheStepsGradient()
    {
        var model = new TinyCausalLm(vocab: Vocab, seed: 9);
        var twin = new TinyCausalLm(vocab: Vocab, seed: 9);
        double reported = double.NaN;
        using (var trainer = new Trainer(model, new ToyBatchSource(Vocab, 2, 7, seed: 1), new TrainerOptions { TotalSteps = 1, MaxGradNorm = 1e-3 }))
        {
            trainer.Progress += p => reported = p.GradNorm;
            trainer.Train();
        }
        using var batch = new ToyBatchSource(Vocab, 2, 7, seed: 1).Next();
        using var logits = twin.call(batch.InputIds);
        using var loss = CausalLmLoss.SumOverTargets(logits, batch.Labels) / CausalLmLoss.CountTargets(batch.Labels);
        loss.backward();
        double expected = Math.Sqrt(twin.parameters().Sum(p => p.grad!.pow(2).sum().item<float>()));
        Assert.Equal(expected, reported, 4);
        Assert.True(reported > 1e-3);   // so it was clipped, and the log shows the norm before clipping
    }

    [Fact]
    public void MetricsLogHasOneObjectPerStepAndPerValidation()
    {
        var (model, training, validation) = FreshRun();
        var progress = new List<TrainingProgress>();
        var options = new TrainerOptions
        {
            TotalSteps = 4, WarmupSteps = 2, LearningRate = 1e-3, ValidateEvery = 2, ValidationBatches = 1, MetricsLogPath = _folder.File("m.jsonl"),
        };
        using (var trainer = new Trainer(model, training, options, validation))
        {
            trainer.Progress += progress.Add;
            trainer.Train();
        }
        var entries = File.ReadAllLines(_folder.File("m.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(["train", "train", "validation", "train", "train", "validation"], entries.Select(e => e.GetProperty("type").GetString()));
        var schedule = new CosineSchedule(2, 4);
        var train = entries.Where(e => e.GetProperty("type").GetString() == "train").ToList();
        for (int i = 0; i < 4; i++)
        {
            Assert.Equal(i + 1, train[i].GetProperty("step").GetInt32());
            Assert.Equal(schedule.LearningRate(1e-3, i), train[i].GetProperty("learning_rate").GetDouble(), 15);
            Assert.Equal(progress[i].Loss, train[i].GetProperty("loss").GetDouble());
            Assert.Equal(14, train[i].GetProperty("input_tokens").GetInt64());          // batch 2 × seq 7
            Assert.True(train[i].GetProperty("tokens_per_second").GetDouble() > 0);
            double phases = train[i].GetProperty("forward_seconds").GetDouble() + train[i].GetProperty("backward_seconds").GetDouble()
                            + train[i].GetProperty("optimizer_seconds").GetDouble();
            Assert.True(train[i].GetProperty("forward_seconds").GetDouble() > 0 && train[i].GetProperty("backward_seconds").GetDouble() > 0);
            // The phases are parts of the step, which also includes fetching the batch.
            Assert.InRange(phases, 0, 14 / train[i].GetProperty("tokens_per_second").GetDouble() * 1.0001);
            Assert.Equal(progress[i].Phases.TotalSeconds, phases, 9);
            Assert.Equal((i + 1) / 4.0, train[i].GetProperty("epoch").GetDouble());      // the source's 4 batches per epoch
        }
        Assert.Equal([null, 0.0, null, 0.0], progress.Select(p => p.ValidationLoss is null ? (double?)null : 0.0));
        // Each validation replays the same batches, so its target count is constant.
        var validationTargets = entries.Where(e => e.GetProperty("type").GetString() == "validation").Select(e => e.GetProperty("target_tokens").GetInt64()).Distinct();
        Assert.Single(validationTargets);
        Assert.Equal(TimeSpan.Zero, progress[^1].EstimatedRemaining);
    }

    [Fact]
    public void ResumeSkipsACorruptedNewestCheckpointAndUsesTheOneBefore()
    {
        var (model, training, _) = FreshRun();
        var store = new TrainingCheckpointStore(_folder.File("store"));
        var options = new TrainerOptions { TotalSteps = 4, CheckpointEvery = 2, KeepLastCheckpoints = 5 };
        using (var trainer = new Trainer(model, training, options, checkpoints: store))
            trainer.Train();
        string weights = Path.Combine(_folder.File("store"), "checkpoint-4", TrainingCheckpointStore.WeightsFileName);
        var bytes = File.ReadAllBytes(weights);
        bytes[^2] ^= 1;
        File.WriteAllBytes(weights, bytes);

        var (fresh, freshTraining, _) = FreshRun();
        using var resumed = new Trainer(fresh, freshTraining, options, checkpoints: store);
        var result = resumed.Resume(store);
        Assert.Equal(2, result.Checkpoint!.Step);
        Assert.Contains(result.Skipped, s => s.Folder.EndsWith("checkpoint-4", StringComparison.Ordinal) && s.Reason.Contains("SHA-256"));
        Assert.Equal(2, resumed.CompletedSteps);
        Assert.Equal(2, freshTraining.Position);   // the data source continues after the two batches of steps 1 and 2
    }

    [Fact]
    public void ResumingWithDifferentOptionsNamesTheOption()
    {
        var (model, training, _) = FreshRun();
        var store = new TrainingCheckpointStore(_folder.File("store"));
        using (var trainer = new Trainer(model, training, new TrainerOptions { TotalSteps = 2, CheckpointEvery = 2 }, checkpoints: store))
            trainer.Train();
        var (fresh, freshTraining, _) = FreshRun();
        using var other = new Trainer(fresh, freshTraining, new TrainerOptions { TotalSteps = 2, CheckpointEvery = 2, GradientAccumulationSteps = 2 }, checkpoints: store);
        var error = Assert.Throws<TrainingConfigurationException>(() => other.Resume(store));
        Assert.Contains("GradientAccumulationSteps", error.Message);
        Assert.Equal(0, other.CompletedSteps);
    }

    [Fact]
    public void ResumingWithOtherTrainableParametersIsRejected()
    {
        var (model, training, _) = FreshRun();
        var store = new TrainingCheckpointStore(_folder.File("store"));
        var options = new TrainerOptions { TotalSteps = 2, CheckpointEvery = 2 };
        using (var trainer = new Trainer(model, training, options, checkpoints: store))
            trainer.Train();
        var other = new TinyCausalLm(vocab: Vocab, seed: 1);
        ParameterFreezer.Apply(other, ["^lm_head.weight$"]);
        using var mismatched = new Trainer(other, new ToyBatchSource(Vocab, 2, 7, 100), options, checkpoints: store);
        var error = Assert.Throws<TrainingConfigurationException>(() => mismatched.Resume(store));
        Assert.Contains("model.layers.1.mlp", error.Message);
    }

    public static TheoryData<TrainerOptions, bool, bool, string, string> InvalidCombinations => new()
    {
        { new TrainerOptions { TotalSteps = 5, ValidateEvery = 2, ValidationBatches = 1 }, false, false, "ValidateEvery", "validation batch source" },
        { new TrainerOptions { TotalSteps = 5, ValidateEvery = 2 }, true, false, "ValidateEvery", "ValidationBatches" },
        { new TrainerOptions { TotalSteps = 5, ValidationBatches = 3 }, true, false, "ValidationBatches", "ValidateEvery" },
        { new TrainerOptions { TotalSteps = 5, CheckpointEvery = 2 }, false, false, "CheckpointEvery", "checkpoint store" },
        { new TrainerOptions { TotalSteps = 5, CheckpointEvery = 2, KeepLastCheckpoints = 0 }, false, true, "CheckpointEvery", "KeepLastCheckpoints" },
        { new TrainerOptions { TotalSteps = 5, WarmupSteps = 6 }, false, false, "WarmupSteps", "TotalSteps" },
        { new TrainerOptions { TotalSteps = 5, GradientAccumulationSteps = 0 }, false, false, "GradientAccumulationSteps", "at least 1" },
        { new TrainerOptions { TotalSteps = 5, MaxGradNorm = 0 }, false, false, "MaxGradNorm", "null" },
        { new TrainerOptions { TotalSteps = 5, LearningRate = 0.1, WeightDecay = 20 }, false, false, "LearningRate", "WeightDecay" },
    };

    [Theory]
    [MemberData(nameof(InvalidCombinations))]
    public void InvalidOptionCombinationsFailBeforeAnyWork(TrainerOptions options, bool withValidation, bool withStore, string first, string second)
    {
        var (model, training, validation) = FreshRun();
        var before = model.SnapshotParameters();
        var error = Assert.Throws<TrainingConfigurationException>(() => new Trainer(model, training, options,
            withValidation ? validation : null, withStore ? new TrainingCheckpointStore(_folder.File("s")) : null));
        Assert.Contains(first, error.Message);
        Assert.Contains(second, error.Message);
        Assert.Equal(0, training.Position);
        Assert.False(Directory.Exists(_folder.File("s")));
        foreach (var (name, parameter) in model.named_parameters())
            TensorAssert.Identical(before[name], parameter, name);
    }

    [Fact]
    public void AModelWithEveryParameterFrozenIsRejected()
    {
        var model = new TinyCausalLm(vocab: Vocab);
        foreach (var parameter in model.parameters())
            parameter.requires_grad = false;
        var error = Assert.Throws<TrainingConfigurationException>(() => new Trainer(model, new ToyBatchSource(Vocab, 2, 7, 1), new TrainerOptions { TotalSteps = 1 }));
        Assert.Contains("frozen", error.Message);
    }

    [Fact]
    public void AStepWithoutAnyLabelIsADataErrorNamingTheStep()
    {
        var model = new TinyCausalLm(vocab: Vocab);
        using var trainer = new Trainer(model, new AllIgnoredSource(), new TrainerOptions { TotalSteps = 2 });
        var error = Assert.Throws<InvalidDataException>(() => trainer.Train());
        Assert.Contains("Step 1", error.Message);
    }

    [Fact]
    public void LoraTrainingChangesOnlyTheAdaptersAndQloraLeavesTheCodesUntouched()
    {
        foreach (bool quantize in new[] { false, true })
        {
            var model = new TinyCausalLm(vocab: Vocab, hidden: 32, seed: 4);
            using var generator = new Generator(17);
            LoraInjection.Apply(model, new LoraOptions(Rank: 4), model.ReplaceModule, quantizeBase: quantize, generator: generator);
            ParameterFreezer.FreezeAllExcept(model, LoraLinear.IsAdapterParameter);
            var parameters = model.SnapshotParameters();
            var buffers = model.named_buffers().ToDictionary(b => b.name, b => b.buffer.clone());
            using (var trainer = new Trainer(model, new ToyBatchSource(Vocab, 2, 7, 3), new TrainerOptions { TotalSteps = 3, LearningRate = 2e-4 }))
                trainer.Train();
            foreach (var (name, parameter) in model.named_parameters())
            {
                if (LoraLinear.IsAdapterParameter(name) && name.Contains("lora_B", StringComparison.Ordinal))
                    Assert.False(TensorAssert.BitEqual(parameters[name], parameter), $"{name} should have trained");
                else if (!LoraLinear.IsAdapterParameter(name))
                    TensorAssert.Identical(parameters[name], parameter, name);
            }
            foreach (var (name, buffer) in model.named_buffers())
                TensorAssert.Identical(buffers[name], buffer, name);
            Assert.Equal(quantize, buffers.Keys.Any(k => k.EndsWith("weight_packed", StringComparison.Ordinal)));
        }
    }

    [Fact]
    public void RowRangedPatternsTrainOnlyThoseRows()
    {
        var model = new TinyCausalLm(vocab: Vocab, seed: 6);
        var freeze = ParameterFreezer.Apply(model, ["model.layers.0.mlp.up_proj.weight[4:9]", "^lm_head.weight$"]);
        var before = model.SnapshotParameters();
        using (var trainer = new Trainer(model, new ToyBatchSource(Vocab, 2, 7, 8), new TrainerOptions { TotalSteps = 3, LearningRate = 1e-2, WeightDecay = 0.1 },
                   rowRanges: freeze.RowRanges))
            trainer.Train();
        var after = model.named_parameters().Single(p => p.name == "model.layers.0.mlp.up_proj.weight").parameter;
        var original = before["model.layers.0.mlp.up_proj.weight"];
        for (int row = 0; row < 16; row++)
        {
            if (row is >= 4 and < 9)
                Assert.False(TensorAssert.BitEqual(original[row], after[row]), $"row {row} should have trained");
            else
                TensorAssert.Identical(original[row], after[row], $"frozen row {row}");
        }
    }

    private static List<string> DeterministicLog(string path) =>
        File.ReadAllLines(path).Select(line =>
        {
            var node = System.Text.Json.Nodes.JsonNode.Parse(line)!.AsObject();
            foreach (string timing in new[] { "tokens_per_second", "elapsed_seconds", "forward_seconds", "backward_seconds", "optimizer_seconds" })
                node.Remove(timing);
            return node.ToJsonString();
        }).ToList();

    private sealed class AllIgnoredSource : IBatchSource
    {
        public Batch Next() => new(torch.zeros(new long[] { 1, 4 }, ScalarType.Int64), torch.full(new long[] { 1, 4 }, CausalLmLoss.IgnoreIndex, ScalarType.Int64));
        public string SaveState() => "{}";
        public void RestoreState(string state) { }
    }
}
