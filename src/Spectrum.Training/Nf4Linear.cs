// A frozen linear layer whose weight lives as NF4 codes and is dequantised only for the duration of each forward.
using TorchSharp;
using TorchSharp.Modules;
using Spectrum.Modeling;
using static TorchSharp.torch;

namespace Spectrum.Training;

/// <summary>
/// <c>y = x·Wᵀ + b</c> with W (out, in) rebuilt from <see cref="Nf4Tensor"/> on every call in the input's dtype
/// (QLoRA's compute dtype) and dropped afterwards, so only the 4-bit codes and scales stay resident — also between
/// forward and backward: a plain linear would keep each dequantised W for the input gradient, holding the whole dense
/// model until backward, so backward dequantises again (as bitsandbytes does). Buffers:
/// <c>weight_packed</c>, <c>weight_absmax</c> (or <c>weight_absmax_quantized</c>, <c>_scales</c>, <c>_offset</c>);
/// parameter <c>bias</c> (out), frozen. Gradients flow to the input, never to the codes.
/// </summary>
public sealed class Nf4Linear : nn.Module<Tensor, Tensor>, IMergeableModule
{
    private readonly Parameter? bias;

    /// <summary>Quantises <paramref name="source"/>'s weight; the source is left as it was (dispose it to free the dense weight).</summary>
    public Nf4Linear(Linear source, bool doubleQuantize = false)
        : this(source?.weight ?? throw new ArgumentNullException(nameof(source)), source.bias, doubleQuantize)
    {
    }

    /// <summary>
    /// Quantises a weight (out, in) directly, e.g. one tensor at a time while loading a checkpoint, so the dense model
    /// never has to be resident; <paramref name="bias"/> (out) is copied and frozen.
    /// </summary>
    /// <exception cref="ArgumentException">The weight is not 2-D, the bias does not match its rows, or <see cref="Nf4Tensor.Quantize"/> rejects it.</exception>
    public Nf4Linear(Tensor weight, Tensor? bias, bool doubleQuantize = false)
        : this(QuantizeChecked(weight, doubleQuantize), bias)
    {
    }

    /// <summary>Takes ownership of an already quantised weight (out, in); <paramref name="bias"/> (out) is copied and frozen.</summary>
    /// <exception cref="ArgumentException">The weight is not 2-D or the bias does not match its rows.</exception>
    public Nf4Linear(Nf4Tensor weight, Tensor? bias) : base(nameof(Nf4Linear))
    {
        ArgumentNullException.ThrowIfNull(weight);
        if (weight.Shape.Count != 2)
            throw new ArgumentException($"A linear weight is (out, in); got [{string.Join(", ", weight.Shape)}].", nameof(weight));
        if (bias is not null && (bias.dim() != 1 || bias.shape[0] != weight.Shape[0]))
            throw new ArgumentException($"The bias must be ({weight.Shape[0]}) to match the weight's rows; got [{string.Join(", ", bias.shape)}].", nameof(bias));
        OutFeatures = weight.Shape[0];
        InFeatures = weight.Shape[1];
        Weight = weight;
        foreach (var (suffix, tensor) in Weight.Buffers())
            register_buffer("weight_" + suffix, tensor);
        if (bias is not null)
        {
            this.bias = new Parameter(bias.detach().clone().DetachFromDisposeScope(), requires_grad: false);
            register_parameter("bias", this.bias);
        }
    }

    private static Nf4Tensor QuantizeChecked(Tensor weight, bool doubleQuantize)
    {
        ArgumentNullException.ThrowIfNull(weight);
        if (weight.dim() != 2)
            throw new ArgumentException($"A linear weight is (out, in); got [{string.Join(", ", weight.shape)}].", nameof(weight));
        return Nf4Tensor.Quantize(weight, doubleQuantize);
    }

    public long InFeatures { get; }
    public long OutFeatures { get; }
    public Nf4Tensor Weight { get; }

    public Tensor? Bias => bias;

    public override Tensor forward(Tensor input)
    {
        if (torch.is_grad_enabled() && input.requires_grad)
            return Nf4LinearFunction.Run(this, input);
        return Compute(input);
    }

    /// <summary>x·dequant(W)ᵀ + b in x's dtype; the dequantised weight is freed before returning.</summary>
    internal Tensor Compute(Tensor input)
    {
        using var scope = torch.NewDisposeScope();
        var weight = Weight.Dequantize(input.dtype);                            // (out, in), temporary
        var output = nn.functional.linear(input, weight, bias?.to_type(input.dtype));  // (..., out)
        return output.MoveToOuterDisposeScope();
    }

    /// <summary>The dequantised weight (out, in) in float32, detached: what a frozen NF4 projection exports as (QLoRA's bases are lossy by design).</summary>
    public Tensor MergedWeight() => Weight.Dequantize();

    /// <summary>The frozen bias (out), detached copy; null when there is none.</summary>
    public Tensor? MergedBias() => bias?.detach().clone();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
            Weight.Dispose();
        base.Dispose(disposing);
    }
}

/// <summary>
/// The autograd function behind <see cref="Nf4Linear"/>: forward saves nothing (the codes are the module's), backward
/// dequantises W again for the input gradient gY·W. No gradient reaches the codes or the frozen bias.
/// </summary>
internal sealed class Nf4LinearFunction : autograd.SingleTensorFunction<Nf4LinearFunction>
{
    public override string Name => nameof(Nf4LinearFunction);

    public static Tensor Run(Nf4Linear layer, Tensor input)
    {
        ReturnedGradients.Release();
        return apply(layer, input);
    }

    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var layer = (Nf4Linear)vars[0];
        ctx.save_data("layer", layer);
        return layer.Compute((Tensor)vars[1]);
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
    {
        var layer = (Nf4Linear)ctx.get_data("layer");
        ReturnedGradients.Release();
        using var scope = torch.NewDisposeScope();
        var weight = layer.Weight.Dequantize(gradOutput.dtype);                 // (out, in), temporary again
        var gradInput = torch.matmul(gradOutput, weight);                       // (..., in)
        return ReturnedGradients.Keep([null!, gradInput]);
    }
}
