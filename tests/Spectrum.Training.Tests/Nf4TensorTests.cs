// NF4 quantisation checked against hand-picked codes, an independent nearest-code computation and a PyTorch fixture.
using System.Globalization;
using System.Text.Json;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Spectrum.Training.Tests.TestSupport;
using TorchSharp;
using static TorchSharp.torch;

namespace Spectrum.Training.Tests;

public sealed class Nf4TensorTests
{
    // Written out from the QLoRA paper's Appendix E, not read from the class under test.
    private static readonly double[] PaperCodes =
    [
        -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635, -0.18477343022823334,
        -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
        0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
    ];

    [Fact]
    public void CodeBookIsThePapersSixteenValues()
    {
        Assert.Equal(PaperCodes.Select(c => (float)c), Nf4Tensor.CodeValues);
        Assert.Equal(0f, Nf4Tensor.CodeValues[Nf4Tensor.ZeroCode]);
    }

    [Fact]
    public void HandPickedValuesGetTheExpectedCodesPackedHighNibbleFirst()
    {
        // One block of 64, absmax 2: normalised values 1, 0, −1, 0.5626…, −0.3949…, and the two sides of the 0/0.0796 midpoint.
        var values = new float[64];
        values[0] = 2f;                     // +1       → 15
        values[1] = 0f;                     // 0        → 7
        values[2] = -2f;                    // −1       → 0
        values[3] = 2f * 0.5626170039176941f;   // exact code 13
        values[4] = 2f * -0.39491748809814453f; // exact code 3
        values[5] = 2f * 0.0397f;           // below the midpoint 0.03979… → 7
        values[6] = 2f * 0.0399f;           // above it → 8
        values[7] = 2f * 0.93f;             // between 0.7230 and 1 (midpoint 0.8615) → 15
        using var weight = torch.tensor(values);
        using var nf4 = Nf4Tensor.Quantize(weight);
        var packed = nf4.Packed.data<byte>().ToArray();
        Assert.Equal(32, packed.Length);
        Assert.Equal(0xF7, packed[0]);
        Assert.Equal(0x0D, packed[1]);
        Assert.Equal(0x37, packed[2]);
        Assert.Equal(0x8F, packed[3]);
        Assert.All(packed.Skip(4), b => Assert.Equal(0x77, b));   // zeros
        Assert.Equal([2f], nf4.Absmax!.data<float>().ToArray());
        using var back = nf4.Dequantize();
        Assert.Equal(2f * (float)PaperCodes[13], back[3].item<float>());
        Assert.Equal(2f, back[7].item<float>());
    }

    /// <summary>The one-pass dequantisation kernel gives exactly the tensor-op path's bits: partial last blocks, several work chunks, double quantisation, float32 and bf16.</summary>
    [Theory]
    [InlineData(1, 1, false)]
    [InlineData(3, 7, false)]
    [InlineData(5, 60, true)]
    [InlineData(300, 301, false)]
    [InlineData(300, 301, true)]
    public void TheDequantizationKernelMatchesTheTensorOperationsBitForBit(long rows, long columns, bool doubleQuantize)
    {
        using var scope = torch.NewDisposeScope();
        var weight = torch.randn(rows, columns, generator: new Generator(21)) * 0.03;
        using var nf4 = Nf4Tensor.Quantize(weight, doubleQuantize);
        foreach (var dtype in new[] { ScalarType.Float32, ScalarType.BFloat16 })
        {
            var kernel = nf4.Dequantize(dtype);
            var reference = nf4.DequantizeWithTensorOps(dtype);
            Assert.Equal(dtype, kernel.dtype);
            Assert.Equal(new[] { rows, columns }, kernel.shape);
            Assert.True(kernel.bytes.SequenceEqual(reference.bytes), $"{dtype} differs from the tensor-op path");
        }
    }

