// A model's parameters with tied (shared) tensors listed once, under their first name, as PyTorch's named_parameters does.
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Spectrum.Training;

internal static class UniqueParameters
{
    /// <summary>
    /// TorchSharp lists a shared parameter (e.g. a tied embedding and output head) under every name, each time in a
    /// new wrapper object; training it twice would double its update and optimizer state. Tensors are told apart by
    /// their memory address, dtype and shape. Only CPU tensors expose their address through TorchSharp, so on other
    /// devices tied parameters are not detected (no Llama-3 8B/70B checkpoint ties them).
    /// </summary>
    public static List<(string Name, Parameter Parameter)> Of(nn.Module model)
    {
        var seen = new HashSet<(long Address, ScalarType DType, string Shape)>();
        var result = new List<(string, Parameter)>();
        foreach (var (name, parameter) in model.named_parameters())
        {
            if (parameter.numel() == 0 || !parameter.is_cpu() || !parameter.is_contiguous()
                || seen.Add((AddressOf(parameter), parameter.dtype, string.Join(",", parameter.shape))))
                result.Add((name, parameter));
        }
        return result;
    }

    private static unsafe long AddressOf(Tensor tensor)
    {
        // Tensor.bytes spans the tensor's own CPU memory (no copy), so its start is the data address.
        fixed (byte* start = tensor.bytes)
            return (long)start;
    }
}
