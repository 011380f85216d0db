// The smallest and largest value of an index tensor, for range checks that turn native index errors into clear ones.
using static TorchSharp.torch;

namespace Spectrum.Modeling;

internal static class IndexRange
{
    /// <summary>(min, max) of a non-empty int64 tensor; the reduction tensors are disposed before returning.</summary>
    public static (long Smallest, long Largest) Of(Tensor indices)
    {
        using var scope = NewDisposeScope();
        return (indices.min().item<long>(), indices.max().item<long>());
    }
}
