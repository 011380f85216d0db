// Small stand-ins for adapters, used to test projection replacement and merged export; not real LoRA.
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Spectrum.Modeling.Tests;

/// <summary>y = scale · base(x) + x·deltaᵀ, with a trainable delta: a mergeable adapter with its own parameter.</summary>
internal sealed class ScaledLinear : nn.Module<Tensor, Tensor>, IMergeableModule
{
    private readonly double _scale;
    private readonly Linear base_layer;
    private readonly Parameter delta;

    public ScaledLinear(Linear baseLayer, double scale, Tensor? deltaValue = null) : base(nameof(ScaledLinear))
    {
        _scale = scale;
        base_layer = baseLayer;
        delta = new Parameter(deltaValue ?? torch.zeros_like(baseLayer.weight!), requires_grad: true);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        return base_layer.call(x).mul(_scale).add(nn.functional.linear(x, delta)).MoveToOuterDisposeScope();
    }

    public Tensor MergedWeight() => base_layer.weight!.mul(_scale).add(delta);

    public Tensor? MergedBias() => base_layer.bias?.mul(_scale);
}

/// <summary>A replacement with no merge: the exporter must refuse it.</summary>
internal sealed class OpaqueProjection(long outFeatures) : nn.Module<Tensor, Tensor>(nameof(OpaqueProjection))
{
    public override Tensor forward(Tensor x) =>
        torch.zeros([.. x.shape[..^1], outFeatures], dtype: x.dtype);
}
