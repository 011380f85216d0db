// The one-pass AdamW kernel: PyTorch's AdamW fixture, agreement with the tensor-op path (row ranges, bf16 masters), bf16 rounding.
using System.Text.Json;
using Spectrum.Selection;
using Spectrum.Training.Tests.TestSupport;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Spectrum.Training.Tests;

public sealed class FusedAdamWTests
{
    /// <summary>
    /// tests/reference/make_adamw_fixture.py: torch.optim.AdamW (PyTorch 1.13, single-tensor) for 5 steps on closed-form
    /// weights and gradients. Tolerance: PyTorch's own vector and scalar loops may round a product differently (fused or
    /// not) in the last bit, so sampled values may differ by a few float32 ulps (≤ 2e-6 relative, floor 1e-7) and the
    /// sums over all 68,929 elements by 1e-5 relative (they include exp_avg_sq, whose values reach ~2).
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void MatchesPyTorchsAdamWFixture(bool fused)
    {
        using var document = JsonDocument.Parse(File.ReadAllText(RepositoryPaths.Fixture("adamw", "adamw_reference.json")));
        var root = document.RootElement;
        var o = root.GetProperty("options");
        var options = new AdamWOptions(o.GetProperty("lr").GetDouble(), o.GetProperty("beta1").GetDouble(), o.GetProperty("beta2").GetDouble(),
            o.GetProperty("eps").GetDouble(), o.GetProperty("weight_decay").GetDouble());
        int steps = root.GetProperty("steps").GetInt32(), stride = root.GetProperty("stride").GetInt32();
        var parameters = root.GetProperty("parameters").EnumerateObject()
            .Select(p => (p.Name, Shape: p.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray()))
            .Select(p => (p.Name, p.Shape, Parameter: new Parameter(torch.tensor(Initial(p.Shape.Aggregate(1L, (a, b) => a * b))).view(p.Shape))))
            .ToList();
        // The vector is rank 1, so it does not decay, as the fixture's second parameter group.
        using var optimizer = new AdamWOptimizer(parameters.Select(p => (p.Name, p.Parameter)), options) { UseFusedKernel = fused };
        for (int t = 1; t <= steps; t++)
        {
            foreach (var (_, shape, parameter) in parameters)
                parameter.grad = torch.tensor(Gradient(parameter.numel(), t)).view(shape);
            optimizer.Step();
        }

        foreach (var (name, _, parameter) in parameters)
        {
            var expected = root.GetProperty("parameters").GetProperty(name);
            var state = optimizer.StateOf(name);
            foreach (var (key, tensor) in new[] { ("weight", (Tensor)parameter), ("exp_avg", state.ExpAvg), ("exp_avg_sq", state.ExpAvgSq) })
            {
                float[] all = tensor.detach().flatten().data<float>().ToArray();
                var indices = Enumerable.Range(0, all.Length).Where(i => i % stride == 0 || i == all.Length - 1).ToList();
                float[] reference = RepositoryPaths.Floats(expected.GetProperty(key));
                Assert.Equal(reference.Length, indices.Count);
                for (int j = 0; j < indices.Count; j++)
                {
                    float ours = all[indices[j]], theirs = reference[j];
                    Assert.True(Math.Abs(ours - theirs) <= Math.Max(1e-7, 2e-6 * Math.Abs(theirs)),
                        $"{name}.{key}[{indices[j]}]: ours {ours:R}, PyTorch {theirs:R}");
                }
                double sum = all.Sum(v => (double)v), referenceSum = expected.GetProperty(key + "_sum").GetDouble();
                Assert.True(Math.Abs(sum - referenceSum) <= 1e-5 * Math.Max(1, Math.Abs(referenceSum)), $"{name}.{key} sum: ours {sum:R}, PyTorch {referenceSum:R}");
            }
        }
    }