    [Fact]
    public void MatchesThePyTorchReferenceFixtureExactly()
    {
        using var document = JsonDocument.Parse(File.ReadAllText(RepositoryPaths.Fixture("nf4", "nf4_reference.json")));
        var root = document.RootElement;
        long[] shape = root.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray();
        float[] weight = Floats(root.GetProperty("weight"));
        Assert.Equal(Floats(root.GetProperty("code_values")), Nf4Tensor.CodeValues);

        using var tensor = torch.tensor(weight).view(shape);
        using var nf4 = Nf4Tensor.Quantize(tensor);
        Assert.Equal(root.GetProperty("packed").GetString(), Convert.ToHexStringLower(nf4.Packed.data<byte>().ToArray()));
        Assert.Equal(Floats(root.GetProperty("absmax")), nf4.Absmax!.data<float>().ToArray());
        using var dequantized = nf4.Dequantize();
        Assert.Equal(shape, dequantized.shape);
        var expected = Floats(root.GetProperty("dequantized"));
        var actual = dequantized.flatten().data<float>().ToArray();
        var mismatches = Enumerable.Range(0, expected.Length).Where(i => BitConverter.SingleToInt32Bits(expected[i]) != BitConverter.SingleToInt32Bits(actual[i])).Take(5).ToList();
        Assert.True(mismatches.Count == 0, "first mismatches (index: expected vs actual): " +
            string.Join("; ", mismatches.Select(i => $"{i}: {expected[i]:R} vs {actual[i]:R}")));
    }

    [Fact]
    public void RoundTripEqualsTheNearestCodeTimesTheBlockScale()
    {
        using var weight = Gaussian(37, 50, seed: 3);   // 1850 elements: 29 blocks, the last one padded
        var values = weight.flatten().data<float>().ToArray();
        using var nf4 = Nf4Tensor.Quantize(weight);
        Assert.Equal(29, nf4.BlockCount);
        using var back = nf4.Dequantize();
        var actual = back.flatten().data<float>().ToArray();
        AssertNearestCodeRule(values, actual);
    }

    [Property(MaxTest = 60)]
    public Property AnyFiniteWeightRoundTripsByTheNearestCodeRule() =>
        Prop.ForAll(Gen.Choose(-1_000_000, 1_000_000).Select(i => i / 1000f).ArrayOf().Where(a => a.Length is > 0 and < 300).ToArbitrary(), values =>
        {
            using var weight = torch.tensor(values);
            using var nf4 = Nf4Tensor.Quantize(weight);
            using var back = nf4.Dequantize();
            AssertNearestCodeRule(values, back.data<float>().ToArray());
        });

    [Fact]
    public void ErrorNeverExceedsHalfTheWidestCodeGapTimesTheBlockScale()
    {
        using var weight = Gaussian(64, 96, seed: 5);
        using var nf4 = Nf4Tensor.Quantize(weight);
        using var back = nf4.Dequantize();
        // Widest gap: 1 − 0.7229568 → half of it ≈ 0.1385 of the block's absmax.
        double halfGap = PaperCodes.Zip(PaperCodes.Skip(1), (a, b) => b - a).Max() / 2;
        using var scope = torch.NewDisposeScope();
        var absmax = weight.flatten().view(-1, 64).abs().amax([1]).unsqueeze(1);       // (blocks, 1)
        var error = (back - weight).flatten().view(-1, 64).abs();                     // (blocks, 64)
        Assert.True((error <= absmax * (halfGap + 1e-6)).all().item<bool>());
    }

    [Fact]
    public void DequantisedMatmulIsCloseToTheFloatMatmul()
    {
        using var scope = torch.NewDisposeScope();
        var weight = Gaussian(48, 128, seed: 7) * 0.02;     // (out, in), typical init scale
        var input = Gaussian(6, 128, seed: 8);              // (batch, in)
        using var nf4 = Nf4Tensor.Quantize(weight);
        var exact = torch.matmul(input, weight.t());         // (6, 48)
        var quantized = torch.matmul(input, nf4.Dequantize().t());
        double relative = ((quantized - exact).norm() / exact.norm()).item<float>();
        // NF4 keeps about 3 bits of a Gaussian weight: measured ≈ 0.09 relative error of the product here; 0.15 leaves margin.
        Assert.InRange(relative, 1e-4, 0.15);
    }

