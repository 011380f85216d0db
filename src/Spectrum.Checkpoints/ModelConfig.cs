// The parts of a Hugging Face config.json that decide tensor shapes, parsed strictly with errors naming key and file.
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Spectrum.Checkpoints;

/// <summary>RoPE scaling settings (<c>rope_scaling</c>), e.g. Llama 3's "llama3" type with its frequency factors.</summary>
public sealed record RopeScaling(
    string Type,
    double? Factor,
    double? LowFreqFactor,
    double? HighFreqFactor,
    int? OriginalMaxPositionEmbeddings,
    JsonObject Raw);

/// <summary>
/// A Llama-family config.json. Optional keys get the defaults of the Hugging Face config classes; keys that decide
/// tensor shapes are required, since guessing them would hide a wrong file. <see cref="Raw"/> keeps everything else.
/// </summary>
public sealed record ModelConfig
{
    public required string SourcePath { get; init; }
    public required string ModelType { get; init; }
    public required IReadOnlyList<string> Architectures { get; init; }
    public required int HiddenSize { get; init; }
    public required int IntermediateSize { get; init; }
    public required int NumHiddenLayers { get; init; }
    public required int NumAttentionHeads { get; init; }

    /// <summary>Key/value heads for grouped-query attention; equals <see cref="NumAttentionHeads"/> when absent.</summary>
    public required int NumKeyValueHeads { get; init; }

    /// <summary>Per-head width; hidden_size / num_attention_heads when absent.</summary>
    public required int HeadDim { get; init; }

    public required int VocabSize { get; init; }
    public bool TieWordEmbeddings { get; init; }

    /// <summary>1e-6 when absent, as in the Hugging Face Llama config.</summary>
    public double RmsNormEps { get; init; } = 1e-6;

    public double RopeTheta { get; init; } = 10000;
    public int? MaxPositionEmbeddings { get; init; }

    /// <summary>True when q/k/v projections carry biases: <c>attention_bias</c>, or always for Qwen2.</summary>
    public bool AttentionBias { get; init; }

    /// <summary><c>torch_dtype</c> (or <c>dtype</c> in newer files), e.g. "bfloat16".</summary>
    public string? TorchDtype { get; init; }

    public RopeScaling? RopeScaling { get; init; }

    /// <summary>Experts per MoE layer (<c>num_local_experts</c>); null for dense models.</summary>
    public int? NumLocalExperts { get; init; }

    public required JsonObject Raw { get; init; }

    /// <exception cref="CheckpointException"><see cref="CheckpointError.ConfigInvalid"/> or unreadable file.</exception>
    public static ModelConfig Load(string configJsonPath)
    {
        string fullPath = Path.GetFullPath(configJsonPath);
        string json;
        try
        {
            json = File.ReadAllText(fullPath);
        }
        catch (Exception failure) when (failure is IOException or UnauthorizedAccessException)
        {
            throw new CheckpointException(CheckpointError.FileNotReadable, fullPath, null,
                $"{fullPath}: cannot read config.json ({failure.Message}). Check that it exists and is readable.",
                failure);
        }
        return Parse(json, fullPath);
    }

    /// <param name="sourcePath">Where the JSON came from; used in error messages.</param>
    public static ModelConfig Parse(string json, string sourcePath)
    {
        JsonObject root = ParseObject(json, sourcePath);
        var reader = new ConfigReader(root, sourcePath);

        string modelType = reader.RequiredString("model_type");
        int hiddenSize = reader.RequiredPositiveInt("hidden_size");
        int numHeads = reader.RequiredPositiveInt("num_attention_heads");
        int numKeyValueHeads = reader.OptionalPositiveInt("num_key_value_heads") ?? numHeads;
        if (numHeads % numKeyValueHeads != 0)
        {
            throw reader.Invalid("num_key_value_heads", $"a divisor of num_attention_heads ({numHeads})",
                numKeyValueHeads.ToString());
        }
        int? explicitHeadDim = reader.OptionalPositiveInt("head_dim");
        if (explicitHeadDim is null && hiddenSize % numHeads != 0)
        {
            throw reader.Invalid("hidden_size", $"a multiple of num_attention_heads ({numHeads}) when head_dim " +
                "is absent", hiddenSize.ToString());
        }

        var ropeParameters = reader.OptionalObject("rope_parameters");
        double ropeTheta = reader.OptionalDouble("rope_theta")
            ?? (ropeParameters is null ? null : new ConfigReader(ropeParameters, sourcePath).OptionalDouble("rope_theta"))
            ?? 10000;
        var ropeScalingObject = reader.OptionalObject("rope_scaling");
        if (ropeScalingObject is null && ropeParameters is not null
            && ropeParameters["rope_type"]?.GetValueKind() == JsonValueKind.String
            && ropeParameters["rope_type"]!.GetValue<string>() != "default")
        {
            ropeScalingObject = ropeParameters;
        }

        bool isQwen2 = modelType is "qwen2" or "qwen2_moe";
        return new ModelConfig
        {
            SourcePath = sourcePath,
            ModelType = modelType,
            Architectures = reader.OptionalStringArray("architectures") ?? [],
            HiddenSize = hiddenSize,
            IntermediateSize = reader.RequiredPositiveInt("intermediate_size"),
            NumHiddenLayers = reader.RequiredPositiveInt("num_hidden_layers"),
            NumAttentionHeads = numHeads,
            NumKeyValueHeads = numKeyValueHeads,
            HeadDim = explicitHeadDim ?? hiddenSize / numHeads,
            VocabSize = reader.RequiredPositiveInt("vocab_size"),
            TieWordEmbeddings = reader.OptionalBool("tie_word_embeddings") ?? false,
            RmsNormEps = reader.OptionalDouble("rms_norm_eps") ?? 1e-6,
            RopeTheta = ropeTheta,
            MaxPositionEmbeddings = reader.OptionalPositiveInt("max_position_embeddings"),
            // Qwen2's modelling code always gives q/k/v biases and has no attention_bias key.
            AttentionBias = isQwen2 || (reader.OptionalBool("attention_bias") ?? false),
            TorchDtype = reader.OptionalString("torch_dtype") ?? reader.OptionalString("dtype"),
            RopeScaling = ropeScalingObject is null ? null : ParseRopeScaling(ropeScalingObject, sourcePath),
            NumLocalExperts = reader.OptionalPositiveInt("num_local_experts"),
            Raw = root,
        };
    }

