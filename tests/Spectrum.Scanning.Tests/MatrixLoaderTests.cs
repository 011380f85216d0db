// Loading tensors into TorchSharp: every supported dtype decodes exactly, and chunked copies equal one-piece copies.
using Spectrum.Checkpoints;
using TorchSharp;

namespace Spectrum.Scanning.Tests;

public sealed class MatrixLoaderTests
{
    [Theory]
    [InlineData(SafetensorsDType.F32)]
    [InlineData(SafetensorsDType.F16)]
    [InlineData(SafetensorsDType.BF16)]
    public void Loaded_matrix_equals_the_decoded_values_whatever_the_chunk_size(SafetensorsDType dtype)
    {
        using var folder = new TemporaryFolder();
        string path = folder.File("m.safetensors");
        var values = Enumerable.Range(0, 37 * 11).Select(i => (float)Math.Sin(i) * 3).ToArray();
        SafetensorsWriter.Write(path, [TensorToWrite.FromFloat32("model.layers.0.mlp.up_proj.weight", dtype, [37, 11], values)]);
        using var checkpoint = Checkpoint.Open(path);
        var candidate = ModuleCatalog.Discover(checkpoint, false, true).All.Single();
        var decoded = new float[candidate.Tensor.ElementCount];
        using (var raw = checkpoint.ReadBytes(candidate.Tensor.Name)) DTypeDecoder.ToFloat32(raw.Span, dtype, decoded);

        long saved = MatrixLoader.ChunkBytes;
        try
        {
            foreach (long chunk in new long[] { 1 << 30, 100, 1 })
            {
                MatrixLoader.ChunkBytes = chunk;
                using var matrix = MatrixLoader.Load(checkpoint, candidate);
                Assert.Equal(new long[] { 37, 11 }, matrix.shape);
                using var asFloat = matrix.to(torch.float32);
                Assert.Equal(decoded, asFloat.data<float>().ToArray());
            }
        }
        finally
        {
            MatrixLoader.ChunkBytes = saved;
        }
    }
}
