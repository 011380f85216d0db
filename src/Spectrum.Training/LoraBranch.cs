// The maths LoraLinear and Nf4LoraLinear share: PEFT's initialisation, the adapter's forward term and the merged weight.
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Spectrum.Training;

internal static class LoraBranch
{
    /// <summary>
    /// lora_A (r, in): PEFT's <c>kaiming_uniform_(a=√5)</c>, i.e. U(−1/√in, 1/√in) (gain √(2/(1+5)) · √(3/in));
    /// lora_B (out, r): zeros, so the wrapped layer starts out computing exactly what the base computed.
    /// Drawn from <paramref name="generator"/> when given, so adapters can be initialised reproducibly.
    /// </summary>
    public static (Linear A, Linear B) Create(long inFeatures, long outFeatures, int rank, Generator? generator)
    {
        var a = nn.Linear(inFeatures, rank, hasBias: false);
        var b = nn.Linear(rank, outFeatures, hasBias: false);
        using var noGrad = torch.no_grad();
        double bound = 1.0 / Math.Sqrt(inFeatures);
        a.weight!.uniform_(-bound, bound, generator);
        b.weight!.zero_();
        return (a, b);
    }

    /// <summary>
    /// scaling · B(A(dropout(x))), returned in <paramref name="resultDtype"/>. x is (..., in); result (..., out). With a
    /// bf16/f16 input (a bf16 model) the products run in that dtype on the adapter weights cast to it, as torch.autocast
    /// runs PEFT's float32 adapters in HF's and Axolotl's bf16 training; the weights, their gradients and AdamW state
    /// stay float32. Otherwise they run in the adapter's own dtype.
    /// </summary>
    public static Tensor Delta(Tensor input, Linear a, Linear b, SeededDropout dropout, double scaling, ScalarType resultDtype)
    {
        using var scope = torch.NewDisposeScope();
        var adapterDtype = a.weight!.dtype;
        bool autocast = input.dtype is ScalarType.BFloat16 or ScalarType.Float16 && adapterDtype == ScalarType.Float32;
        Tensor delta;
        if (autocast)
        {
            // The scaling goes on A (r × in) rather than on the (tokens × out) result: one small multiply instead of a large
            // one; exact for the usual power-of-two alpha / r.
            var x = dropout.call(input);
            var hidden = nn.functional.linear(x, (a.weight! * scaling).to_type(input.dtype));   // (..., r)
            delta = nn.functional.linear(hidden, b.weight!.to_type(input.dtype));                // (..., out)
        }
        else
        {
            delta = b.call(a.call(dropout.call(input.to_type(adapterDtype)))) * scaling;
        }
        return (delta.dtype == resultDtype ? delta : delta.to_type(resultDtype)).MoveToOuterDisposeScope();
    }

    /// <summary>W + scaling · B·A in <paramref name="dtype"/>, computed in float32; B (out, r) · A (r, in) = (out, in). Detached.</summary>
    public static Tensor Merge(Tensor baseWeight, Linear a, Linear b, double scaling, ScalarType dtype)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var update = torch.matmul(b.weight!.to_type(ScalarType.Float32), a.weight!.to_type(ScalarType.Float32)) * scaling;  // (out, in)
        var merged = (baseWeight.to_type(ScalarType.Float32) + update).to_type(dtype);
        return merged.MoveToOuterDisposeScope();
    }

    public static void Freeze(Parameter? parameter)
    {
        if (parameter is not null)
            parameter.requires_grad = false;
    }
}
