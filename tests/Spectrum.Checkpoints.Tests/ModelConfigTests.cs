// config.json parsing: real-model fields, Hugging Face defaults, and errors that name file, key, expectation and value.
using Spectrum.Checkpoints.Tests.TestSupport;

namespace Spectrum.Checkpoints.Tests;

public sealed class ModelConfigTests
{
    private const string Source = "/models/test/config.json";

    // Meta-Llama-3.1-8B's config.json as published.
    private const string Llama31Config = """
        {
          "architectures": ["LlamaForCausalLM"],
          "attention_bias": false,
          "attention_dropout": 0.0,
          "bos_token_id": 128000,
          "eos_token_id": 128001,
          "hidden_act": "silu",
          "hidden_size": 4096,
          "initializer_range": 0.02,
          "intermediate_size": 14336,
          "max_position_embeddings": 131072,
          "mlp_bias": false,
          "model_type": "llama",
          "num_attention_heads": 32,
          "num_hidden_layers": 32,
          "num_key_value_heads": 8,
          "pretraining_tp": 1,
          "rms_norm_eps": 1e-05,
          "rope_scaling": {
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 8192,
            "rope_type": "llama3"
          },
          "rope_theta": 500000.0,
          "tie_word_embeddings": false,
          "torch_dtype": "bfloat16",
          "transformers_version": "4.43.0.dev0",
          "use_cache": true,
          "vocab_size": 128256
        }
        """;

    [Fact]
    public void Llama31ConfigParsesEveryShapeDecidingField()
    {
        var config = ModelConfig.Parse(Llama31Config, Source);

        Assert.Equal("llama", config.ModelType);
        Assert.Equal(["LlamaForCausalLM"], config.Architectures);
        Assert.Equal((4096, 14336, 32, 32, 8, 128, 128256), (config.HiddenSize, config.IntermediateSize,
            config.NumHiddenLayers, config.NumAttentionHeads, config.NumKeyValueHeads, config.HeadDim, config.VocabSize));
        Assert.False(config.TieWordEmbeddings);
        Assert.False(config.AttentionBias);
        Assert.Equal(1e-5, config.RmsNormEps);
        Assert.Equal(500000.0, config.RopeTheta);
        Assert.Equal(131072, config.MaxPositionEmbeddings);
        Assert.Equal("bfloat16", config.TorchDtype);
        Assert.Equal(new RopeScaling("llama3", 8.0, 1.0, 4.0, 8192, config.RopeScaling!.Raw), config.RopeScaling);
        Assert.Null(config.NumLocalExperts);
        Assert.Equal("silu", config.Raw["hidden_act"]!.GetValue<string>());
    }

    [Fact]
    public void OptionalKeysTakeTheHuggingFaceDefaults()
    {
        var config = ModelConfig.Parse("""
            {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
             "num_attention_heads": 4, "vocab_size": 100, "rope_scaling": null, "head_dim": null}
            """, Source);

        Assert.Equal(4, config.NumKeyValueHeads);
        Assert.Equal(16, config.HeadDim);
        Assert.False(config.TieWordEmbeddings);
        Assert.Equal(10000.0, config.RopeTheta);
        Assert.Equal(1e-6, config.RmsNormEps);
        Assert.Null(config.RopeScaling);
        Assert.Null(config.MaxPositionEmbeddings);
        Assert.Empty(config.Architectures);
    }

    [Fact]
    public void ExplicitHeadDimOverridesHiddenOverHeads()
    {
        var config = ModelConfig.Parse(new TinyLlama().ConfigJson().Replace("\"vocab_size\"", "\"head_dim\": 16, \"vocab_size\""), Source);
        Assert.Equal(16, config.HeadDim);
    }

    [Fact]
    public void Qwen2ImpliesQueryKeyValueBiases()
    {
        var config = ModelConfig.Parse(new TinyLlama(ModelType: "qwen2").ConfigJson(), Source);
        Assert.True(config.AttentionBias);
    }

    [Fact]
    public void LegacyRopeScalingTypeKeyIsRead()
    {
        var config = ModelConfig.Parse(new TinyLlama().ConfigJson()
            .Replace("\"vocab_size\"", "\"rope_scaling\": {\"type\": \"linear\", \"factor\": 2.0}, \"vocab_size\""), Source);
        Assert.Equal("linear", config.RopeScaling!.Type);
        Assert.Equal(2.0, config.RopeScaling.Factor);
    }

    [Fact]
    public void SyntaxErrorNamesTheLine()
    {
        const string broken = "{\n  \"model_type\": \"llama\",\n  \"hidden_size\": 8,,\n}";
        var error = Rejection.Assert(() => ModelConfig.Parse(broken, Source), CheckpointError.ConfigInvalid, Source);
        Assert.Contains("line 3", error.Message);
    }

    [Theory]
    [InlineData("\"hidden_size\": 8,", "\"hidden_size\": \"8\",", "hidden_size", "\"8\"")]
    [InlineData("\"hidden_size\": 8,", "\"hidden_size\": 8.5,", "hidden_size", "8.5")]
    [InlineData("\"num_hidden_layers\": 2,", "\"num_hidden_layers\": -2,", "num_hidden_layers", "-2")]
    [InlineData("\"tie_word_embeddings\": false,", "\"tie_word_embeddings\": \"no\",", "tie_word_embeddings", "\"no\"")]
    [InlineData("\"vocab_size\": 10,", "", "vocab_size", "missing")]
    [InlineData("\"num_key_value_heads\": 1,", "\"num_key_value_heads\": 3,", "num_key_value_heads", "3")]
    public void WrongValueNamesKeyExpectationAndFoundValue(string original, string replacement, string key, string found)
    {
        string json = new TinyLlama().ConfigJson().Replace(original, replacement);
        Assert.NotEqual(new TinyLlama().ConfigJson(), json);

        var error = Rejection.Assert(() => ModelConfig.Parse(json, Source), CheckpointError.ConfigInvalid, Source);

        Assert.Contains($"\"{key}\"", error.Message);
        Assert.Contains("must be", error.Message);
        Assert.Contains(found, error.Message);
    }

    [Fact]
    public void HiddenSizeNotDivisibleByHeadsWithoutHeadDimIsRejected()
    {
        string json = new TinyLlama().ConfigJson().Replace("\"num_attention_heads\": 2", "\"num_attention_heads\": 3")
            .Replace("\"num_key_value_heads\": 1", "\"num_key_value_heads\": 3");
        var error = Rejection.Assert(() => ModelConfig.Parse(json, Source), CheckpointError.ConfigInvalid, Source);
        Assert.Contains("head_dim", error.Message);
    }

    [Fact]
    public void DuplicateKeyIsRejected()
    {
        string json = new TinyLlama().ConfigJson().Replace("\"vocab_size\"", "\"hidden_size\": 16, \"vocab_size\"");
        Rejection.Assert(() => ModelConfig.Parse(json, Source), CheckpointError.ConfigInvalid, Source);
    }

    [Fact]
    public void LoadReadsTheFileAndRecordsItsPath()
    {
        using var folder = new TempFolder();
        string path = folder.WriteText("config.json", Llama31Config);

        var config = ModelConfig.Load(path);

        Assert.Equal(path, config.SourcePath);
        Assert.Equal(128256, config.VocabSize);
    }
}
