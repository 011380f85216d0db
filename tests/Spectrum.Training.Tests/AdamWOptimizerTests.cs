// AdamW: agreement with TorchSharp's own AdamW, state only for trainable parameters, row masks, state loading.
using Spectrum.Selection;
using Spectrum.Training.Tests.TestSupport;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Spectrum.Training.Tests;

public sealed class AdamWOptimizerTests
{
    [Fact]
    public void MatchesTorchSharpsAdamWWithDecayOnMatricesOnly()
    {
        torch.random.manual_seed(11);
        var ours = new[] { new Parameter(torch.randn(4, 3)), new Parameter(torch.randn(4)) };
        var theirs = ours.Select(p => new Parameter(p.detach().clone())).ToArray();
        var options = new AdamWOptions(LearningRate: 0.01, Beta1: 0.8, Beta2: 0.95, Eps: 1e-6, WeightDecay: 0.1);
        using var optimizer = new AdamWOptimizer([("w", ours[0]), ("b", ours[1])], options);
        // The reference gets the same decay split as two parameter groups.
        using var reference = torch.optim.AdamW(new[]
        {
            new TorchSharp.Modules.AdamW.ParamGroup([theirs[0]], lr: 0.01, beta1: 0.8, beta2: 0.95, eps: 1e-6, weight_decay: 0.1),
            new TorchSharp.Modules.AdamW.ParamGroup([theirs[1]], lr: 0.01, beta1: 0.8, beta2: 0.95, eps: 1e-6, weight_decay: 0.0),
        }, lr: 0.01);
        using var target = torch.randn(4, 3);
        for (int step = 0; step < 5; step++)
        {
            Loss(ours, target).backward();
            optimizer.Step();
            optimizer.ZeroGrad();
            Loss(theirs, target).backward();
            reference.step();
            reference.zero_grad();
        }
        for (int i = 0; i < 2; i++)
            Assert.True((ours[i] - theirs[i]).abs().max().item<float>() < 1e-6, $"parameter {i} differs from TorchSharp's AdamW");
        Assert.Equal(5, optimizer.StateOf("w").Step);
    }

    [Fact]
    public void FrozenParametersGetNoStateAndCannotBeGiven()
    {
        using var model = new TinyCausalLm();
        ParameterFreezer.Apply(model, ["model.layers.0.mlp.down_proj"]);
        using var optimizer = new AdamWOptimizer(AdamWOptimizer.Trainable(model), new AdamWOptions());
        Assert.Equal(["model.layers.0.mlp.down_proj.weight", "model.layers.0.mlp.down_proj.bias"], optimizer.ParameterNames);
        foreach (var (name, parameter) in model.named_parameters())
            Assert.Equal(parameter.requires_grad, optimizer.HasState(name));

        var frozen = model.named_parameters().First(p => !p.parameter.requires_grad);
        var error = Assert.Throws<TrainingConfigurationException>(() => new AdamWOptimizer([(frozen.name, frozen.parameter)], new AdamWOptions()));
        Assert.Contains(frozen.name, error.Message);
    }

    [Fact]
    public void TrainingStateCountsMomentsAndGradientsAndTheMastersOfReducedPrecisionWeights()
    {
        var full = new Parameter(torch.zeros(6, 5));                                  // 30 float32
        var half = new Parameter(torch.zeros(7, dtype: ScalarType.BFloat16));         // 7 bf16 → float32 master
        using var optimizer = new AdamWOptimizer([("full", full), ("half", half)], new AdamWOptions(1e-3));

        // float32: gradient + two moments, 12 bytes each; bf16: float32 master + two moments + its own bf16 gradient, 14.
        Assert.Equal(30 * 12 + 7 * 14, optimizer.TrainingStateBytes);

        // Once micro-batches are summed, the bf16 weight's gradient is held in float32: 16 bytes.
        half.grad = torch.ones(7, dtype: ScalarType.BFloat16);
        optimizer.AccumulateGradients();
        Assert.Equal(30 * 12 + 7 * 16, optimizer.TrainingStateBytes);
    }