    /// <summary>
    /// The kernel and the tensor-op path on an embedding-like float32 and bf16 parameter with a row range and weight
    /// decay: frozen rows stay bit-identical in both, and trained values agree to a float32 ulp or two (the paths differ
    /// only in whether a product is fused).
    /// </summary>
    [Theory]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.BFloat16)]
    public void KernelAgreesWithTensorOpsAndLeavesFrozenRowsAlone(ScalarType dtype)
    {
        torch.random.manual_seed(5);
        // 1,200 rows x 61: large enough for the kernel's parallel path, with a tail that is no multiple of a vector.
        using var start = (torch.randn(1200, 61) * 0.5).to_type(dtype);
        var ranges = new Dictionary<string, IReadOnlyList<RowRange>> { ["embed"] = [new RowRange(100, 400), new RowRange(350, 700), new RowRange(1100, null)] };
        var options = new AdamWOptions(LearningRate: 3e-3, WeightDecay: 0.05);
        var fusedWeight = new Parameter(start.clone(), requires_grad: true);
        var opsWeight = new Parameter(start.clone(), requires_grad: true);
        using var fused = new AdamWOptimizer([("embed", fusedWeight)], options, ranges);
        using var ops = new AdamWOptimizer([("embed", opsWeight)], options, ranges) { UseFusedKernel = false };
        for (int step = 0; step < 4; step++)
        {
            using var gradient = torch.randn(1200, 61).to_type(dtype);
            fusedWeight.grad = gradient.clone();
            opsWeight.grad = gradient.clone();
            foreach (var optimizer in new[] { fused, ops })
            {
                optimizer.MaskFrozenRowGradients();
                optimizer.Step();
                optimizer.ZeroGrad();
            }
        }

        using var fusedTrained = fused.TrainedWeight("embed").detach().clone();
        using var opsTrained = ops.TrainedWeight("embed").detach().clone();
        float difference = (fusedTrained - opsTrained).abs().max().item<float>();
        Assert.True(difference <= 2e-6f, $"kernel and tensor ops differ by {difference} (dtype {dtype})");
        foreach (var (from, to, trained) in new[] { (0L, 100L, false), (100L, 700L, true), (700L, 1100L, false), (1100L, 1200L, true) })
        {
            using var rows = fusedWeight.narrow(0, from, to - from);
            using var before = start.narrow(0, from, to - from);
            Assert.Equal(!trained, TensorAssert.BitEqual(before, rows));
        }
        if (dtype == ScalarType.BFloat16)
        {
            // The model's weight is the master rounded by the kernel, bit for bit what LibTorch's conversion gives.
            TensorAssert.Identical(fusedTrained.to_type(ScalarType.BFloat16), fusedWeight, "bf16 weight vs LibTorch-rounded master");
        }
        Assert.Equal(0f, fused.StateOf("embed").ExpAvg.narrow(0, 0, 100).abs().max().item<float>());
    }

    /// <summary>Rounding to bfloat16, vector and scalar paths, bit for bit as LibTorch converts: ties to even, NaN, infinities, overflow, subnormals.</summary>
    [Fact]
    public void RoundsToBFloat16ExactlyAsLibTorchDoes()
    {
        var specials = new List<float>
        {
            0f, -0f, 1f, -1f, float.PositiveInfinity, float.NegativeInfinity, float.NaN, float.MaxValue, -float.MaxValue,
            float.Epsilon, -float.Epsilon, 1e-40f, 3.3895314e38f,
            BitConverter.UInt32BitsToSingle(0x3F808000), BitConverter.UInt32BitsToSingle(0x3F818000),   // ties: to even (down, up)
            BitConverter.UInt32BitsToSingle(0x3F808001), BitConverter.UInt32BitsToSingle(0x3F807FFF),   // just above / below a tie
            BitConverter.UInt32BitsToSingle(0x7F7F8000), BitConverter.UInt32BitsToSingle(0xFFC00001),   // rounds to infinity; a negative NaN
        };
        var random = new Random(17);
        var values = specials.Concat(Enumerable.Range(0, 4000).Select(_ => BitConverter.UInt32BitsToSingle((uint)random.NextInt64(0, 1L << 32)))).ToArray();
        using var source = torch.tensor(values);
        using var expected = source.to_type(ScalarType.BFloat16);
        var expectedBits = expected.bytes.ToArray();

        // Through the kernel: a zero gradient with no decay leaves the master unchanged, so its output is the rounding alone.
        var master = source.clone();
        using var zero = torch.zeros_like(source);
        using var m = torch.zeros_like(source);
        using var v = torch.zeros_like(source);
        var rounded = new ushort[values.Length];
        unsafe
        {
            fixed (byte* p = master.bytes, g = zero.bytes, mp = m.bytes, vp = v.bytes)
            fixed (ushort* r = rounded)
            {
                FusedAdamW.Update((float*)p, (float*)g, null, (float*)mp, (float*)vp, r, 0, values.Length,
                    new AdamWConstants(1f, 0.9f, 0.1f, 0.999f, 0.001f, 1f, 1e-8f, -1e-3f, 1f));
            }
        }
        for (int i = 0; i < values.Length; i++)
        {
            ushort theirs = BitConverter.ToUInt16(expectedBits, 2 * i);
            bool bothNaN = float.IsNaN(values[i]) && (theirs & 0x7F80) == 0x7F80 && (theirs & 0x7F) != 0 && (rounded[i] & 0x7F80) == 0x7F80 && (rounded[i] & 0x7F) != 0;
            Assert.True(rounded[i] == theirs || bothNaN, $"{values[i]:R} (0x{BitConverter.SingleToUInt32Bits(values[i]):x8}): kernel 0x{rounded[i]:x4}, LibTorch 0x{theirs:x4}");
            Assert.Equal(rounded[i], BFloat16Rounding.Round(values[i]));
        }
    }

    private static float[] Initial(long n) => Enumerable.Range(0, (int)n).Select(i => (float)(Math.Cos(0.11 * i) * 0.8)).ToArray();

    private static float[] Gradient(long n, int t) =>
        Enumerable.Range(0, (int)n).Select(i => i % 13 == 0 ? 0f : (float)(Math.Sin(0.37 * i + 1.3 * t) * (0.5 + 0.1 * t))).ToArray();
}
