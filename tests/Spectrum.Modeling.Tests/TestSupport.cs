// Shared test plumbing: repository paths, temporary folders, small tensor helpers and the reference-fixture reader; no assertions of its own.
using System.Reflection;
using System.Runtime.InteropServices;
using Spectrum.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Spectrum.Modeling.Tests;

internal static class RepositoryPaths
{
    public static string Root { get; } = typeof(RepositoryPaths).Assembly
        .GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "RepositoryRoot").Value!;

    public static string Fixture(params string[] parts) =>
        Path.Combine([Root, "tests", "reference", "fixtures", .. parts]);

    public static string TestsFolder(params string[] parts) =>
        Path.Combine([Root, "tests", "Spectrum.Modeling.Tests", .. parts]);
}

/// <summary>A temporary folder deleted when the test ends.</summary>
internal sealed class TemporaryFolder : IDisposable
{
    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"spectrum-modeling-{Guid.NewGuid():N}");

    public TemporaryFolder() => Directory.CreateDirectory(Path);

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public string Sub(string name)
    {
        string path = System.IO.Path.Combine(Path, name);
        Directory.CreateDirectory(path);
        return path;
    }

    public void Dispose()
    {
        if (Directory.Exists(Path)) Directory.Delete(Path, recursive: true);
    }
}

internal static class Tensors
{
    /// <summary>Random token ids (batch, seq) in [0, vocab), reproducible from the seed.</summary>
    public static Tensor RandomIds(long batch, long seq, long vocab, long seed) =>
        torch.randint(0, vocab, [batch, seq], dtype: ScalarType.Int64, generator: new Generator((ulong)seed));

    /// <summary>The raw bytes of a CPU tensor (contiguous copy), for bit-for-bit comparisons.</summary>
    public static byte[] Bytes(Tensor tensor)
    {
        using var scope = torch.NewDisposeScope();
        return tensor.detach().cpu().contiguous().bytes.ToArray();
    }

    public static float[] Floats(Tensor tensor)
    {
        using var scope = torch.NewDisposeScope();
        return tensor.detach().to(ScalarType.Float32).cpu().contiguous().reshape(-1).data<float>().ToArray();
    }

    /// <summary>Mean next-token cross-entropy of (batch, seq, vocab) logits against the ids shifted by one.</summary>
    public static Tensor NextTokenLoss(Tensor logits, Tensor ids)
    {
        long seq = ids.shape[1], vocab = logits.shape[^1];
        var predictions = logits.narrow(1, 0, seq - 1).reshape(-1, vocab);
        var targets = ids.narrow(1, 1, seq - 1).reshape(-1);
        return nn.functional.cross_entropy(predictions, targets);
    }
}

/// <summary>Reads tensors of a small F32/I64 safetensors file (the reference's expected.safetensors) with our checkpoint reader.</summary>
internal static class ExpectedFile
{
    public static Tensor Read(string path, string name)
    {
        using var file = Checkpoint.Open(path);
        var entry = file.GetEntry(name);
        using var bytes = file.ReadBytes(name);
        var shape = entry.Shape.ToArray();
        return entry.DType switch
        {
            SafetensorsDType.I64 => torch.tensor(MemoryMarshal.Cast<byte, long>(bytes.Span).ToArray(), shape),
            SafetensorsDType.F32 => torch.tensor(MemoryMarshal.Cast<byte, float>(bytes.Span).ToArray(), shape),
            _ => throw new InvalidOperationException($"{path}: '{name}' is {entry.DType}; the fixture stores I64 and F32 only."),
        };
    }

    public static bool Has(string path, string name)
    {
        using var file = Checkpoint.Open(path);
        return file.TryGetEntry(name, out _);
    }
}
