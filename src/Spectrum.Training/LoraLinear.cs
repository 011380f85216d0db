// A frozen linear layer plus a trainable low-rank update (LoRA), named like PEFT so adapter weights keep PEFT's keys.
using TorchSharp;
using TorchSharp.Modules;
using Spectrum.Modeling;
using static TorchSharp.torch;

namespace Spectrum.Training;

/// <summary>
/// <c>y = base_layer(x) + dropout(x)·Aᵀ·Bᵀ · alpha/r</c>. Parameters: <c>base_layer.weight</c> (out, in) and
/// <c>base_layer.bias</c> (out), both frozen; <c>lora_A.weight</c> (r, in) and <c>lora_B.weight</c> (out, r), trainable
/// (PEFT's saved-adapter keys, without its <c>.default</c> adapter name). The adapter runs in its own dtype
/// (float32 unless converted) and its output is cast to the input's dtype, as PEFT does for bf16 bases.
/// </summary>
public sealed class LoraLinear : nn.Module<Tensor, Tensor>, IMergeableModule
{
#pragma warning disable IDE1006 // Field names are the state-dict keys.
    private readonly Linear base_layer;
    private readonly Linear lora_A;
    private readonly Linear lora_B;
    private readonly SeededDropout lora_dropout;
#pragma warning restore IDE1006

    /// <summary>Wraps <paramref name="baseLayer"/>, which this module then owns and freezes.</summary>
    /// <param name="generator">Source of lora_A's initial values; the default generator when null.</param>
    public LoraLinear(Linear baseLayer, LoraOptions options, Generator? generator = null) : base(nameof(LoraLinear))
    {
        ArgumentNullException.ThrowIfNull(baseLayer);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
        InFeatures = baseLayer.in_features;
        OutFeatures = baseLayer.out_features;
        base_layer = baseLayer;
        LoraBranch.Freeze(baseLayer.weight);
        LoraBranch.Freeze(baseLayer.bias);
        (lora_A, lora_B) = LoraBranch.Create(InFeatures, OutFeatures, options.Rank, generator);
        lora_dropout = new SeededDropout(options.Dropout);
        RegisterComponents();
    }

    public LoraOptions Options { get; }
    public long InFeatures { get; }
    public long OutFeatures { get; }

    /// <summary>True for the names of LoRA's own trainable parameters (<c>…lora_A.weight</c>, <c>…lora_B.weight</c>), for <see cref="ParameterFreezer.FreezeAllExcept"/>.</summary>
    public static bool IsAdapterParameter(string parameterName)
    {
        ArgumentNullException.ThrowIfNull(parameterName);
        var parts = parameterName.Split('.');
        return parts.Length >= 2 && parts[^1] == "weight" && parts[^2] is "lora_A" or "lora_B";
    }

    public override Tensor forward(Tensor input)
    {
        using var scope = torch.NewDisposeScope();
        var result = base_layer.call(input);   // (..., out)
        var output = result + LoraBranch.Delta(input, lora_A, lora_B, lora_dropout, Options.Scaling, result.dtype);
        return output.MoveToOuterDisposeScope();
    }

    /// <summary>W + alpha/r · B·A (out, in), in the base weight's dtype, detached: the weight to write when merging the adapter.</summary>
    public Tensor MergedWeight() => LoraBranch.Merge(base_layer.weight!, lora_A, lora_B, Options.Scaling, base_layer.weight!.dtype);

    /// <summary>The frozen base bias (out), detached copy; LoRA does not change it. Null when the base has none.</summary>
    public Tensor? MergedBias() => base_layer.bias?.detach().clone();
}
