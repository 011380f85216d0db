// LoRA's input dropout: keep rate, scaling, reproducibility from torch's generator, gradients, eval mode.
using TorchSharp;
using static TorchSharp.torch;

namespace Spectrum.Training.Tests;

public sealed class SeededDropoutTests
{
    /// <summary>
    /// Over 1,000,000 elements the kept fraction is within 5 standard deviations of 1 − p (σ = √(p(1−p)/n) ≈ 2.2e-4
    /// for p = 0.05), kept elements are x/(1 − p) exactly as LibTorch scales them (x times the float32 of 1/(1 − p)),
    /// dropped ones are 0.
    /// </summary>
    [Theory]
    [InlineData(0.05)]
    [InlineData(0.5)]
    [InlineData(0.9)]
    public void KeepsTheRightFractionScaledAsLibTorchDoes(double p)
    {
        using var scope = torch.NewDisposeScope();
        using var dropout = new SeededDropout(p);
        dropout.train();
        torch.random.manual_seed(4);
        var x = torch.rand(1000, 1000) + 0.5;                 // no zeros, so dropped and kept are told apart
        var y = dropout.call(x);
        var kept = y.ne(0);
        double fraction = kept.to_type(ScalarType.Float64).mean().item<double>();
        double sigma = Math.Sqrt(p * (1 - p) / 1e6);
        Assert.True(Math.Abs(fraction - (1 - p)) <= 5 * sigma, $"kept {fraction}, expected {1 - p} ± {5 * sigma}");
        var expected = x * (float)(1.0 / (1 - p));
        Assert.True(y.masked_select(kept).equal(expected.masked_select(kept)).all().item<bool>(), "kept values are not x/(1-p)");
        // Neighbouring elements (the two halves of one 64-bit draw) are not tied together.
        var pairs = kept.reshape(-1, 2).to_type(ScalarType.Float64);
        double bothKept = (pairs.select(1, 0) * pairs.select(1, 1)).mean().item<double>();
        Assert.True(Math.Abs(bothKept - (1 - p) * (1 - p)) <= 6 * Math.Sqrt((1 - p) * (1 - p) * (1 - (1 - p) * (1 - p)) / 5e5), $"both of a pair kept: {bothKept}");
    }

    /// <summary>The mask follows torch's global generator: same seed, same mask (so resume and checkpoint replay repeat it); next call, new mask.</summary>
    [Fact]
    public void MasksComeFromTorchsGeneratorAndDifferPerCall()
    {
        using var scope = torch.NewDisposeScope();
        using var dropout = new SeededDropout(0.3);
        dropout.train();
        var x = torch.ones(300, 301);
        torch.random.manual_seed(11);
        var first = dropout.call(x);
        var second = dropout.call(x);
        torch.random.manual_seed(11);
        var again = dropout.call(x);
        Assert.True(first.equal(again).all().item<bool>());
        Assert.False(first.equal(second).all().item<bool>());
        // The mask depends only on the seed, not on how the work was split between threads.
        var mask = dropout.Mask([300, 301], ScalarType.Float32, seed: 77);
        Assert.True(mask.equal(dropout.Mask([300, 301], ScalarType.Float32, seed: 77)).all().item<bool>());
        Assert.Equal(ScalarType.BFloat16, dropout.Mask([4, 4], ScalarType.BFloat16, seed: 77).dtype);
    }

    /// <summary>
    /// The vectorised mask is exactly the defining one: element i kept when half (i &amp; 1) of SplitMix64(seed + ⌊i/2⌋·φ)
    /// is below (1 − p)·2³², written here as a scalar loop; float32 and bf16 masks alike, odd sizes included.
    /// </summary>
    [Theory]
    [InlineData(ScalarType.Float32, 0.05, 131_075)]   // two chunks and an odd tail
    [InlineData(ScalarType.BFloat16, 0.05, 131_075)]
    [InlineData(ScalarType.BFloat16, 0.3, 37)]
    [InlineData(ScalarType.Float16, 0.3, 101)]
    public void TheMaskIsTheSplitMixDefinitionElementByElement(ScalarType dtype, double p, long count)
    {
        using var scope = torch.NewDisposeScope();
        using var dropout = new SeededDropout(p);
        const long seed = -1234567890123L;
        var mask = dropout.Mask([count], dtype, seed).to_type(ScalarType.Float32).data<float>().ToArray();

        uint threshold = (uint)Math.Min(uint.MaxValue, Math.Round((1 - p) * 4294967296.0));
        float scale = torch.tensor((float)(1.0 / (1 - p))).to_type(dtype).to_type(ScalarType.Float32).item<float>();
        for (long i = 0; i < count; i++)
        {
            ulong z = unchecked((ulong)seed + (ulong)(i >> 1) * 0x9E3779B97F4A7C15UL);
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            z ^= z >> 31;
            uint draw = (i & 1) == 0 ? (uint)z : (uint)(z >> 32);
            Assert.Equal(draw < threshold ? scale : 0f, mask[i]);
        }
    }

    [Fact]
    public void GradientsFlowThroughTheKeptElementsOnly()
    {
        using var scope = torch.NewDisposeScope();
        using var dropout = new SeededDropout(0.4);
        dropout.train();
        var x = (torch.rand(50, 40) + 0.5).requires_grad_(true);
        var y = dropout.call(x);
        y.sum().backward();
        // d(sum y)/dx = mask/(1-p): equal to y/x elementwise.
        Assert.True(x.grad!.sub(y.detach() / x.detach()).abs().max().item<float>() <= 1e-6f);
    }

    [Fact]
    public void EvalModeAndZeroProbabilityPassTheInputThrough()
    {
        using var scope = torch.NewDisposeScope();
        var x = torch.rand(10, 10);
        using var off = new SeededDropout(0.0);
        off.train();
        Assert.True(off.call(x).equal(x).all().item<bool>());
        using var evaluating = new SeededDropout(0.5);
        evaluating.eval();
        Assert.True(evaluating.call(x).equal(x).all().item<bool>());
        Assert.Throws<ArgumentOutOfRangeException>(() => new SeededDropout(1.0));
    }
}
