// Copies safetensors weights (BF16/F16/F32, single or sharded) into a LlamaForCausalLM after a strict all-at-once check; not a format reader (Spectrum.Checkpoints is).
using Spectrum.Checkpoints;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Spectrum.Modeling;

/// <summary>
/// Tensors the loader hands to <see cref="Receive"/> instead of copying them into the model, one at a time, e.g. to
/// quantise each projection while loading so the dense weights are never resident. The model's parameter for a
/// diverted name is left untouched (its uninitialised storage is never written, so never paged in).
/// </summary>
/// <param name="Diverts">True for the checkpoint names to divert.</param>
/// <param name="Receive">Gets (name, tensor in the model's dtype); the tensor is disposed after the call, so copy or quantise it.</param>
public sealed record LoadDiversion(Predicate<string> Diverts, Action<string, Tensor> Receive);

public static class CheckpointLoader
{
    /// <summary>Largest slice copied through one span: torch spans are int-indexed, while tensors can exceed 2 GB.</summary>
    internal static long ChunkBytes { get; set; } = 1L << 30;

    private const string TiedHeadName = "lm_head.weight";
    private const string EmbeddingName = "model.embed_tokens.weight";

    /// <summary>
    /// Checks every tensor first — missing, unexpected, mis-shaped and wrongly typed ones are reported together in one
    /// <see cref="ModelLoadException"/> and nothing is copied — then decodes the weights one tensor at a time into the
    /// model's parameters (converting to the model's dtype). With tied embeddings an lm_head.weight in the file is
    /// accepted only when it equals the embedding; untied models require it. Rotary inv_freq buffers that old
    /// exporters stored are skipped: they are derived from config.json, not weights. Names that
    /// <paramref name="diversion"/> claims pass the same checks but go to its callback instead of the model.
    /// </summary>
    /// <exception cref="ModelLoadException">The checkpoint does not fit the model.</exception>
    /// <exception cref="InvalidOperationException">A projection was already replaced (load before adding adapters).</exception>
    public static void Load(LlamaForCausalLM model, Checkpoint checkpoint, LoadDiversion? diversion = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(checkpoint);
        var config = model.Config;
        var targets = model.named_parameters().ToDictionary(pair => pair.name, pair => pair.parameter, StringComparer.Ordinal);
        var expected = config.ExpectedTensors();
        var notParameters = expected.Where(tensor => !targets.ContainsKey(tensor.Name)).Select(tensor => tensor.Name).ToList();
        if (notParameters.Count > 0)
        {
            throw new InvalidOperationException(
                $"The model has no parameter named {string.Join(", ", notParameters.Take(5))}" +
                $"{(notParameters.Count > 5 ? $" (and {notParameters.Count - 5} more)" : "")}; its projections were " +
                "replaced (e.g. by adapters). Load the base checkpoint first, then replace projections.");
        }

        var problems = Check(config, expected, checkpoint);
        if (problems.Any)
        {
            throw new ModelLoadException(checkpoint.IndexPath ?? checkpoint.RootPath, problems.Missing,
                problems.Unexpected, problems.Misshaped, problems.WrongDType, problems.Conflicting);
        }

        using var noGrad = torch.no_grad();
        foreach (var (name, _) in expected)
        {
            if (diversion is not null && diversion.Diverts(name))
            {
                // Disposed explicitly rather than by a scope, so whatever the callback keeps (a clone, NF4 codes) survives.
                using var raw = ReadTensor(checkpoint, checkpoint.GetEntry(name));
                var converted = raw.to(targets[name].dtype);
                try
                {
                    diversion.Receive(name, converted);
                }
                finally
                {
                    if (!ReferenceEquals(converted, raw))
                        converted.Dispose();
                }
                continue;
            }
            CopyInto(checkpoint, checkpoint.GetEntry(name), targets[name]);
        }
    }

    private sealed class Problems
    {
        public List<TensorLoadProblem> Missing { get; } = [];
        public List<TensorLoadProblem> Unexpected { get; } = [];
        public List<TensorLoadProblem> Misshaped { get; } = [];
        public List<TensorLoadProblem> WrongDType { get; } = [];
        public List<TensorLoadProblem> Conflicting { get; } = [];

        public bool Any => Missing.Count + Unexpected.Count + Misshaped.Count + WrongDType.Count + Conflicting.Count > 0;
    }

