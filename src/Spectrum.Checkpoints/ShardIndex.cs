// Parses model.safetensors.index.json and rejects shard names that are unsafe or not safetensors before any disk access.
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Spectrum.Checkpoints;

/// <summary>A parsed sharded-checkpoint index: tensor name → shard file name, plus the declared total size.</summary>
internal sealed record ShardIndex(string IndexPath, long? TotalSize, IReadOnlyDictionary<string, string> WeightMap)
{
    public const string FileName = "model.safetensors.index.json";

    public static ShardIndex Load(string indexPath)
    {
        string json;
        try
        {
            json = File.ReadAllText(indexPath);
        }
        catch (Exception failure) when (failure is IOException or UnauthorizedAccessException)
        {
            throw new CheckpointException(CheckpointError.FileNotReadable, indexPath, null,
                $"{indexPath}: cannot read the shard index ({failure.Message}). Check that it exists and is readable.",
                failure);
        }

        JsonNode? root;
        try
        {
            root = JsonNode.Parse(json, nodeOptions: null, new JsonDocumentOptions { AllowDuplicateProperties = false });
        }
        catch (JsonException syntax)
        {
            throw Schema(indexPath, $"not valid JSON at line {syntax.LineNumber + 1}, byte " +
                $"{syntax.BytePositionInLine + 1} of that line ({syntax.Message})", syntax);
        }
        if (root is not JsonObject rootObject)
        {
            throw Schema(indexPath, "expected a JSON object with \"weight_map\"");
        }
        if (rootObject["weight_map"] is not JsonObject weightMapObject)
        {
            throw Schema(indexPath, "expected \"weight_map\" to be an object mapping tensor names to shard files; " +
                $"found {rootObject["weight_map"]?.ToJsonString() ?? "nothing"}");
        }

        var weightMap = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (tensorName, shardNode) in weightMapObject)
        {
            if (shardNode?.GetValueKind() != JsonValueKind.String)
            {
                throw Schema(indexPath, $"\"weight_map\" entry for tensor '{tensorName}' must be a shard file name; " +
                    $"found {shardNode?.ToJsonString() ?? "null"}", tensorName: tensorName);
            }
            string shardName = shardNode.GetValue<string>();
            RequireSafeShardName(indexPath, tensorName, shardName);
            weightMap.Add(tensorName, shardName);
        }
        return new ShardIndex(indexPath, ReadTotalSize(indexPath, rootObject), weightMap);
    }

    private static long? ReadTotalSize(string indexPath, JsonObject root)
    {
        var metadata = root["metadata"];
        if (metadata is null)
        {
            return null;
        }
        if (metadata is not JsonObject metadataObject)
        {
            throw Schema(indexPath, $"expected \"metadata\" to be an object; found {metadata.ToJsonString()}");
        }
        var totalSize = metadataObject["total_size"];
        if (totalSize is null)
        {
            return null;
        }
        if (totalSize.GetValueKind() == JsonValueKind.Number)
        {
            var value = totalSize.AsValue();
            if (value.TryGetValue(out long whole) && whole >= 0)
            {
                return whole;
            }
            // Some exporters write the integer as a float (e.g. 1.6e10); accept it only when it is exactly whole.
            if (value.TryGetValue(out double real) && real >= 0 && real < 9.2e18 && real == Math.Floor(real))
            {
                return (long)real;
            }
        }
        throw Schema(indexPath, "expected \"metadata.total_size\" to be a non-negative integer (bytes of all " +
            $"tensors); found {totalSize.ToJsonString()}");
    }

    /// <summary>
    /// A shard name must be a plain file name inside the checkpoint folder: anything that could resolve elsewhere
    /// (.., separators, rooted or drive-qualified paths) would let a downloaded index read arbitrary files.
    /// </summary>
    private static void RequireSafeShardName(string indexPath, string tensorName, string shardName)
    {
        string? unsafeReason =
            shardName.Length == 0 ? "is empty"
            : shardName.Contains("..", StringComparison.Ordinal) ? "contains '..'"
            : shardName.IndexOfAny(['/', '\\']) >= 0 ? "contains a directory separator"
            : shardName.Contains(':') ? "contains ':' (a drive letter or stream name)"
            : Path.IsPathRooted(shardName) ? "is an absolute path"
            : shardName.Any(char.IsControl) ? "contains control characters"
            : null;
        if (unsafeReason is not null)
        {
            throw new CheckpointException(CheckpointError.UnsafeShardPath, indexPath, tensorName,
                $"{indexPath}: tensor '{tensorName}' is mapped to shard \"{shardName}\", which {unsafeReason}; " +
                "expected a plain file name in the checkpoint folder such as model-00001-of-00002.safetensors. " +
                "Refusing to follow it: the index may be malicious or hand-edited.");
        }
        if (!shardName.EndsWith(".safetensors", StringComparison.Ordinal))
        {
            string hint = shardName.EndsWith(".bin", StringComparison.OrdinalIgnoreCase)
                || shardName.EndsWith(".pt", StringComparison.OrdinalIgnoreCase)
                || shardName.EndsWith(".pth", StringComparison.OrdinalIgnoreCase)
                ? " It looks like a PyTorch pickle, which can run code when loaded; convert the checkpoint to " +
                  "safetensors (e.g. with the Hugging Face convert script) and use that."
                : "";
            throw new CheckpointException(CheckpointError.NotSafetensorsShard, indexPath, tensorName,
                $"{indexPath}: tensor '{tensorName}' is mapped to shard \"{shardName}\"; expected a .safetensors " +
                "file in a safetensors index." + hint);
        }
    }

    private static CheckpointException Schema(string indexPath, string problem, Exception? inner = null,
        string? tensorName = null) =>
        new(CheckpointError.IndexSchema, indexPath, tensorName,
            $"{indexPath}: {problem}. Expected {{\"metadata\": {{\"total_size\": <bytes>}}, \"weight_map\": " +
            "{<tensor>: <shard file>}}; re-download or regenerate the index.", inner);
}
