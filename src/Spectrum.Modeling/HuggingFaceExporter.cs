// Saves a LlamaForCausalLM as a Hugging Face folder (config.json + BF16/F16/F32 safetensors, sharded when large), merging adapters; not a training-state checkpoint.
using Spectrum.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Spectrum.Modeling;

public static class HuggingFaceExporter
{
    /// <summary>Slice size for streaming tensor bytes; spans are int-indexed.</summary>
    private const long WriteChunkBytes = 1L << 28;

    /// <summary>
    /// Writes exactly the tensors of <see cref="LlamaConfig.ExpectedTensors"/> under their Hugging Face names, one
    /// tensor in memory at a time, through <see cref="ShardedCheckpointWriter"/> (each file atomic, the index last).
    /// A projection replaced by an <see cref="IMergeableModule"/> is written as its merged weight/bias; any other
    /// non-linear replacement is refused before anything is written. The folder loads back with
    /// <see cref="LlamaForCausalLM.FromPretrained"/> bit-identically when <paramref name="dtype"/> matches the model's.
    /// </summary>
    /// <param name="config">Written as config.json; its dimensions must be the model's.</param>
    /// <param name="extraFilesToCopy">Files copied beside the weights (tokenizer.json, generation_config.json…).</param>
    /// <exception cref="ArgumentException">Unsupported dtype, a config that does not match the model, a missing extra file.</exception>
    /// <exception cref="InvalidOperationException">A replaced projection that cannot be merged, or a merge of the wrong shape.</exception>
    /// <exception cref="CheckpointException">Writing failed (disk full, permissions).</exception>
    public static void Save(LlamaForCausalLM model, LlamaConfig config, string folder, SafetensorsDType dtype,
        long maxShardBytes = 5_000_000_000, IEnumerable<string>? extraFilesToCopy = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(config);
        ArgumentException.ThrowIfNullOrEmpty(folder);
        string torchDtype = dtype switch
        {
            SafetensorsDType.BF16 => "bfloat16",
            SafetensorsDType.F16 => "float16",
            SafetensorsDType.F32 => "float32",
            _ => throw new ArgumentException(
                $"Hugging Face exports are BF16, F16 or F32; {SafetensorsDTypes.HeaderName(dtype)} was requested.",
                nameof(dtype)),
        };
        var extras = (extraFilesToCopy ?? []).Select(Path.GetFullPath).ToList();
        foreach (string extra in extras)
        {
            if (!File.Exists(extra))
            {
                throw new ArgumentException(
                    $"Extra file to copy '{extra}' does not exist; nothing was written. Check the path (e.g. the " +
                    "base model's tokenizer.json).", nameof(extraFilesToCopy));
            }
        }
        RequireSameShapes(model.Config, config);

        var sources = ResolveSources(model, config);
        var tensors = config.ExpectedTensors()
            .Select(tensor => new TensorToWrite(tensor.Name, dtype, tensor.Shape,
                stream => WriteTensor(stream, tensor.Name, tensor.Shape, sources[tensor.Name], dtype)))
            .ToList();
        ShardedCheckpointWriter.Write(folder, tensors, maxShardBytes, config.ToConfigJson(torchDtype));

        foreach (string extra in extras)
        {
            CopyAtomically(extra, Path.Combine(Path.GetFullPath(folder), Path.GetFileName(extra)));
        }
    }

    /// <summary>For each tensor name, a function producing its current value (merging adapters on demand).</summary>
    private static Dictionary<string, Func<Tensor>> ResolveSources(LlamaForCausalLM model, LlamaConfig config)
    {
        var parameters = model.named_parameters().ToDictionary(pair => pair.name, pair => pair.parameter, StringComparer.Ordinal);
        var sources = new Dictionary<string, Func<Tensor>>(StringComparer.Ordinal);
        var projectionNames = model.ProjectionModuleNames().ToHashSet(StringComparer.Ordinal);
        foreach (var (name, _) in config.ExpectedTensors())
        {
            int dot = name.LastIndexOf('.');
            string module = name[..dot], field = name[(dot + 1)..];
            if (projectionNames.Contains(module) && model.GetProjection(module) is not TorchSharp.Modules.Linear)
            {
                var replacement = model.GetProjection(module);
                if (replacement is not IMergeableModule mergeable)
                {
                    throw new InvalidOperationException(
                        $"Projection '{module}' is a {replacement.GetType().Name}, which is neither a Linear nor an " +
                        $"{nameof(IMergeableModule)}, so no plain '{name}' can be written. Implement " +
                        $"{nameof(IMergeableModule)} on the adapter, or export the adapter separately.");
                }
                sources[name] = field == "weight"
                    ? mergeable.MergedWeight
                    : () => mergeable.MergedBias() ?? throw new InvalidOperationException(
                        $"Projection '{module}' ({replacement.GetType().Name}) returned no merged bias, but the config " +
                        $"requires '{name}'.");
                continue;
            }
            var parameter = parameters[name];
            sources[name] = () => parameter.detach();
        }
        return sources;
    }

    private static void WriteTensor(Stream stream, string name, long[] shape, Func<Tensor> source, SafetensorsDType dtype)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var value = source();
        if (!value.shape.SequenceEqual(shape))
        {
            throw new InvalidOperationException(
                $"Tensor '{name}' should be [{string.Join(", ", shape)}] but its source produced " +
                $"[{string.Join(", ", value.shape)}]; an adapter's merge returned the wrong shape. Shards already " +
                "written in this folder belong to an incomplete export; write to a fresh folder after fixing it.");
        }
        var encoded = value.detach().to(CheckpointLoader.TorchTypeOf(dtype)).cpu().contiguous().reshape(-1);
        long total = encoded.numel(), step = Math.Max(1, WriteChunkBytes / encoded.element_size());
        for (long start = 0; start < total; start += step)
        {
            using var slice = encoded.narrow(0, start, Math.Min(step, total - start));
            stream.Write(slice.bytes);
        }
    }

    private static void RequireSameShapes(LlamaConfig modelConfig, LlamaConfig config)
    {
        var want = modelConfig.ExpectedTensors();
        var given = config.ExpectedTensors();
        bool same = want.Count == given.Count && want.Zip(given).All(pair =>
            pair.First.Name == pair.Second.Name && pair.First.Shape.SequenceEqual(pair.Second.Shape));
        if (!same || modelConfig.Family != config.Family)
        {
            throw new ArgumentException(
                $"The config to save ({config}) does not describe the model ({modelConfig}); the written config.json " +
                "would not match the weights. Pass model.Config, or a copy of it with only non-shape fields changed.",
                nameof(config));
        }
    }

    private static void CopyAtomically(string source, string destination)
    {
        if (string.Equals(source, destination, StringComparison.Ordinal))
        {
            return;
        }
        try
        {
            AtomicFile.Write(destination, stream =>
            {
                using var input = File.OpenRead(source);
                input.CopyTo(stream);
            });
        }
        catch (Exception failure) when (failure is IOException or UnauthorizedAccessException)
        {
            throw new CheckpointException(CheckpointError.WriteFailed, destination, null,
                $"{destination}: copying {source} failed ({failure.Message}); the weights and config.json were " +
                "written, this file was not. Fix the cause and copy it by hand or save again.", failure);
        }
    }
}