    [Fact]
    public void StorageIsPackedBytesPlusOneScalePerBlock()
    {
        using var weight = Gaussian(64, 128, seed: 9);        // 8192 elements, 128 blocks
        using var nf4 = Nf4Tensor.Quantize(weight);
        Assert.Equal(ScalarType.Byte, nf4.Packed.dtype);
        Assert.Equal(4096, nf4.Packed.numel());
        Assert.Equal(4096 + 128 * 4, nf4.StorageBytes);

        using var doubled = Nf4Tensor.Quantize(weight, doubleQuantize: true);
        // int8 per block + one float32 step per 256 blocks + the float32 mean.
        Assert.Equal(4096 + 128 + 4 + 4, doubled.StorageBytes);
        Assert.Null(doubled.Absmax);
    }

    [Fact]
    public void DoubleQuantisedScalesStayWithinHalfAStepOfTheTrueScales()
    {
        using var weight = Gaussian(300, 64, seed: 11);       // 300 blocks: two groups of 256, the second padded
        using var single = Nf4Tensor.Quantize(weight);
        using var doubled = Nf4Tensor.Quantize(weight, doubleQuantize: true);
        using var scope = torch.NewDisposeScope();
        var trueScales = single.Absmax!;
        var rebuilt = doubled.BlockScales();
        var centered = trueScales - trueScales.mean();
        float firstStep = centered.narrow(0, 0, 256).abs().max().item<float>() / 127f;
        float secondStep = centered.narrow(0, 256, 44).abs().max().item<float>() / 127f;
        var error = (rebuilt - trueScales).abs();
        Assert.True(error.narrow(0, 0, 256).max().item<float>() <= firstStep / 2 * 1.0001f);
        Assert.True(error.narrow(0, 256, 44).max().item<float>() <= secondStep / 2 * 1.0001f);
        // The codes are those of the undoubled quantisation: only the scales are compressed.
        TensorAssert.Identical(single.Packed, doubled.Packed);
    }

    [Fact]
    public void DequantisesToBfloat16AsTheFloat32ResultRounded()
    {
        using var weight = Gaussian(16, 64, seed: 13);
        using var nf4 = Nf4Tensor.Quantize(weight);
        using var f32 = nf4.Dequantize();
        using var bf16 = nf4.Dequantize(ScalarType.BFloat16);
        Assert.Equal(ScalarType.BFloat16, bf16.dtype);
        using var rounded = f32.to_type(ScalarType.BFloat16);
        TensorAssert.Identical(rounded, bf16);
    }

    [Fact]
    public void Bfloat16WeightsQuantiseLikeTheirFloat32Values()
    {
        using var weight = Gaussian(8, 64, seed: 17).to_type(ScalarType.BFloat16);
        using var widened = weight.to_type(ScalarType.Float32);
        using var fromBf16 = Nf4Tensor.Quantize(weight);
        using var fromF32 = Nf4Tensor.Quantize(widened);
        TensorAssert.Identical(fromBf16.Packed, fromF32.Packed);
    }

    [Fact]
    public void Nf4LinearBuiltFromTensorsHoldsNoDenseWeightAndComputesWithTheDequantisedOne()
    {
        using var weight = Gaussian(8, 64, seed: 21);
        using var bias = torch.ones(8);
        using var layer = new Nf4Linear(weight, bias);
        Assert.Equal(["bias"], layer.named_parameters().Select(p => p.name));
        Assert.False(layer.named_parameters().Single().parameter.requires_grad);
        Assert.Equal(["weight_absmax", "weight_packed"], layer.named_buffers().Select(b => b.name).Order(StringComparer.Ordinal));
        using var input = Gaussian(3, 64, seed: 22);
        using var output = layer.call(input);
        using var dense = layer.Weight.Dequantize();
        using var expected = nn.functional.linear(input, dense, bias);
        TensorAssert.Identical(expected, output);
        using var vector = torch.ones(64);
        Assert.Throws<ArgumentException>(() => new Nf4Linear(vector, null));
        using var wrongBias = torch.ones(7);
        Assert.Throws<ArgumentException>(() => new Nf4Linear(weight, wrongBias));
    }