    private static JsonObject ParseObject(string json, string sourcePath)
    {
        JsonNode? node;
        try
        {
            node = JsonNode.Parse(json, nodeOptions: null,
                new JsonDocumentOptions { AllowDuplicateProperties = false, CommentHandling = JsonCommentHandling.Disallow });
        }
        catch (JsonException syntax)
        {
            throw new CheckpointException(CheckpointError.ConfigInvalid, sourcePath, null,
                $"{sourcePath}: not valid JSON at line {syntax.LineNumber + 1}, byte {syntax.BytePositionInLine + 1} " +
                $"of that line ({syntax.Message}). Fix or re-download config.json.", syntax);
        }
        if (node is not JsonObject root)
        {
            throw new CheckpointException(CheckpointError.ConfigInvalid, sourcePath, null,
                $"{sourcePath}: expected a JSON object; found {node?.GetValueKind().ToString() ?? "null"}. Fix or " +
                "re-download config.json.");
        }
        return root;
    }

    private static RopeScaling ParseRopeScaling(JsonObject scaling, string sourcePath)
    {
        var reader = new ConfigReader(scaling, sourcePath, keyPrefix: "rope_scaling.");
        string type = reader.OptionalString("rope_type") ?? reader.OptionalString("type")
            ?? throw reader.Invalid("rope_type", "a string such as \"llama3\" or \"linear\" (or legacy \"type\")",
                "missing");
        return new RopeScaling(
            type,
            reader.OptionalDouble("factor"),
            reader.OptionalDouble("low_freq_factor"),
            reader.OptionalDouble("high_freq_factor"),
            reader.OptionalPositiveInt("original_max_position_embeddings"),
            scaling);
    }

    /// <summary>Typed access to one JSON object's keys; JSON null counts as absent for optional keys.</summary>
    private sealed class ConfigReader(JsonObject json, string sourcePath, string keyPrefix = "")
    {
        public string RequiredString(string key) =>
            OptionalString(key) ?? throw Invalid(key, "a string", "nothing (missing or null)");

        public string? OptionalString(string key) =>
            Value(key, JsonValueKind.String, "a string") is { } node ? node.GetValue<string>() : null;

        public int RequiredPositiveInt(string key) =>
            OptionalPositiveInt(key) ?? throw Invalid(key, "a positive integer", "nothing (missing or null)");

        public int? OptionalPositiveInt(string key)
        {
            if (Value(key, JsonValueKind.Number, "a positive integer") is not { } node)
            {
                return null;
            }
            if (node.AsValue().TryGetValue(out int value) && value > 0)
            {
                return value;
            }
            throw Invalid(key, "a positive integer", node.ToJsonString());
        }

        public double? OptionalDouble(string key) =>
            Value(key, JsonValueKind.Number, "a number") is { } node ? node.GetValue<double>() : null;

        public bool? OptionalBool(string key)
        {
            var node = json[key];
            if (node is null)
            {
                return null;
            }
            return node.GetValueKind() switch
            {
                JsonValueKind.True => true,
                JsonValueKind.False => false,
                _ => throw Invalid(key, "true or false", node.ToJsonString()),
            };
        }

        public JsonObject? OptionalObject(string key) => json[key] switch
        {
            null => null,
            JsonObject found => found,
            var other => throw Invalid(key, "an object or null", other.ToJsonString()),
        };

        public IReadOnlyList<string>? OptionalStringArray(string key)
        {
            var node = json[key];
            if (node is null)
            {
                return null;
            }
            if (node is JsonArray array && array.All(item => item?.GetValueKind() == JsonValueKind.String))
            {
                return array.Select(item => item!.GetValue<string>()).ToArray();
            }
            throw Invalid(key, "an array of strings", node.ToJsonString());
        }

        public CheckpointException Invalid(string key, string expected, string found) =>
            new(CheckpointError.ConfigInvalid, sourcePath, null,
                $"{sourcePath}: key \"{keyPrefix}{key}\" must be {expected}; found {found}. Fix config.json so it " +
                "matches the model's Hugging Face config.");

        private JsonNode? Value(string key, JsonValueKind kind, string expected)
        {
            var node = json[key];
            if (node is null)
            {
                return null;
            }
            if (node.GetValueKind() != kind)
            {
                throw Invalid(key, expected, node.ToJsonString());
            }
            return node;
        }
    }
}
