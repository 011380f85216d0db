// Copies one checkpoint tensor into a TorchSharp tensor of its own dtype: the only copy the scan makes before the engine converts it.
using Spectrum.Checkpoints;
using TorchSharp;

namespace Spectrum.Scanning;

public static class MatrixLoader
{
    /// <summary>Largest slice copied through one span; torch spans are int-indexed, tensors can exceed 2 GB.</summary>
    internal static long ChunkBytes { get; set; } = 1L << 30;

    public static torch.ScalarType TorchTypeOf(TensorEntry tensor) => tensor.DType switch
    {
        SafetensorsDType.BF16 => torch.ScalarType.BFloat16,
        SafetensorsDType.F16 => torch.ScalarType.Float16,
        SafetensorsDType.F32 => torch.ScalarType.Float32,
        SafetensorsDType.F64 => torch.ScalarType.Float64,
        _ => throw new CheckpointException(CheckpointError.UnsupportedDType, tensor.FilePath, tensor.Name,
            $"Tensor '{tensor.Name}' in '{tensor.FilePath}' has dtype {SafetensorsDTypes.HeaderName(tensor.DType)}; " +
            "the scanner reads BF16, F16, F32 and F64 weights. Convert the checkpoint or leave this type out with --types."),
    };

    /// <summary>Returns a (rows, cols) tensor the caller owns; rank-1 tensors become one row.</summary>
    public static torch.Tensor Load(Checkpoint checkpoint, ScanCandidate candidate)
    {
        var entry = candidate.Tensor;
        var matrix = torch.empty(new[] { candidate.Rows, candidate.Cols }, TorchTypeOf(entry));
        try
        {
            using var source = checkpoint.ReadBytes(entry.Name);
            long rowBytes = entry.ByteLength / Math.Max(1, candidate.Rows);
            long rowsPerChunk = Math.Max(1, ChunkBytes / Math.Max(1, rowBytes));
            for (long row = 0; row < candidate.Rows; row += rowsPerChunk)
            {
                long count = Math.Min(rowsPerChunk, candidate.Rows - row);
                using var slice = matrix.narrow(0, row, count);
                source.CopyTo(slice.bytes, row * rowBytes);
            }
            return matrix;
        }
        catch
        {
            matrix.Dispose();
            throw;
        }
    }
}
