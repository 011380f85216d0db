// A Hugging Face model checkpoint (single or sharded safetensors, plus config.json), fully cross-checked on open.
namespace Spectrum.Checkpoints;

/// <summary>
/// An open checkpoint. <see cref="Open"/> validates every shard header, the index against the shards in both
/// directions, and config.json before returning, so no weight is ever read from an inconsistent checkpoint.
/// </summary>
public sealed class Checkpoint : IDisposable
{
    public const string SingleFileName = "model.safetensors";
    public const string ConfigFileName = "config.json";

    private readonly IReadOnlyList<SafetensorsFile> _shards;
    private readonly Dictionary<string, (SafetensorsFile Shard, TensorEntry Entry)> _byName;

    private Checkpoint(string rootPath, string? indexPath, IReadOnlyList<SafetensorsFile> shards, ModelConfig? config)
    {
        RootPath = rootPath;
        IndexPath = indexPath;
        _shards = shards;
        Config = config;
        Tensors = shards.SelectMany(shard => shard.Tensors).ToList();
        ShardPaths = shards.Select(shard => shard.FilePath).ToList();
        TotalTensorBytes = Tensors.Sum(tensor => tensor.ByteLength);
        _byName = shards
            .SelectMany(shard => shard.Tensors.Select(entry => (shard, entry)))
            .ToDictionary(pair => pair.entry.Name, pair => (pair.shard, pair.entry), StringComparer.Ordinal);
    }

    /// <summary>The folder holding the weights (and config.json when present).</summary>
    public string RootPath { get; }

    /// <summary>The shard index for sharded checkpoints; null for a single file.</summary>
    public string? IndexPath { get; }

    /// <summary>config.json from <see cref="RootPath"/>, or null when there is none.</summary>
    public ModelConfig? Config { get; }

    /// <summary>All tensors, ordered by shard (file name order) then data offset.</summary>
    public IReadOnlyList<TensorEntry> Tensors { get; }

    public IReadOnlyList<string> ShardPaths { get; }

    public long TotalTensorBytes { get; }