    private static Problems Check(LlamaConfig config, IReadOnlyList<(string Name, long[] Shape)> expected,
        Checkpoint checkpoint)
    {
        var problems = new Problems();
        var expectedShapes = expected.ToDictionary(tensor => tensor.Name, tensor => tensor.Shape, StringComparer.Ordinal);
        foreach (var entry in checkpoint.Tensors)
        {
            long[]? shape = expectedShapes.GetValueOrDefault(entry.Name);
            bool tiedHead = config.TieWordEmbeddings && entry.Name == TiedHeadName;
            if (shape is null && tiedHead)
            {
                shape = [config.VocabSize, config.HiddenSize];
            }
            if (shape is null)
            {
                if (!IsDerivedBuffer(entry.Name))
                {
                    problems.Unexpected.Add(new TensorLoadProblem(entry.Name, null, entry.Shape, entry.DType, entry.FilePath));
                }
                continue;
            }
            if (!entry.Shape.SequenceEqual(shape))
            {
                problems.Misshaped.Add(new TensorLoadProblem(entry.Name, shape, entry.Shape, entry.DType, entry.FilePath));
            }
            if (!IsLoadable(entry.DType))
            {
                problems.WrongDType.Add(new TensorLoadProblem(entry.Name, shape, entry.Shape, entry.DType, entry.FilePath));
            }
        }
        foreach (var (name, shape) in expected)
        {
            if (!checkpoint.TryGetEntry(name, out _))
            {
                problems.Missing.Add(new TensorLoadProblem(name, shape, null, null, checkpoint.RootPath));
            }
        }
        if (config.TieWordEmbeddings && !problems.Any && checkpoint.TryGetEntry(TiedHeadName, out var head)
            && !SameValues(checkpoint, head, checkpoint.GetEntry(EmbeddingName)))
        {
            problems.Conflicting.Add(new TensorLoadProblem(TiedHeadName, head.Shape, head.Shape, head.DType, head.FilePath,
                $"config.json says tie_word_embeddings = true, but this lm_head.weight differs from {EmbeddingName}; " +
                "loading would silently drop the trained head. If the head is really separate, set " +
                "tie_word_embeddings to false."));
        }
        return problems;
    }

    private static bool IsLoadable(SafetensorsDType dtype) =>
        dtype is SafetensorsDType.BF16 or SafetensorsDType.F16 or SafetensorsDType.F32;

    /// <summary>"model.layers.{i}.self_attn.rotary_emb.inv_freq": a buffer some exporters saved; recomputed from config.json.</summary>
    private static bool IsDerivedBuffer(string name) =>
        name.StartsWith("model.layers.", StringComparison.Ordinal)
        && name.EndsWith(".self_attn.rotary_emb.inv_freq", StringComparison.Ordinal);

    /// <summary>Equal values (bytes when both have one dtype, otherwise decoded to float32), for tied-head checks.</summary>
    private static bool SameValues(Checkpoint checkpoint, TensorEntry first, TensorEntry second)
    {
        if (first.DType == second.DType && first.ByteLength == second.ByteLength && first.ByteLength <= int.MaxValue)
        {
            using var a = checkpoint.ReadBytes(first.Name);
            using var b = checkpoint.ReadBytes(second.Name);
            return a.Span.SequenceEqual(b.Span);
        }
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var left = ReadTensor(checkpoint, first).to(ScalarType.Float32);
        var right = ReadTensor(checkpoint, second).to(ScalarType.Float32);
        // TorchSharp's Tensor.equal compares element-wise (torch.eq), unlike PyTorch's torch.equal: reduce with all().
        return left.eq(right).all().item<bool>();
    }

    /// <summary>
    /// Same dtype: bytes go straight into the parameter's storage. Otherwise the stored dtype is read into a temporary
    /// tensor and converted by torch (exact for BF16/F16 → F32; round-to-nearest-even the other way).
    /// </summary>
    private static void CopyInto(Checkpoint checkpoint, TensorEntry entry, Parameter target)
    {
        if (TorchTypeOf(entry.DType) == target.dtype && target.is_contiguous())
        {
            using var bytes = checkpoint.ReadBytes(entry.Name);
            CopyRows(bytes, target);
            return;
        }
        using var scope = torch.NewDisposeScope();
        target.copy_(ReadTensor(checkpoint, entry));
    }

    /// <summary>A new CPU tensor of the entry's own dtype and shape holding its bytes; the caller owns it.</summary>
    private static Tensor ReadTensor(Checkpoint checkpoint, TensorEntry entry)
    {
        var tensor = torch.empty(entry.Shape.ToArray(), dtype: TorchTypeOf(entry.DType));
        try
        {
            using var bytes = checkpoint.ReadBytes(entry.Name);
            CopyRows(bytes, tensor);
            return tensor;
        }
        catch
        {
            tensor.Dispose();
            throw;
        }
    }

    /// <summary>Copies all of <paramref name="source"/> into the contiguous <paramref name="target"/>, a block of rows at a time.</summary>
    private static void CopyRows(TensorBytes source, Tensor target)
    {
        long rows = target.dim() == 0 ? 1 : target.shape[0];
        long rowBytes = source.Length / Math.Max(1, rows);
        long rowsPerChunk = Math.Max(1, ChunkBytes / Math.Max(1, rowBytes));
        if (target.dim() == 0 || rows <= rowsPerChunk)
        {
            source.CopyTo(target.bytes, 0);
            return;
        }
        for (long row = 0; row < rows; row += rowsPerChunk)
        {
            long count = Math.Min(rowsPerChunk, rows - row);
            using var slice = target.narrow(0, row, count);
            source.CopyTo(slice.bytes, row * rowBytes);
        }
    }

    internal static ScalarType TorchTypeOf(SafetensorsDType dtype) => dtype switch
    {
        SafetensorsDType.BF16 => ScalarType.BFloat16,
        SafetensorsDType.F16 => ScalarType.Float16,
        SafetensorsDType.F32 => ScalarType.Float32,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype,
            $"Only BF16, F16 and F32 weights load into a model; found {SafetensorsDTypes.HeaderName(dtype)}."),
    };
}
