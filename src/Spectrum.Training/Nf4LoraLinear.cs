// QLoRA's layer: a frozen NF4 base dequantised on the fly plus a trainable low-rank update in float32.
using TorchSharp;
using TorchSharp.Modules;
using Spectrum.Modeling;
using static TorchSharp.torch;

namespace Spectrum.Training;

/// <summary>
/// <c>y = nf4_base(x) + dropout(x)·Aᵀ·Bᵀ · alpha/r</c>, the same adapter as <see cref="LoraLinear"/> (same keys:
/// <c>lora_A.weight</c>, <c>lora_B.weight</c>) over an <see cref="Nf4Linear"/> in <c>base_layer</c>, whose resident
/// memory is the packed codes and scales only.
/// </summary>
public sealed class Nf4LoraLinear : nn.Module<Tensor, Tensor>, IMergeableModule
{
#pragma warning disable IDE1006 // Field names are the state-dict keys.
    private readonly Nf4Linear base_layer;
    private readonly Linear lora_A;
    private readonly Linear lora_B;
    private readonly SeededDropout lora_dropout;
#pragma warning restore IDE1006

    /// <summary>Takes ownership of an already-quantised base.</summary>
    public Nf4LoraLinear(Nf4Linear baseLayer, LoraOptions options, Generator? generator = null) : base(nameof(Nf4LoraLinear))
    {
        ArgumentNullException.ThrowIfNull(baseLayer);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
        base_layer = baseLayer;
        (lora_A, lora_B) = LoraBranch.Create(baseLayer.InFeatures, baseLayer.OutFeatures, options.Rank, generator);
        lora_dropout = new SeededDropout(options.Dropout);
        RegisterComponents();
    }

    /// <summary>Quantises <paramref name="source"/> to NF4 and wraps it; the dense source is not kept (dispose it to free its memory).</summary>
    public static Nf4LoraLinear FromLinear(Linear source, LoraOptions options, bool doubleQuantize = false, Generator? generator = null)
    {
        options.Validate();
        return new Nf4LoraLinear(new Nf4Linear(source, doubleQuantize), options, generator);
    }

    public LoraOptions Options { get; }
    public long InFeatures => base_layer.InFeatures;
    public long OutFeatures => base_layer.OutFeatures;
    public Nf4Linear BaseLayer => base_layer;

    public override Tensor forward(Tensor input)
    {
        using var scope = torch.NewDisposeScope();
        var result = base_layer.call(input);   // (..., out)
        var output = result + LoraBranch.Delta(input, lora_A, lora_B, lora_dropout, Options.Scaling, result.dtype);
        return output.MoveToOuterDisposeScope();
    }

    /// <summary>dequant(W) + alpha/r · B·A (out, in) in float32 (QLoRA merges into a dense weight; cast as needed), detached.</summary>
    public Tensor MergedWeight()
    {
        using var scope = torch.NewDisposeScope();
        var dense = base_layer.Weight.Dequantize();
        return LoraBranch.Merge(dense, lora_A, lora_B, Options.Scaling, ScalarType.Float32).MoveToOuterDisposeScope();
    }

    /// <summary>The frozen base bias (out), detached copy; null when the base has none.</summary>
    public Tensor? MergedBias() => base_layer.Bias?.detach().clone();
}