    /// <summary>
    /// Through autograd the NF4 layer re-dequantises in backward instead of keeping W: the input gradient equals the
    /// dense layer's (gY·W, same products) and the output equals it bit for bit; the codes and bias get no gradient.
    /// </summary>
    [Theory]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.BFloat16)]
    public void Nf4LinearGradientsEqualThoseOfTheDequantisedDenseLayer(ScalarType dtype)
    {
        using var weight = Gaussian(8, 64, seed: 31);
        using var bias = torch.ones(8);
        using var layer = new Nf4Linear(weight, bias);
        using var dense = layer.Weight.Dequantize(dtype);
        using var upstream = Gaussian(6, 8, seed: 33).view(2, 3, 8).to_type(dtype);
        using var x = Gaussian(6, 64, seed: 32).view(2, 3, 64).to_type(dtype).requires_grad_(true);
        using var twin = x.detach().clone().requires_grad_(true);

        using (var output = layer.call(x))
        {
            using var expected = nn.functional.linear(twin, dense, bias.to_type(dtype));
            TensorAssert.Identical(expected.detach(), output.detach());
            output.backward([upstream]);
            expected.backward([upstream]);
        }
        float tolerance = dtype == ScalarType.BFloat16 ? 1e-2f : 1e-6f;
        Assert.True((x.grad! - twin.grad!).abs().max().to_type(ScalarType.Float32).item<float>() <= tolerance);
        Assert.Null(layer.named_parameters().Single().parameter.grad);
    }

    [Fact]
    public void NonFiniteNonFloatAndEmptyWeightsAreRejected()
    {
        using var withNaN = torch.tensor(new[] { 1f, float.NaN, 2f });
        Assert.Contains("NaN", Assert.Throws<ArgumentException>(() => Nf4Tensor.Quantize(withNaN)).Message);
        using var integers = torch.tensor(new long[] { 1, 2 });
        Assert.Throws<ArgumentException>(() => Nf4Tensor.Quantize(integers));
        using var empty = torch.zeros(0, 4);
        Assert.Throws<ArgumentException>(() => Nf4Tensor.Quantize(empty));
    }

    /// <summary>Each element must equal float32(code[k]) × float32(absmax) for a k nearest to x / absmax (either side when x sits on a midpoint).</summary>
    private static void AssertNearestCodeRule(float[] values, float[] actual)
    {
        Assert.Equal(values.Length, actual.Length);
        for (int block = 0; block * 64 < values.Length; block++)
        {
            var slice = values.Skip(block * 64).Take(64).ToArray();
            float absmax = slice.Max(v => Math.Abs(v));
            for (int j = 0; j < slice.Length; j++)
            {
                int i = block * 64 + j;
                double normalized = absmax == 0 ? 0 : (double)slice[j] / absmax;
                var distances = PaperCodes.Select(c => Math.Abs(normalized - c)).ToArray();
                double best = distances.Min();
                var candidates = Enumerable.Range(0, 16).Where(k => distances[k] - best < 1e-6).Select(k => (float)PaperCodes[k] * absmax).ToList();
                Assert.True(candidates.Contains(actual[i]),
                    $"element {i}: x = {values[i]:R}, absmax {absmax:R}; got {actual[i]:R}, expected one of {string.Join(", ", candidates.Select(c => c.ToString("R", CultureInfo.InvariantCulture)))}");
            }
        }
    }

    private static Tensor Gaussian(long rows, long cols, long seed)
    {
        using var generator = new Generator((ulong)seed);
        return torch.randn(rows, cols, generator: generator);
    }

    private static float[] Floats(JsonElement array) => RepositoryPaths.Floats(array);
}
