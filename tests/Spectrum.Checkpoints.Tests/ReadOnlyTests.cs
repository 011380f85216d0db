// Reading must never modify a checkpoint: every file hashes and dates the same before and after a full read.
using System.Security.Cryptography;
using Spectrum.Checkpoints.Tests.TestSupport;

namespace Spectrum.Checkpoints.Tests;

public sealed class ReadOnlyTests : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    private Dictionary<string, (string Hash, DateTime Written)> Snapshot() =>
        Directory.GetFiles(_folder.Path).ToDictionary(path => path,
            path => (Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path))), File.GetLastWriteTimeUtc(path)));

    [Fact]
    public void OpeningReadingDecodingAndValidatingLeaveEveryFileUnchanged()
    {
        var model = new TinyLlama();
        ShardedCheckpointWriter.Write(_folder.Path, model.Tensors(), 1200, model.ConfigJson());
        var before = Snapshot();

        using (var checkpoint = Checkpoint.Open(_folder.Path))
        {
            checkpoint.ValidateAgainstConfig();
            foreach (var tensor in checkpoint.Tensors)
            {
                using var bytes = checkpoint.ReadBytes(tensor.Name);
                _ = bytes.Span.ToArray();
                _ = checkpoint.ReadFloat32(tensor.Name);
            }
        }

        Assert.Equal(before, Snapshot());
    }

    [Fact]
    public void RejectingACorruptFileLeavesItUnchanged()
    {
        string path = _folder.WriteBytes("bad.safetensors", SafetensorsBytes.Build(
            """{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", 9));
        var before = Snapshot();

        Assert.Throws<CheckpointException>(() => SafetensorsFile.Open(path));

        Assert.Equal(before, Snapshot());
    }
}