    [Fact]
    public void AParameterWithoutAGradientIsSkippedEntirely()
    {
        var used = new Parameter(torch.ones(2, 2));
        var unused = new Parameter(torch.ones(2, 2));
        using var optimizer = new AdamWOptimizer([("used", used), ("unused", unused)], new AdamWOptions(LearningRate: 0.1, WeightDecay: 0.5));
        used.sum().backward();
        optimizer.Step();
        Assert.Equal(1, optimizer.StateOf("used").Step);
        Assert.Equal(0, optimizer.StateOf("unused").Step);
        Assert.Equal(4f, unused.sum().item<float>());   // not even decayed
        Assert.NotEqual(4f, used.sum().item<float>());
    }

    [Theory]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.BFloat16)]
    public void RowsOutsideARowRangeStayBitIdenticalDespiteWeightDecay(ScalarType dtype)
    {
        torch.random.manual_seed(12);
        var weight = new Parameter(torch.randn(6, 4).to_type(dtype));
        using var before = weight.detach().clone();
        var ranges = new Dictionary<string, IReadOnlyList<RowRange>> { ["w"] = [new RowRange(1, 3), new RowRange(5, null)] };
        using var optimizer = new AdamWOptimizer([("w", weight)], new AdamWOptions(LearningRate: 0.05, WeightDecay: 0.3), ranges);
        for (int step = 0; step < 3; step++)
        {
            weight.pow(2).sum().backward();
            optimizer.MaskFrozenRowGradients();
            optimizer.Step();
            optimizer.ZeroGrad();
        }
        foreach (int row in new[] { 0, 3, 4 })
            TensorAssert.Identical(before[row], weight.detach()[row], $"frozen row {row}");
        foreach (int row in new[] { 1, 2, 5 })
            Assert.False(TensorAssert.BitEqual(before[row], weight.detach()[row]), $"row {row} should have trained");
    }

    /// <summary>Masking happens before clipping, so the gradient norm (logged, and used to clip) counts only trainable rows.</summary>
    [Fact]
    public void MaskedRowsDoNotCountInTheGradientNorm()
    {
        var weight = new Parameter(torch.ones(4, 3));
        var ranges = new Dictionary<string, IReadOnlyList<RowRange>> { ["w"] = [new RowRange(1, 2)] };
        using var optimizer = new AdamWOptimizer([("w", weight)], new AdamWOptions(), ranges);
        weight.mul(torch.tensor(new float[] { 1, 2, 3, 4 }).view(4, 1)).sum().backward();   // row r's gradient is r + 1
        optimizer.MaskFrozenRowGradients();
        double norm = optimizer.ClipGradientNorm(null);
        Assert.Equal(Math.Sqrt(3 * 2.0 * 2.0), norm, 6);   // only row 1, three entries of 2
    }

    [Fact]
    public void LoadStateRejectsOtherParametersAndShapes()
    {
        var p = new Parameter(torch.zeros(2, 3));
        using var optimizer = new AdamWOptimizer([("p", p)], new AdamWOptions());
        Assert.Throws<TrainingConfigurationException>(() => optimizer.LoadState(new Dictionary<string, AdamWParameterState>
        {
            ["q"] = new(torch.zeros(2, 3), torch.zeros(2, 3), 1),
        }));
        var error = Assert.Throws<TrainingConfigurationException>(() => optimizer.LoadState(new Dictionary<string, AdamWParameterState>
        {
            ["p"] = new(torch.zeros(3, 2), torch.zeros(3, 2), 1),
        }));
        Assert.Contains("[3, 2]", error.Message);
        optimizer.LoadState(new Dictionary<string, AdamWParameterState> { ["p"] = new(torch.ones(2, 3), torch.full(2, 3, 2f), 7) });
        Assert.Equal(7, optimizer.StateOf("p").Step);
        Assert.Equal(12f, optimizer.StateOf("p").ExpAvgSq.sum().item<float>());
    }

    [Theory]
    [InlineData(-1e-3, 0.9, 0.999, 1e-8, 0.0, "LearningRate")]
    [InlineData(1e-3, 1.0, 0.999, 1e-8, 0.0, "Beta1")]
    [InlineData(1e-3, 0.9, 0.999, 0.0, 0.0, "Eps")]
    [InlineData(0.5, 0.9, 0.999, 1e-8, 3.0, "WeightDecay")]
    public void InvalidHyperParametersAreRejected(double lr, double beta1, double beta2, double eps, double decay, string option)
    {
        var p = new Parameter(torch.zeros(2));
        var error = Assert.Throws<TrainingConfigurationException>(() => new AdamWOptimizer([("p", p)], new AdamWOptions(lr, beta1, beta2, eps, decay)));
        Assert.Contains(option, error.Message);
    }

    private static Tensor Loss(Parameter[] p, Tensor target) =>
        (torch.matmul(p[0], torch.ones(3, 1)).squeeze(1) * p[1] - target.sum(1)).pow(2).sum() + (p[0] - target).pow(2).sum();

    [Fact]
    public void ABf16ParameterIsTrainedThroughAFloat32MasterExactlyAsAFloat32OneWouldBe()
    {
        torch.random.manual_seed(3);
        // Start from bf16-representable values, so the float32 reference starts from the same numbers.
        using var start = torch.randn(6, 5).to_type(ScalarType.BFloat16);
        var reduced = new Parameter(start.clone(), requires_grad: true);
        var reference = new Parameter(start.to_type(ScalarType.Float32), requires_grad: true);
        // lr 1e-5: each update is far below bf16's resolution, so plain bf16 AdamW would leave the weights unchanged.
        var options = new AdamWOptions(LearningRate: 1e-5, WeightDecay: 0.01);
        using var mixed = new AdamWOptimizer([("w", reduced)], options);
        using var plain = new AdamWOptimizer([("w", reference)], options);
        Assert.True(mixed.HasMasterWeight("w"));
        Assert.False(plain.HasMasterWeight("w"));
        Assert.Equal(ScalarType.Float32, mixed.StateOf("w").ExpAvg.dtype);

        for (int step = 0; step < 4; step++)
        {
            // Two micro-batches: the master accumulates their gradients in float32.
            using var g1 = torch.randn(6, 5).to_type(ScalarType.BFloat16);
            using var g2 = torch.randn(6, 5).to_type(ScalarType.BFloat16);
            foreach (var g in new[] { g1, g2 })
            {
                reduced.grad = g.clone();
                mixed.AccumulateGradients();
                Assert.Null(reduced.grad);
            }
            reference.grad = g1.to_type(ScalarType.Float32) + g2.to_type(ScalarType.Float32);
            mixed.Step();
            plain.Step();
            mixed.ZeroGrad();
            plain.ZeroGrad();
        }

        var master = mixed.TrainedWeight("w");
        Assert.Equal(ScalarType.Float32, master.dtype);
        TensorAssert.Identical(reference, master, "master vs float32 AdamW");
        // The model's bf16 weight is the master rounded to nearest.
        TensorAssert.Identical(master.to_type(ScalarType.BFloat16), reduced, "bf16 weight vs rounded master");
        Assert.False(TensorAssert.BitEqual(master, start.to_type(ScalarType.Float32)), "the master moved");
    }

    /// <summary>
    /// Without gradient accumulation the last micro-batch's bf16 gradient stays on the weight (no float32 copy), and
    /// the step and the clipping norm read it directly: the same result as converting it to a float32 master gradient.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void ABf16GradientIsReadInPlaceExactlyAsItsFloat32Copy(bool fused)
    {
        torch.random.manual_seed(5);
        using var start = torch.randn(300, 257).to_type(ScalarType.BFloat16);   // odd sizes: vector tails
        var direct = new Parameter(start.clone(), requires_grad: true);
        var converted = new Parameter(start.clone(), requires_grad: true);
        var options = new AdamWOptions(LearningRate: 1e-3, WeightDecay: 0.01);
        using var inPlace = new AdamWOptimizer([("w", direct)], options) { UseFusedKernel = fused };
        using var copied = new AdamWOptimizer([("w", converted)], options) { UseFusedKernel = fused };
        for (int step = 0; step < 3; step++)
        {
            using var g = (torch.randn(300, 257) * 3).to_type(ScalarType.BFloat16);
            direct.grad = g.clone();
            inPlace.AccumulateGradients(lastMicroBatch: true);
            Assert.NotNull(direct.grad);   // left on the weight
            converted.grad = g.clone();
            copied.AccumulateGradients();   // the float32 master gradient
            Assert.Null(converted.grad);

            double normInPlace = inPlace.ClipGradientNorm(maxNorm: 100), normCopied = copied.ClipGradientNorm(maxNorm: 100);
            Assert.Equal(normCopied, normInPlace);
            Assert.Equal(g.to_type(ScalarType.Float64).pow(2).sum().sqrt().item<double>(), normInPlace, 1e-9 * normInPlace);
            inPlace.Step();
            copied.Step();
            inPlace.ZeroGrad();
            copied.ZeroGrad();
        }
        TensorAssert.Identical(copied.TrainedWeight("w"), inPlace.TrainedWeight("w"), "master");
        TensorAssert.Identical(converted, direct, "bf16 weight");
        TensorAssert.Identical(copied.StateOf("w").ExpAvgSq, inPlace.StateOf("w").ExpAvgSq, "exp_avg_sq");
    }

    [Fact]
    public void SettingATrainedWeightUpdatesMasterAndRoundedParameter()
    {
        var reduced = new Parameter(torch.zeros(3, dtype: ScalarType.BFloat16), requires_grad: true);
        using var optimizer = new AdamWOptimizer([("b", reduced)], new AdamWOptions());
        using var value = torch.tensor(new[] { 1.0f + 1e-6f, -2f, 3.00001f });
        optimizer.SetTrainedWeight("b", value);
        TensorAssert.Identical(value, optimizer.TrainedWeight("b"), "master keeps float32 precision");
        TensorAssert.Identical(value.to_type(ScalarType.BFloat16), reduced, "parameter is the rounded value");
        Assert.Throws<KeyNotFoundException>(() => optimizer.TrainedWeight("missing"));
    }

    /// <summary>
    /// Moving gradients to float32 masters and stepping leaves no live tensor handle behind: a stray handle pins its
    /// gradient's memory until a garbage collection, which once tripled bf16 training's peak memory.
    /// </summary>
    [Fact]
    public void MasterWeightStepsLeaveNoLiveTensorHandlesBehind()
    {
        var weights = Enumerable.Range(0, 3).Select(_ => new Parameter(torch.randn(8, 4).to_type(ScalarType.BFloat16), requires_grad: true)).ToList();
        using var optimizer = new AdamWOptimizer(weights.Select((w, i) => ($"w{i}", w)), new AdamWOptions(LearningRate: 1e-3));
        void Cycle()
        {
            for (int micro = 0; micro < 2; micro++)
            {
                foreach (var weight in weights)
                {
                    using var gradient = torch.ones(8, 4, dtype: ScalarType.BFloat16);
                    weight.grad = gradient;
                }
                optimizer.AccumulateGradients();
            }
            optimizer.MaskFrozenRowGradients();
            optimizer.Step();
            optimizer.ZeroGrad();
        }
        Cycle();
        // Earlier tests' unreachable tensors are finalised first, so the count can only move because of these cycles.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        long live = torch.Tensor.TotalCount;
        for (int i = 0; i < 5; i++)
            Cycle();
        Assert.True(torch.Tensor.TotalCount <= live, $"{torch.Tensor.TotalCount - live} tensor handles left alive by 5 steps");
    }
}