    /// <summary>
    /// Opens a folder holding model.safetensors or model.safetensors.index.json, a .safetensors file, or an index
    /// file. Other folders (e.g. one holding only adapter_model.safetensors) are not model checkpoints.
    /// </summary>
    /// <exception cref="CheckpointException">Anything missing, unsafe or inconsistent.</exception>
    public static Checkpoint Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string fullPath = Path.GetFullPath(path);
        if (Directory.Exists(fullPath))
        {
            string indexPath = Path.Combine(fullPath, ShardIndex.FileName);
            string singlePath = Path.Combine(fullPath, SingleFileName);
            bool hasIndex = File.Exists(indexPath);
            bool hasSingle = File.Exists(singlePath);
            if (hasIndex && hasSingle)
            {
                throw new CheckpointException(CheckpointError.AmbiguousCheckpoint, fullPath, null,
                    $"{fullPath}: holds both {SingleFileName} and {ShardIndex.FileName}, so it is unclear which " +
                    "weights are meant (often a leftover from an earlier save). Delete the stale one, or open the " +
                    "intended file directly.");
            }
            if (hasIndex)
            {
                return OpenSharded(fullPath, indexPath);
            }
            if (hasSingle)
            {
                return OpenSingle(fullPath, singlePath);
            }
            throw NotACheckpoint(fullPath, DescribeFolder(fullPath));
        }
        if (File.Exists(fullPath))
        {
            string folder = Path.GetDirectoryName(fullPath)!;
            if (fullPath.EndsWith(".safetensors.index.json", StringComparison.Ordinal))
            {
                return OpenSharded(folder, fullPath);
            }
            if (fullPath.EndsWith(".safetensors", StringComparison.Ordinal))
            {
                return OpenSingle(folder, fullPath);
            }
            throw NotACheckpoint(fullPath, "it is a file that is neither a .safetensors file nor a " +
                ".safetensors.index.json index");
        }
        throw NotACheckpoint(fullPath, "no such file or folder exists");
    }

    public TensorEntry GetEntry(string name) => Locate(name).Entry;

    public bool TryGetEntry(string name, [System.Diagnostics.CodeAnalysis.MaybeNullWhen(false)] out TensorEntry entry)
    {
        bool found = _byName.TryGetValue(name, out var location);
        entry = location.Entry;
        return found;
    }

    /// <summary>Maps just this tensor's bytes; dispose the result to unmap them.</summary>
    public TensorBytes ReadBytes(string name) => Locate(name).Shard.ReadBytes(name);

    public void DecodeToFloat32(string name, Span<float> destination) =>
        Locate(name).Shard.DecodeToFloat32(name, destination);

    public void DecodeToFloat32(string name, long firstElement, Span<float> destination) =>
        Locate(name).Shard.DecodeToFloat32(name, firstElement, destination);

    public float[] ReadFloat32(string name) => Locate(name).Shard.ReadFloat32(name);

    /// <summary>Every disagreement between <see cref="Config"/> and the tensor shapes (empty when consistent).</summary>
    public IReadOnlyList<ConfigMismatch> FindConfigMismatches() => LlamaTensorShapes.FindMismatches(RequireConfig(), Tensors);

    /// <summary>Throws on the first tensor whose shape contradicts config.json, or that config.json implies but is missing.</summary>
    /// <exception cref="CheckpointException">
    /// <see cref="CheckpointError.ConfigShapeMismatch"/>, or <see cref="CheckpointError.ConfigMissing"/>.
    /// </exception>
    public void ValidateAgainstConfig()
    {
        var config = RequireConfig();
        var mismatches = LlamaTensorShapes.FindMismatches(config, Tensors);
        if (mismatches.Count == 0)
        {
            return;
        }
        var first = mismatches[0];
        string where = _byName.TryGetValue(first.TensorName, out var location) ? location.Shard.FilePath : RootPath;
        string others = mismatches.Count == 1 ? "" : $" ({mismatches.Count - 1} more mismatches follow)";
        throw new CheckpointException(CheckpointError.ConfigShapeMismatch, where, first.TensorName,
            $"{where}: tensor '{first.TensorName}' {first.Explanation}{others}. config.json ({config.SourcePath}) " +
            "and the weights describe different models; use the config.json that came with these weights.");
    }

    public void Dispose()
    {
        foreach (var shard in _shards)
        {
            shard.Dispose();
        }
    }

    private (SafetensorsFile Shard, TensorEntry Entry) Locate(string name)
    {
        if (_byName.TryGetValue(name, out var location))
        {
            return location;
        }
        throw SafetensorsFile.TensorNotFound(IndexPath ?? ShardPaths[0], name, Tensors.Select(tensor => tensor.Name));
    }

    private ModelConfig RequireConfig() =>
        Config ?? throw new CheckpointException(CheckpointError.ConfigMissing, RootPath, null,
            $"{RootPath}: no {ConfigFileName} beside the weights, so tensor shapes cannot be checked; copy the " +
            "model's config.json into this folder.");

    private static Checkpoint OpenSingle(string folder, string filePath)
    {
        var file = SafetensorsFile.Open(filePath);
        try
        {
            return new Checkpoint(folder, indexPath: null, [file], LoadConfigBeside(folder));
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    private static Checkpoint OpenSharded(string folder, string indexPath)
    {
        var index = ShardIndex.Load(indexPath);
        var shardNames = index.WeightMap.Values.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        var missing = shardNames.Where(name => !File.Exists(Path.Combine(folder, name))).ToList();
        if (missing.Count > 0)
        {
            string firstMissing = Path.Combine(folder, missing[0]);
            throw new CheckpointException(CheckpointError.MissingShard, firstMissing, null,
                $"{firstMissing}: this shard, named in {indexPath}, does not exist ({missing.Count} of " +
                $"{shardNames.Count} shards are missing: {string.Join(", ", missing)}). Loading without them would " +
                "leave weights uninitialised; finish the download (or copy the missing shards) and try again.");
        }

        var shards = new List<SafetensorsFile>();
        try
        {
            foreach (string name in shardNames)
            {
                shards.Add(SafetensorsFile.Open(Path.Combine(folder, name)));
            }
            CrossCheck(index, shards);
            return new Checkpoint(folder, indexPath, shards, LoadConfigBeside(folder));
        }
        catch
        {
            foreach (var shard in shards)
            {
                shard.Dispose();
            }
            throw;
        }
    }

    /// <summary>The index and the shard headers must describe the same tensors, each in exactly one shard.</summary>
    private static void CrossCheck(ShardIndex index, List<SafetensorsFile> shards)
    {
        var holders = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
        foreach (var shard in shards)
        {
            foreach (var tensor in shard.Tensors)
            {
                if (!holders.TryAdd(tensor.Name, shard))
                {
                    throw new CheckpointException(CheckpointError.TensorInTwoShards, shard.FilePath, tensor.Name,
                        $"{shard.FilePath}: tensor '{tensor.Name}' is also stored in {holders[tensor.Name].FilePath}; " +
                        "expected each tensor in exactly one shard, otherwise which copy loads depends on the " +
                        "loader. Re-export the checkpoint.");
                }
            }
        }

        foreach (var (tensorName, shardName) in index.WeightMap)
        {
            if (!holders.TryGetValue(tensorName, out var holder))
            {
                throw new CheckpointException(CheckpointError.TensorInNoShard, index.IndexPath, tensorName,
                    $"{index.IndexPath}: maps tensor '{tensorName}' to {shardName}, but no shard holds it; the " +
                    "index and shards come from different exports or a shard is stale. Re-download the checkpoint.");
            }
            if (Path.GetFileName(holder.FilePath) != shardName)
            {
                throw new CheckpointException(CheckpointError.IndexShardMismatch, holder.FilePath, tensorName,
                    $"{index.IndexPath}: maps tensor '{tensorName}' to {shardName}, but it is stored in " +
                    $"{holder.FilePath}; the index and shards disagree. Re-download the checkpoint.");
            }
        }

        foreach (var shard in shards)
        {
            foreach (var tensor in shard.Tensors)
            {
                if (!index.WeightMap.ContainsKey(tensor.Name))
                {
                    throw new CheckpointException(CheckpointError.IndexShardMismatch, shard.FilePath, tensor.Name,
                        $"{shard.FilePath}: holds tensor '{tensor.Name}', which {index.IndexPath} does not list; " +
                        "the index and shards disagree. Re-download the checkpoint.");
                }
            }
        }

        long actualBytes = shards.Sum(shard => shard.Tensors.Sum(tensor => tensor.ByteLength));
        if (index.TotalSize is long declared && declared != actualBytes)
        {
            throw new CheckpointException(CheckpointError.TotalSizeMismatch, index.IndexPath, null,
                $"{index.IndexPath}: metadata.total_size is {declared} bytes, but the shards' tensors add up to " +
                $"{actualBytes} bytes; expected them equal (total_size is the sum of tensor byte lengths). A " +
                "shard may be from another export; re-download the checkpoint.");
        }
    }

    private static ModelConfig? LoadConfigBeside(string folder)
    {
        string configPath = Path.Combine(folder, ConfigFileName);
        return File.Exists(configPath) ? ModelConfig.Load(configPath) : null;
    }

    private static string DescribeFolder(string folder)
    {
        var found = Directory.EnumerateFiles(folder)
            .Select(path => Path.GetFileName(path))
            .Where(name => name.EndsWith(".safetensors", StringComparison.Ordinal)
                || name.EndsWith(".index.json", StringComparison.Ordinal)
                || name.EndsWith(".bin", StringComparison.Ordinal))
            .Order(StringComparer.Ordinal)
            .Take(10)
            .ToList();
        if (found.Count == 0)
        {
            return "it holds no .safetensors files";
        }
        string advice = found.Any(name => name.EndsWith(".bin", StringComparison.Ordinal))
            ? "PyTorch .bin files are pickles, which this reader refuses; convert them to safetensors"
            : "an adapter_model.safetensors is a LoRA adapter, not a model; open a file directly if it really is " +
              "what you want";
        return $"it holds {string.Join(", ", found)} ({advice})";
    }

    private static CheckpointException NotACheckpoint(string path, string finding) =>
        new(CheckpointError.NotACheckpoint, path, null,
            $"{path}: not a model checkpoint. Looked for a folder with {SingleFileName} or {ShardIndex.FileName}, " +
            $"a .safetensors file, or a .safetensors.index.json file; {finding}.");
}
