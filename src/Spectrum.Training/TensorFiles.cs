// Moves TorchSharp tensors to and from safetensors files byte for byte, so a resumed run sees exactly the saved values.
using Spectrum.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Spectrum.Training;

internal static class TensorFiles
{
    // 4 MiB of float32 per piece: bounded extra memory however large the tensor (a Llama embedding exceeds 2 GiB).
    internal const long ChunkElements = 1 << 20;

    private static readonly (ScalarType Torch, SafetensorsDType File)[] DTypes =
    [
        (ScalarType.Float32, SafetensorsDType.F32), (ScalarType.BFloat16, SafetensorsDType.BF16),
        (ScalarType.Float16, SafetensorsDType.F16), (ScalarType.Float64, SafetensorsDType.F64),
        (ScalarType.Int64, SafetensorsDType.I64), (ScalarType.Int32, SafetensorsDType.I32),
        (ScalarType.Int8, SafetensorsDType.I8), (ScalarType.Byte, SafetensorsDType.U8),
        (ScalarType.Bool, SafetensorsDType.Bool),
    ];

    /// <summary>Writes the tensors in order (raw little-endian bytes of their dtype) through the atomic <see cref="SafetensorsWriter"/>.</summary>
    public static void Write(string path, IReadOnlyList<(string Name, Tensor Tensor)> tensors,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        var entries = tensors.Select(t => new TensorToWrite(t.Name, ToFile(t.Name, t.Tensor.dtype), t.Tensor.shape,
            stream => WriteBytes(t.Tensor, stream))).ToList();
        SafetensorsWriter.Write(path, entries, metadata);
    }

    /// <summary>Every tensor of the file as a new CPU tensor (not in any dispose scope), in file order.</summary>
    /// <exception cref="CheckpointException">The file is malformed, or holds a dtype TorchSharp has no type for.</exception>
    public static Dictionary<string, Tensor> Read(string path)
    {
        using var file = SafetensorsFile.Open(path);
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            foreach (var entry in file.Tensors)
                result[entry.Name] = ReadOne(file, entry);
        }
        catch
        {
            foreach (var tensor in result.Values)
                tensor.Dispose();
            throw;
        }
        return result;
    }

    private static Tensor ReadOne(SafetensorsFile file, TensorEntry entry)
    {
        int dtypeIndex = Array.FindIndex(DTypes, d => d.File == entry.DType);
        if (dtypeIndex < 0)
            throw new CheckpointException(CheckpointError.UnsupportedDType, file.FilePath, entry.Name,
                $"{file.FilePath}: tensor '{entry.Name}' is {SafetensorsDTypes.HeaderName(entry.DType)}, which no training state uses; " +
                $"expected one of {string.Join(", ", DTypes.Select(d => SafetensorsDTypes.HeaderName(d.File)))}.");
        var tensor = torch.empty(entry.Shape.ToArray(), DTypes[dtypeIndex].Torch).DetachFromDisposeScope();
        long count = entry.ElementCount;
        if (count == 0)
            return tensor;
        int elementBytes = (int)tensor.element_size();
        using var scope = torch.NewDisposeScope();
        var flat = tensor.view(-1);   // (n), shares storage
        using var bytes = file.ReadBytes(entry.Name);
        var buffer = new byte[Math.Min(count, ChunkElements) * elementBytes];
        for (long start = 0; start < count; start += ChunkElements)
        {
            long length = Math.Min(ChunkElements, count - start);
            var chunk = buffer.AsSpan(0, (int)(length * elementBytes));
            bytes.CopyTo(chunk, start * elementBytes);
            flat.narrow(0, start, length).bytes = chunk;
        }
        return tensor;
    }

    private static void WriteBytes(Tensor tensor, Stream stream)
    {
        using var scope = torch.NewDisposeScope();
        var flat = tensor.detach().cpu().contiguous().view(-1);   // (n)
        long count = flat.numel();
        for (long start = 0; start < count; start += ChunkElements)
            stream.Write(flat.narrow(0, start, Math.Min(ChunkElements, count - start)).bytes);
    }

    private static SafetensorsDType ToFile(string name, ScalarType dtype)
    {
        int index = Array.FindIndex(DTypes, d => d.Torch == dtype);
        return index >= 0
            ? DTypes[index].File
            : throw new ArgumentException($"Tensor \"{name}\" is {dtype}, which the checkpoint writer does not store; convert it to float32 or bfloat16.", nameof(dtype));
    }
}
