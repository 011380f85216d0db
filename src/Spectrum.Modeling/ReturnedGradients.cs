// Keeps the gradients a custom autograd function's backward returns alive exactly until the engine has taken them.
using static TorchSharp.torch;

namespace Spectrum.Modeling;

/// <summary>
/// TorchSharp's autograd engine takes its own reference to each tensor a custom function's backward returns, but
/// only after backward has returned, so the function's handles must outlive its dispose scope. Kept in a scope
/// instead, every returned gradient would stay alive until the training step ends (parameter-sized for checkpointed
/// layers, activation-sized for NF4 layers). <see cref="Keep"/> holds them; <see cref="Release"/>, called at the
/// start of the next backward or forward of any such function on this thread, frees them once they are consumed.
/// </summary>
public static class ReturnedGradients
{
    [ThreadStatic]
    private static List<Tensor>? t_kept;

    /// <summary>Detaches each non-null gradient from its dispose scope and holds it until <see cref="Release"/>.</summary>
    public static List<Tensor> Keep(List<Tensor> gradients)
    {
        ArgumentNullException.ThrowIfNull(gradients);
        t_kept ??= [];
        foreach (var gradient in gradients.Where(gradient => gradient is not null))
            t_kept.Add(gradient.DetachFromDisposeScope());
        return gradients;
    }

    /// <summary>Disposes this thread's handles from the previous backward call; the engine holds its own references by now.</summary>
    public static void Release()
    {
        if (t_kept is null)
            return;
        foreach (var gradient in t_kept)
            gradient.Dispose();
        t_kept.Clear();
    }
}
