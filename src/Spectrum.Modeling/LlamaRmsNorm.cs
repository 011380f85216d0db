// Llama's RMSNorm (Hugging Face LlamaRMSNorm): normalises in float32 whatever the parameter dtype; not LayerNorm (no mean, no bias).
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Spectrum.Modeling;

/// <summary>y = weight · (x / sqrt(mean(x²) + eps)), with the statistics in float32 so bf16 models stay stable.</summary>
public sealed class LlamaRmsNorm : nn.Module<Tensor, Tensor>
{
    private readonly double _eps;

    // Named like the checkpoint key ("…input_layernorm.weight").
    private readonly Parameter weight;

    public LlamaRmsNorm(long hiddenSize, double eps, ScalarType dtype, Device? device)
        : base(nameof(LlamaRmsNorm))
    {
        _eps = eps;
        weight = new Parameter(torch.ones(hiddenSize, dtype: dtype, device: device), requires_grad: true);
        register_parameter(nameof(weight), weight);
    }

    public Parameter Weight => weight;

    /// <summary>x is (..., hidden); the result has x's dtype, as in Hugging Face (cast back before the gain).</summary>
    public override Tensor forward(Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        var wide = x.to(ScalarType.Float32);
        var variance = wide.pow(2).mean([-1], keepdim: true);
        var normalised = wide.mul(torch.rsqrt(variance.add(_eps))).to(x.dtype);
        return weight.mul(normalised).MoveToOuterDisposeScope();
    }
}
