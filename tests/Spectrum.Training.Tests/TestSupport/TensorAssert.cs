// Bit-level tensor comparisons: "identical" in these tests means the same dtype, shape and bytes.
using static TorchSharp.torch;

namespace Spectrum.Training.Tests.TestSupport;

internal static class TensorAssert
{
    public static bool BitEqual(Tensor a, Tensor b)
    {
        if (a.dtype != b.dtype || !a.shape.SequenceEqual(b.shape))
            return false;
        using var ca = a.detach().contiguous();
        using var cb = b.detach().contiguous();
        return ca.bytes.SequenceEqual(cb.bytes);
    }

    public static void Identical(Tensor expected, Tensor actual, string what = "tensor") =>
        Assert.True(BitEqual(expected, actual), $"{what}: expected {expected.dtype} [{string.Join(", ", expected.shape)}] bit-identical to {actual.dtype} [{string.Join(", ", actual.shape)}]");
}
