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
        JsonObject root = JsonConfigReader.ParseObject(json, sourcePath);
        var reader = new JsonConfigReader(root, sourcePath);

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
            ?? (ropeParameters is null ? null : new JsonConfigReader(ropeParameters, sourcePath).OptionalDouble("rope_theta"))
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

    private static RopeScaling ParseRopeScaling(JsonObject scaling, string sourcePath)
    {
        var reader = new JsonConfigReader(scaling, sourcePath, keyPrefix: "rope_scaling.");
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
}
