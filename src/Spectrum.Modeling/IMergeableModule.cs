// The contract an adapter (LoRA, quantised linear…) implements so a model holding it can be exported as a plain Hugging Face checkpoint.
using TorchSharp;

namespace Spectrum.Modeling;

/// <summary>
/// A module standing in for a projection that can express itself as one ordinary linear layer. The exporter writes
/// <see cref="MergedWeight"/> (and <see cref="MergedBias"/>) under the projection's Hugging Face name, so the saved
/// checkpoint loads anywhere without the adapter code.
/// </summary>
public interface IMergeableModule
{
    /// <summary>
    /// The effective weight, (out_features, in_features), e.g. W + (alpha/r)·B·A for LoRA or the dequantised weight.
    /// The caller owns (and disposes) the returned tensor; any dtype is accepted and converted on export.
    /// </summary>
    torch.Tensor MergedWeight();

    /// <summary>The effective bias, (out_features), or null when the projection has none. Caller-owned.</summary>
    torch.Tensor? MergedBias();
}
