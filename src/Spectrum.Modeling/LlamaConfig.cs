// The dimensions and options of a Llama-family decoder (Llama 2/3, Mistral, Qwen2, SmolLM, TinyLlama) and their named presets; not the weights.
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Spectrum.Checkpoints;

namespace Spectrum.Modeling;

/// <summary>Which Hugging Face model class a config describes; decides config.json spelling and bias layout.</summary>
public enum LlamaFamily
{
    /// <summary>model_type "llama": Llama 2/3, SmolLM, TinyLlama. attention_bias puts biases on q/k/v and o.</summary>
    Llama,
    /// <summary>model_type "mistral": no biases; sliding-window attention (see <see cref="LlamaConfig.SlidingWindow"/>).</summary>
    Mistral,
    /// <summary>model_type "qwen2": biases on q/k/v (never on o_proj).</summary>
    Qwen2,
}

public enum RopeScalingKind
{
    /// <summary>rope_type "linear": every inverse frequency divided by the factor.</summary>
    Linear,
    /// <summary>rope_type "llama3": Llama 3.1's wavelength-dependent scaling with a smooth middle band.</summary>
    Llama3,
}

/// <summary><c>rope_scaling</c> settings; the Llama 3 fields are only meaningful for <see cref="RopeScalingKind.Llama3"/>.</summary>
public sealed record LlamaRopeScaling(
    RopeScalingKind Kind,
    double Factor,
    double LowFreqFactor = 1,
    double HighFreqFactor = 4,
    int OriginalMaxPositionEmbeddings = 8192)
{
    public static LlamaRopeScaling Llama3(double factor, double lowFreqFactor, double highFreqFactor,
        int originalMaxPositionEmbeddings) =>
        new(RopeScalingKind.Llama3, factor, lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings);

    public static LlamaRopeScaling Linear(double factor) => new(RopeScalingKind.Linear, factor);
}

