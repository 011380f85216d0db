// Creates the nn.Linear projections with uninitialised storage (the model's initialisation or a checkpoint fills them); nothing else.
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Spectrum.Modeling;

internal static class LinearFactory
{
    /// <summary>
    /// torch.nn.Linear(in, out) would spend a Kaiming initialisation on weights that are immediately overwritten, so
    /// the parameters are allocated empty and wrapped. The weight is (out, in), as checkpoints store it.
    /// </summary>
    public static Linear Create(long inFeatures, long outFeatures, bool bias, ScalarType dtype, Device? device)
    {
        var weight = new Parameter(torch.empty([outFeatures, inFeatures], dtype: dtype, device: device), requires_grad: true);
        var biasParameter = bias
            ? new Parameter(torch.empty([outFeatures], dtype: dtype, device: device), requires_grad: true)
            : null;
        return nn.Linear(weight, biasParameter);
    }
}
