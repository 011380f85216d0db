// Rotary position embeddings as Hugging Face computes them (inverse frequencies incl. "linear"/"llama3" scaling; rotate_half); holds no weights.
using TorchSharp;
using static TorchSharp.torch;

namespace Spectrum.Modeling;

/// <summary>
/// Turns position ids into the cos/sin tables every attention layer uses. Dimension i of a head rotates together with
/// dimension i + head_dim/2 (Hugging Face's rotate_half convention, not the interleaved pairs of Meta's original code;
/// HF checkpoints' q/k weights are permuted for this convention).
/// </summary>
public sealed class RotaryEmbedding
{
    private readonly float[] _inverseFrequencies;

    public RotaryEmbedding(LlamaConfig config)
    {
        config.Validate();
        _inverseFrequencies = ComputeInverseFrequencies(config.HeadDim, config.RopeTheta, config.RopeScaling);
    }

    /// <summary>The head_dim/2 inverse frequencies, float32 as Hugging Face keeps its inv_freq buffer.</summary>
    public IReadOnlyList<float> InverseFrequencies => _inverseFrequencies;

    /// <summary>
    /// Hugging Face's formulas, operation by operation in float32 torch arithmetic so the frequencies agree with
    /// transformers' inv_freq: base^(-2i/d), then linear (÷ factor) or Llama 3.1's per-wavelength rule.
    /// </summary>
    public static float[] ComputeInverseFrequencies(int headDim, double theta, LlamaRopeScaling? scaling)
    {
        using var scope = torch.NewDisposeScope();
        // inv_freq = 1 / (base ** (arange(0, dim, 2) / dim)), with base a float32 scalar raised to a float32 tensor.
        var exponents = torch.arange(0, headDim, 2, dtype: ScalarType.Int64).to(ScalarType.Float32).div(headDim);
        var inverse = torch.full(exponents.shape, theta, dtype: ScalarType.Float32).pow(exponents).reciprocal();
        if (scaling is { Kind: RopeScalingKind.Linear })
        {
            inverse = inverse.div(scaling.Factor);
        }
        else if (scaling is { Kind: RopeScalingKind.Llama3 })
        {
            double factor = scaling.Factor, low = scaling.LowFreqFactor, high = scaling.HighFreqFactor;
            double oldContext = scaling.OriginalMaxPositionEmbeddings;
            double lowFreqWavelength = oldContext / low, highFreqWavelength = oldContext / high;
            var wavelength = inverse.reciprocal().mul(2 * Math.PI);
            // Long wavelengths (beyond the original context) are slowed by the full factor.
            var scaled = torch.where(wavelength.gt(lowFreqWavelength), inverse.div(factor), inverse);
            // Between the two bands, interpolate smoothly between scaled and unscaled.
            var smooth = wavelength.reciprocal().mul(oldContext).sub(low).div(high - low);
            var smoothed = smooth.neg().add(1).mul(scaled).div(factor).add(smooth.mul(scaled));
            var isMedium = wavelength.lt(highFreqWavelength).logical_not()
                .logical_and(wavelength.gt(lowFreqWavelength).logical_not());
            inverse = torch.where(isMedium, smoothed, scaled);
        }
        return inverse.data<float>().ToArray();
    }

    /// <summary>positionIds is (batch, seq) int64; returns cos and sin, each (batch, seq, head_dim) in <paramref name="dtype"/>.</summary>
    public (Tensor Cos, Tensor Sin) Compute(Tensor positionIds, ScalarType dtype)
    {
        using var scope = torch.NewDisposeScope();
        var inverse = torch.tensor(_inverseFrequencies, device: positionIds.device);   // (head_dim/2)
        // Each angle is a single float32 product, exactly what HF's (inv_freq @ position_ids) matmul yields.
        var angles = positionIds.to(ScalarType.Float32).unsqueeze(-1).mul(inverse);      // (batch, seq, head_dim/2)
        var doubled = torch.cat([angles, angles], dim: -1);                               // (batch, seq, head_dim)
        var cos = doubled.cos().to(dtype);
        var sin = doubled.sin().to(dtype);
        return (cos.MoveToOuterDisposeScope(), sin.MoveToOuterDisposeScope());
    }

    /// <summary>x is (batch, heads, seq, head_dim); cos/sin are (batch, seq, head_dim). x·cos + rotate_half(x)·sin.</summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        using var scope = torch.NewDisposeScope();
        long half = x.shape[^1] / 2;
        var first = x.narrow(-1, 0, half);
        var second = x.narrow(-1, half, half);
        var rotated = torch.cat([second.neg(), first], dim: -1);                         // rotate_half(x)
        var result = x.mul(cos.unsqueeze(1)).add(rotated.mul(sin.unsqueeze(1)));
        return result.MoveToOuterDisposeScope();
    }
}
