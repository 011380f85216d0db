// Writes a Hugging Face-style checkpoint folder: one model.safetensors, or numbered shards plus an index; and config.json.
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Spectrum.Checkpoints;

public static class ShardedCheckpointWriter
{
    /// <summary>
    /// The header metadata save_pretrained writes; transformers before 4.48.2 cannot load a safetensors file
    /// without it (it calls <c>metadata.get("format")</c> on None), and every version rejects other formats.
    /// </summary>
    public static IReadOnlyDictionary<string, string> HuggingFaceMetadata { get; } =
        new Dictionary<string, string>(StringComparer.Ordinal) { ["format"] = "pt" };

    /// <summary>
    /// Splits <paramref name="tensors"/> (in order) into shards of at most <paramref name="maxShardBytes"/> tensor
    /// bytes; a tensor larger than that gets a shard of its own. One shard is written as model.safetensors;
    /// more as model-0000i-of-0000K.safetensors plus model.safetensors.index.json. Every file is written atomically,
    /// config.json after the weights and the index last, so an interrupted write never leaves an index that
    /// points at missing or partial shards. Files of an earlier save with other names are left alone; write each
    /// checkpoint into a fresh folder when a crash must never mix two saves. Each file carries
    /// <see cref="HuggingFaceMetadata"/>, as Hugging Face's own saves do.
    /// </summary>
    /// <param name="configJson">config.json contents; validated as a <see cref="ModelConfig"/> before anything is written.</param>
    public static void Write(string folder, IReadOnlyList<TensorToWrite> tensors, long maxShardBytes,
        string? configJson = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxShardBytes);
        string folderPath = Path.GetFullPath(folder);
        string indexPath = Path.Combine(folderPath, ShardIndex.FileName);
        string configPath = Path.Combine(folderPath, Checkpoint.ConfigFileName);

        long[] byteLengths = SafetensorsWriter.ValidateTensors(folderPath, tensors);
        if (configJson is not null)
        {
            ModelConfig.Parse(configJson, configPath);
        }

        var shards = Partition(byteLengths, maxShardBytes);
        if (shards.Count <= 1)
        {
            SafetensorsWriter.Write(Path.Combine(folderPath, Checkpoint.SingleFileName), tensors, HuggingFaceMetadata);
            WriteConfig(configPath, configJson);
            // A stale index beside the new single file would make the folder ambiguous to every loader.
            DeleteStale(indexPath);
            return;
        }

        var weightMap = new SortedDictionary<string, string>(StringComparer.Ordinal);
        for (int shard = 0; shard < shards.Count; shard++)
        {
            string shardName = $"model-{shard + 1:D5}-of-{shards.Count:D5}.safetensors";
            var shardTensors = shards[shard].Select(i => tensors[i]).ToList();
            SafetensorsWriter.Write(Path.Combine(folderPath, shardName), shardTensors, HuggingFaceMetadata);
            foreach (var tensor in shardTensors)
            {
                weightMap.Add(tensor.Name, shardName);
            }
        }
        WriteConfig(configPath, configJson);

        var index = new JsonObject
        {
            ["metadata"] = new JsonObject { ["total_size"] = byteLengths.Sum() },
            ["weight_map"] = new JsonObject(weightMap.Select(pair =>
                KeyValuePair.Create(pair.Key, (JsonNode?)JsonValue.Create(pair.Value)))),
        };
        AtomicFile.WriteCheckpointText(indexPath, index.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        DeleteStale(Path.Combine(folderPath, Checkpoint.SingleFileName));
    }

    /// <summary>Greedy, order-preserving split; returns tensor indices per shard.</summary>
    private static List<List<int>> Partition(long[] byteLengths, long maxShardBytes)
    {
        var shards = new List<List<int>>();
        List<int>? current = null;
        long currentBytes = 0;
        for (int i = 0; i < byteLengths.Length; i++)
        {
            if (current is null || (current.Count > 0 && byteLengths[i] > maxShardBytes - currentBytes))
            {
                current = [];
                shards.Add(current);
                currentBytes = 0;
            }
            current.Add(i);
            currentBytes += byteLengths[i];
        }
        return shards;
    }

    private static void WriteConfig(string configPath, string? configJson)
    {
        if (configJson is not null)
        {
            AtomicFile.WriteCheckpointText(configPath, configJson);
        }
    }

    private static void DeleteStale(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception failure) when (failure is IOException or UnauthorizedAccessException)
        {
            throw new CheckpointException(CheckpointError.WriteFailed, path, null,
                $"{path}: the new checkpoint was written, but this stale file from an earlier save could not be " +
                $"deleted ({failure.Message}); delete it by hand, or loaders will find the folder ambiguous.", failure);
        }
    }
}