/// <summary>
/// Everything that decides a Llama-family model's shapes and arithmetic. Build it from a checkpoint's config.json with
/// <see cref="From"/>, from a named preset, or directly (every dimension is a parameter).
/// </summary>
/// <param name="HeadDim">Per-head width; usually HiddenSize / NumAttentionHeads, but config.json may set it.</param>
/// <param name="AttentionBias">Biases on q_proj, k_proj and v_proj.</param>
/// <param name="SlidingWindow">
/// Mistral/Qwen2 sliding-window length, or null. Only sequences no longer than the window are accepted: for them
/// sliding-window attention equals the full causal attention implemented here.
/// </param>
/// <param name="PassThroughConfigJson">
/// config.json keys this model does not interpret (token ids, generation settings...), as a compact JSON object, kept
/// so that an export writes them back; null when there are none.
/// </param>
public sealed record LlamaConfig(
    LlamaFamily Family,
    int HiddenSize,
    int IntermediateSize,
    int NumHiddenLayers,
    int NumAttentionHeads,
    int NumKeyValueHeads,
    int HeadDim,
    int VocabSize,
    bool TieWordEmbeddings,
    double RmsNormEps,
    double RopeTheta,
    LlamaRopeScaling? RopeScaling = null,
    bool AttentionBias = false,
    int MaxPositionEmbeddings = 2048,
    int? SlidingWindow = null,
    double InitializerRange = 0.02,
    string? PassThroughConfigJson = null)
{
    /// <summary>The model_type values <see cref="From"/> accepts.</summary>
    public static IReadOnlyList<string> SupportedModelTypes { get; } = ["llama", "mistral", "qwen2"];

    /// <summary>A bias on o_proj: Llama's attention_bias biases all four projections, Qwen2's q/k/v only.</summary>
    public bool OutputProjectionBias => Family == LlamaFamily.Llama && AttentionBias;

    /// <summary>Query heads per key/value head (grouped-query attention).</summary>
    public int QueryGroupSize => NumAttentionHeads / NumKeyValueHeads;

    public string ModelType => Family switch
    {
        LlamaFamily.Mistral => "mistral",
        LlamaFamily.Qwen2 => "qwen2",
        _ => "llama",
    };

    public string Architecture => Family switch
    {
        LlamaFamily.Mistral => "MistralForCausalLM",
        LlamaFamily.Qwen2 => "Qwen2ForCausalLM",
        _ => "LlamaForCausalLM",
    };

    // ------------------------------------------------------------------------------------------------ presets

    /// <summary>A tiny model for tests: defaults are Llama with GQA (4 query heads over 2 key/value heads).</summary>
    public static LlamaConfig Tiny(
        LlamaFamily family = LlamaFamily.Llama,
        int hiddenSize = 64,
        int intermediateSize = 160,
        int numHiddenLayers = 2,
        int numAttentionHeads = 4,
        int numKeyValueHeads = 2,
        int vocabSize = 100,
        bool tieWordEmbeddings = false,
        bool attentionBias = false,
        LlamaRopeScaling? ropeScaling = null) =>
        new(family, hiddenSize, intermediateSize, numHiddenLayers, numAttentionHeads, numKeyValueHeads,
            hiddenSize / numAttentionHeads, vocabSize, tieWordEmbeddings, RmsNormEps: 1e-5,
            RopeTheta: family == LlamaFamily.Qwen2 ? 1_000_000 : 10_000, ropeScaling,
            AttentionBias: attentionBias || family == LlamaFamily.Qwen2);

    /// <summary>HuggingFaceTB/SmolLM-135M: the product's full fine-tuning target shape.</summary>
    public static LlamaConfig SmolLM135M { get; } = new(LlamaFamily.Llama, 576, 1536, 30, 9, 3, 64, 49152,
        TieWordEmbeddings: true, RmsNormEps: 1e-5, RopeTheta: 10_000, MaxPositionEmbeddings: 2048);

    /// <summary>TinyLlama/TinyLlama-1.1B (untied head, 4 key/value heads).</summary>
    public static LlamaConfig TinyLlama1B { get; } = new(LlamaFamily.Llama, 2048, 5632, 22, 32, 4, 64, 32000,
        TieWordEmbeddings: false, RmsNormEps: 1e-5, RopeTheta: 10_000, MaxPositionEmbeddings: 2048);

    /// <summary>meta-llama/Llama-3.1-8B, with its "llama3" RoPE scaling.</summary>
    public static LlamaConfig Llama31_8B { get; } = new(LlamaFamily.Llama, 4096, 14336, 32, 32, 8, 128, 128256,
        TieWordEmbeddings: false, RmsNormEps: 1e-5, RopeTheta: 500_000,
        RopeScaling: LlamaRopeScaling.Llama3(8, 1, 4, 8192), MaxPositionEmbeddings: 131072);

    /// <summary>mistralai/Mistral-7B-v0.1 (sliding window 4096).</summary>
    public static LlamaConfig Mistral7B { get; } = new(LlamaFamily.Mistral, 4096, 14336, 32, 32, 8, 128, 32000,
        TieWordEmbeddings: false, RmsNormEps: 1e-5, RopeTheta: 10_000, MaxPositionEmbeddings: 32768,
        SlidingWindow: 4096);

    /// <summary>Qwen/Qwen2-0.5B (q/k/v biases, tied embeddings).</summary>
    public static LlamaConfig Qwen2_0_5B { get; } = new(LlamaFamily.Qwen2, 896, 4864, 24, 14, 2, 64, 151936,
        TieWordEmbeddings: true, RmsNormEps: 1e-6, RopeTheta: 1_000_000, AttentionBias: true,
        MaxPositionEmbeddings: 131072);

    /// <summary>Named presets for listings, benchmarks and CLI choices.</summary>
    public static IReadOnlyDictionary<string, LlamaConfig> Presets { get; } = new Dictionary<string, LlamaConfig>
    {
        ["SmolLM-135M"] = SmolLM135M,
        ["TinyLlama-1.1B"] = TinyLlama1B,
        ["Llama-3.1-8B"] = Llama31_8B,
        ["Mistral-7B-v0.1"] = Mistral7B,
        ["Qwen2-0.5B"] = Qwen2_0_5B,
    };

    // ------------------------------------------------------------------------------------------------ validation

    /// <summary>Throws when the dimensions cannot describe a working model; called by every model constructor.</summary>
    /// <exception cref="ArgumentException">Names the field, the value and what is required.</exception>
    public void Validate()
    {
        void Positive(string name, double value)
        {
            if (!(value > 0))
            {
                throw new ArgumentException($"LlamaConfig.{name} must be positive; found {value}.");
            }
        }
        Positive(nameof(HiddenSize), HiddenSize);
        Positive(nameof(IntermediateSize), IntermediateSize);
        Positive(nameof(NumHiddenLayers), NumHiddenLayers);
        Positive(nameof(NumAttentionHeads), NumAttentionHeads);
        Positive(nameof(NumKeyValueHeads), NumKeyValueHeads);
        Positive(nameof(HeadDim), HeadDim);
        Positive(nameof(VocabSize), VocabSize);
        Positive(nameof(RmsNormEps), RmsNormEps);
        Positive(nameof(RopeTheta), RopeTheta);
        Positive(nameof(MaxPositionEmbeddings), MaxPositionEmbeddings);
        if (NumAttentionHeads % NumKeyValueHeads != 0)
        {
            throw new ArgumentException(
                $"LlamaConfig.NumAttentionHeads ({NumAttentionHeads}) must be a multiple of NumKeyValueHeads " +
                $"({NumKeyValueHeads}) for grouped-query attention.");
        }
        if (HeadDim % 2 != 0)
        {
            throw new ArgumentException(
                $"LlamaConfig.HeadDim must be even, since rotary embeddings rotate dimension pairs; found {HeadDim}.");
        }
        if (Family == LlamaFamily.Mistral && AttentionBias)
        {
            throw new ArgumentException(
                "LlamaConfig.AttentionBias: Mistral has no attention biases; set it to false or use LlamaFamily.Llama.");
        }
        if (Family == LlamaFamily.Qwen2 && !AttentionBias)
        {
            throw new ArgumentException(
                "LlamaConfig.AttentionBias: Qwen2 always has q/k/v biases; set it to true or use LlamaFamily.Llama.");
        }
        if (SlidingWindow is <= 0)
        {
            throw new ArgumentException($"LlamaConfig.SlidingWindow must be positive or null; found {SlidingWindow}.");
        }
        if (RopeScaling is { } scaling)
        {
            Positive("RopeScaling.Factor", scaling.Factor);
            if (scaling.Kind == RopeScalingKind.Llama3)
            {
                Positive("RopeScaling.LowFreqFactor", scaling.LowFreqFactor);
                Positive("RopeScaling.OriginalMaxPositionEmbeddings", scaling.OriginalMaxPositionEmbeddings);
                if (!(scaling.HighFreqFactor > scaling.LowFreqFactor))
                {
                    throw new ArgumentException(
                        $"LlamaConfig.RopeScaling: high_freq_factor ({scaling.HighFreqFactor}) must exceed " +
                        $"low_freq_factor ({scaling.LowFreqFactor}); the smooth band between them would be empty.");
                }
            }
        }
        if (PassThroughConfigJson is not null && JsonNode.Parse(PassThroughConfigJson) is not JsonObject)
        {
            throw new ArgumentException("LlamaConfig.PassThroughConfigJson must be a JSON object or null.");
        }
    }

    // ------------------------------------------------------------------------------------------------ tensors

    /// <summary>
    /// Every weight of the model in Hugging Face naming and order, with its shape: exactly what a checkpoint of this
    /// config holds (no lm_head.weight when embeddings are tied) and what <c>named_parameters()</c> lists.
    /// </summary>
    public IReadOnlyList<(string Name, long[] Shape)> ExpectedTensors()
    {
        long hidden = HiddenSize, queryWidth = (long)NumAttentionHeads * HeadDim, keyValueWidth = (long)NumKeyValueHeads * HeadDim;
        var tensors = new List<(string, long[])> { ("model.embed_tokens.weight", [VocabSize, hidden]) };
        for (int layer = 0; layer < NumHiddenLayers; layer++)
        {
            string attention = $"model.layers.{layer}.self_attn.";
            tensors.Add((attention + "q_proj.weight", [queryWidth, hidden]));
            if (AttentionBias) tensors.Add((attention + "q_proj.bias", [queryWidth]));
            tensors.Add((attention + "k_proj.weight", [keyValueWidth, hidden]));
            if (AttentionBias) tensors.Add((attention + "k_proj.bias", [keyValueWidth]));
            tensors.Add((attention + "v_proj.weight", [keyValueWidth, hidden]));
            if (AttentionBias) tensors.Add((attention + "v_proj.bias", [keyValueWidth]));
            tensors.Add((attention + "o_proj.weight", [hidden, queryWidth]));
            if (OutputProjectionBias) tensors.Add((attention + "o_proj.bias", [hidden]));
            string mlp = $"model.layers.{layer}.mlp.";
            tensors.Add((mlp + "gate_proj.weight", [IntermediateSize, hidden]));
            tensors.Add((mlp + "up_proj.weight", [IntermediateSize, hidden]));
            tensors.Add((mlp + "down_proj.weight", [hidden, IntermediateSize]));
            tensors.Add(($"model.layers.{layer}.input_layernorm.weight", [hidden]));
            tensors.Add(($"model.layers.{layer}.post_attention_layernorm.weight", [hidden]));
        }
        tensors.Add(("model.norm.weight", [hidden]));
        if (!TieWordEmbeddings)
        {
            tensors.Add(("lm_head.weight", [VocabSize, hidden]));
        }
        return tensors;
    }

    public long ParameterCount => ExpectedTensors().Sum(tensor => tensor.Shape.Aggregate(1L, (a, b) => a * b));

    // ------------------------------------------------------------------------------------------------ config.json

    /// <summary>Keys <see cref="From"/> interprets and <see cref="ToConfigJson"/> writes; all others pass through.</summary>
    internal static IReadOnlySet<string> InterpretedKeys { get; } = new HashSet<string>(StringComparer.Ordinal)
    {
        "architectures", "model_type", "hidden_size", "intermediate_size", "num_hidden_layers",
        "num_attention_heads", "num_key_value_heads", "head_dim", "vocab_size", "tie_word_embeddings",
        "rms_norm_eps", "rope_theta", "rope_scaling", "rope_parameters", "attention_bias", "mlp_bias",
        "max_position_embeddings", "sliding_window", "use_sliding_window", "hidden_act", "initializer_range",
        "torch_dtype", "dtype", "partial_rotary_factor", "attention_dropout",
    };

    /// <summary>
    /// Reads a Llama, Mistral or Qwen2 config.json (SmolLM and TinyLlama are model_type llama). Options this
    /// implementation would silently compute differently (other activations, MLP biases, other RoPE scalings,
    /// partial rotary) are rejected with the key, the value and the supported alternatives.
    /// </summary>
    /// <exception cref="NotSupportedException">An unsupported model type or option.</exception>
    public static LlamaConfig From(ModelConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        string where = config.SourcePath;
        var family = config.ModelType switch
        {
            "llama" => LlamaFamily.Llama,
            "mistral" => LlamaFamily.Mistral,
            "qwen2" => LlamaFamily.Qwen2,
            _ => throw new NotSupportedException(
                $"{where}: model_type \"{config.ModelType}\" is not supported; expected one of " +
                $"{string.Join(", ", SupportedModelTypes.Select(type => $"\"{type}\""))} (SmolLM and TinyLlama are " +
                "\"llama\"). Models with other layouts (e.g. qwen3's q/k norms, mixtral's experts) need their own " +
                "module code."),
        };
        var raw = config.Raw;

        string? activation = OptionalString(raw, "hidden_act", where);
        if (activation is not null and not "silu")
        {
            throw new NotSupportedException(
                $"{where}: hidden_act \"{activation}\" is not supported; these models use \"silu\" (SwiGLU MLP).");
        }
        if (raw["mlp_bias"] is { } mlpBias && mlpBias.GetValueKind() == JsonValueKind.True)
        {
            throw new NotSupportedException(
                $"{where}: mlp_bias = true is not supported; expected false (gate/up/down projections without bias).");
        }
        if (raw["partial_rotary_factor"] is { } partial && partial.GetValueKind() == JsonValueKind.Number
            && partial.GetValue<double>() != 1.0)
        {
            throw new NotSupportedException(
                $"{where}: partial_rotary_factor {partial.ToJsonString()} is not supported; expected 1 (RoPE on the " +
                "whole head).");
        }
        if (raw["attention_dropout"] is { } dropout && dropout.GetValueKind() == JsonValueKind.Number
            && dropout.GetValue<double>() != 0.0)
        {
            throw new NotSupportedException(
                $"{where}: attention_dropout {dropout.ToJsonString()} is not supported; this implementation applies no " +
                "dropout, so training would differ silently. Set it to 0.0 in config.json if that is acceptable.");
        }
        if (family == LlamaFamily.Mistral && config.AttentionBias)
        {
            throw new NotSupportedException(
                $"{where}: attention_bias = true for model_type \"mistral\"; Mistral's modelling code has no " +
                "attention biases. Use model_type \"llama\" if the weights really carry them.");
        }

        int? slidingWindow = family switch
        {
            LlamaFamily.Mistral => OptionalInt(raw, "sliding_window", where),
            LlamaFamily.Qwen2 when raw["use_sliding_window"]?.GetValueKind() == JsonValueKind.True =>
                OptionalInt(raw, "sliding_window", where),
            _ => null,
        };

        var result = new LlamaConfig(
            family,
            config.HiddenSize,
            config.IntermediateSize,
            config.NumHiddenLayers,
            config.NumAttentionHeads,
            config.NumKeyValueHeads,
            config.HeadDim,
            config.VocabSize,
            config.TieWordEmbeddings,
            config.RmsNormEps,
            config.RopeTheta,
            ReadRopeScaling(config.RopeScaling, where),
            AttentionBias: config.AttentionBias,
            MaxPositionEmbeddings: config.MaxPositionEmbeddings ?? 2048,
            SlidingWindow: slidingWindow,
            InitializerRange: raw["initializer_range"]?.GetValueKind() == JsonValueKind.Number
                ? raw["initializer_range"]!.GetValue<double>()
                : 0.02,
            PassThroughConfigJson: PassThrough(raw));
        try
        {
            result.Validate();
        }
        catch (ArgumentException invalid)
        {
            throw new NotSupportedException($"{where}: {invalid.Message}", invalid);
        }
        return result;
    }

    /// <summary>
    /// A Hugging Face config.json for this model (model_type, architectures, every dimension, RoPE settings,
    /// tie_word_embeddings, torch_dtype) followed by the pass-through keys.
    /// </summary>
    /// <param name="torchDtype">"bfloat16", "float16" or "float32": the dtype of the weights written beside it.</param>
    public string ToConfigJson(string torchDtype)
    {
        var json = new JsonObject
        {
            ["architectures"] = new JsonArray(Architecture),
            ["model_type"] = ModelType,
            ["hidden_size"] = HiddenSize,
            ["intermediate_size"] = IntermediateSize,
            ["num_hidden_layers"] = NumHiddenLayers,
            ["num_attention_heads"] = NumAttentionHeads,
            ["num_key_value_heads"] = NumKeyValueHeads,
            ["head_dim"] = HeadDim,
            ["vocab_size"] = VocabSize,
            ["hidden_act"] = "silu",
            ["max_position_embeddings"] = MaxPositionEmbeddings,
            ["rms_norm_eps"] = FloatNode(RmsNormEps),
            ["rope_theta"] = FloatNode(RopeTheta),
            ["rope_scaling"] = RopeScalingJson(),
            ["initializer_range"] = FloatNode(InitializerRange),
            ["attention_dropout"] = FloatNode(0),
            ["tie_word_embeddings"] = TieWordEmbeddings,
            ["torch_dtype"] = torchDtype,
        };
        switch (Family)
        {
            case LlamaFamily.Llama:
                json["attention_bias"] = AttentionBias;
                json["mlp_bias"] = false;
                break;
            case LlamaFamily.Mistral:
                json["sliding_window"] = SlidingWindow;
                break;
            case LlamaFamily.Qwen2:
                json["use_sliding_window"] = SlidingWindow is not null;
                json["sliding_window"] = SlidingWindow;
                break;
        }
        if (PassThroughConfigJson is not null)
        {
            foreach (var (key, value) in JsonNode.Parse(PassThroughConfigJson)!.AsObject())
            {
                json[key] = value?.DeepClone();
            }
        }
        return json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n";
    }

    private JsonObject? RopeScalingJson() => RopeScaling switch
    {
        null => null,
        { Kind: RopeScalingKind.Linear } linear => new JsonObject { ["rope_type"] = "linear", ["factor"] = FloatNode(linear.Factor) },
        var llama3 => new JsonObject
        {
            ["rope_type"] = "llama3",
            ["factor"] = FloatNode(llama3.Factor),
            ["low_freq_factor"] = FloatNode(llama3.LowFreqFactor),
            ["high_freq_factor"] = FloatNode(llama3.HighFreqFactor),
            ["original_max_position_embeddings"] = llama3.OriginalMaxPositionEmbeddings,
        },
    };

    /// <summary>
    /// A JSON number that Python reads back as a float (8.0, not 8): transformers warns when float-typed settings
    /// such as rope_scaling.factor arrive as integers.
    /// </summary>
    private static JsonNode FloatNode(double value)
    {
        string text = value.ToString("R", CultureInfo.InvariantCulture);
        return JsonNode.Parse(text.Contains('.') || text.Contains('E') ? text : text + ".0")!;
    }

    private static LlamaRopeScaling? ReadRopeScaling(RopeScaling? scaling, string where)
    {
        if (scaling is null || scaling.Type == "default")
        {
            return null;
        }
        double Required(double? value, string key) => value ?? throw new NotSupportedException(
            $"{where}: rope_scaling of type \"{scaling.Type}\" needs \"{key}\", which is missing; copy the model's " +
            "original config.json.");
        return scaling.Type switch
        {
            "linear" => LlamaRopeScaling.Linear(Required(scaling.Factor, "factor")),
            "llama3" => LlamaRopeScaling.Llama3(
                Required(scaling.Factor, "factor"),
                Required(scaling.LowFreqFactor, "low_freq_factor"),
                Required(scaling.HighFreqFactor, "high_freq_factor"),
                (int)Required(scaling.OriginalMaxPositionEmbeddings, "original_max_position_embeddings")),
            _ => throw new NotSupportedException(
                $"{where}: rope_scaling type \"{scaling.Type}\" is not supported; supported: \"default\" (none), " +
                "\"linear\", \"llama3\". Dynamic, YaRN and LongRoPE scalings compute frequencies differently."),
        };
    }

    private static string? PassThrough(JsonObject raw)
    {
        var kept = new JsonObject();
        foreach (var (key, value) in raw)
        {
            if (!InterpretedKeys.Contains(key))
            {
                kept[key] = value?.DeepClone();
            }
        }
        return kept.Count == 0 ? null : kept.ToJsonString();
    }

    private static string? OptionalString(JsonObject raw, string key, string where) => raw[key] switch
    {
        null => null,
        var node when node.GetValueKind() == JsonValueKind.String => node.GetValue<string>(),
        var node => throw new NotSupportedException($"{where}: \"{key}\" must be a string; found {node.ToJsonString()}."),
    };

    private static int? OptionalInt(JsonObject raw, string key, string where)
    {
        var node = raw[key];
        if (node is null)
        {
            return null;
        }
        if (node.GetValueKind() == JsonValueKind.Number && node.AsValue().TryGetValue(out int value) && value > 0)
        {
            return value;
        }
        throw new NotSupportedException(
            $"{where}: \"{key}\" must be a positive integer or null; found {node.ToJsonString()}.");
    }

    /// <summary>A one-line summary for messages, e.g. "llama hidden 576, intermediate 1536, 30 layers, 9/3 heads × 64, vocab 49152, tied".</summary>
    public override string ToString() =>
        $"{ModelType} hidden {HiddenSize}, intermediate {IntermediateSize}, {NumHiddenLayers} layers, " +
        $"{NumAttentionHeads}/{NumKeyValueHeads} heads × {HeadDim}, vocab {VocabSize}" +
        (TieWordEmbeddings ? ", tied" : "") + (AttentionBias ? ", qkv bias" : "");
}
