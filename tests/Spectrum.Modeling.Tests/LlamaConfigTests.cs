// Reading config.json into LlamaConfig: supported families and options, clear refusals, RoPE frequencies, the sliding-window limit.
using Spectrum.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Spectrum.Modeling.Tests;

public sealed class LlamaConfigTests
{
    private const string Where = "/models/x/config.json";

    private static LlamaConfig Parse(string extraKeys, string modelType = "llama") =>
        LlamaConfig.From(ModelConfig.Parse(
            $$"""
            {"model_type": "{{modelType}}", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 100{{extraKeys}}}
            """, Where));

    [Fact]
    public void Unsupported_model_types_are_named_with_the_supported_ones()
    {
        var error = Assert.Throws<NotSupportedException>(() => Parse("", modelType: "qwen3"));
        Assert.Contains(Where, error.Message);
        Assert.Contains("\"qwen3\"", error.Message);
        Assert.Contains("\"llama\", \"mistral\", \"qwen2\"", error.Message);
    }

    [Theory]
    [InlineData(""", "hidden_act": "gelu" """, "hidden_act \"gelu\"")]
    [InlineData(""", "mlp_bias": true""", "mlp_bias")]
    [InlineData(""", "partial_rotary_factor": 0.5""", "partial_rotary_factor")]
    [InlineData(""", "attention_dropout": 0.1""", "attention_dropout 0.1")]
    [InlineData(""", "rope_scaling": {"rope_type": "yarn", "factor": 4.0}""", "\"yarn\" is not supported")]
    [InlineData(""", "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0}""", "original_max_position_embeddings")]
    [InlineData(""", "rope_scaling": {"type": "dynamic", "factor": 2.0}""", "\"dynamic\" is not supported")]
    public void Options_computed_differently_are_refused_with_the_key(string extraKeys, string expectedFragment)
    {
        var error = Assert.ThrowsAny<Exception>(() => Parse(extraKeys));
        Assert.True(error is NotSupportedException or CheckpointException, error.GetType().Name);
        Assert.Contains(expectedFragment, error.Message);
        Assert.Contains(Where, error.Message);
    }

    [Fact]
    public void Llama_attention_bias_biases_all_four_projections_and_qwen2_only_three()
    {
        var llama = Parse(""", "attention_bias": true""");
        Assert.True(llama.AttentionBias && llama.OutputProjectionBias);
        var qwen = Parse("", modelType: "qwen2");
        Assert.True(qwen.AttentionBias);
        Assert.False(qwen.OutputProjectionBias);
        Assert.Contains("attention biases", Assert.Throws<NotSupportedException>(
            () => Parse(""", "attention_bias": true""", modelType: "mistral")).Message);
    }

    [Fact]
    public void Sliding_windows_are_read_for_mistral_and_for_qwen2_only_when_enabled()
    {
        Assert.Equal(4096, Parse(""", "sliding_window": 4096""", modelType: "mistral").SlidingWindow);
        Assert.Null(Parse(""", "sliding_window": null""", modelType: "mistral").SlidingWindow);
        Assert.Null(Parse(""", "use_sliding_window": false, "sliding_window": 4096""", modelType: "qwen2").SlidingWindow);
        Assert.Equal(512, Parse(""", "use_sliding_window": true, "sliding_window": 512""", modelType: "qwen2").SlidingWindow);
    }

    [Fact]
    public void Keys_the_model_does_not_interpret_pass_through()
    {
        var config = Parse(""", "bos_token_id": 1, "eos_token_id": [2, 3], "torch_dtype": "bfloat16", "rms_norm_eps": 1e-5""");
        Assert.Equal("""{"bos_token_id":1,"eos_token_id":[2,3]}""", config.PassThroughConfigJson);
        Assert.Equal(1e-5, config.RmsNormEps);
    }

    [Fact]
    public void Sequences_longer_than_the_sliding_window_are_refused_and_shorter_ones_run()
    {
        using var scope = torch.NewDisposeScope();
        var config = LlamaConfig.Tiny(LlamaFamily.Mistral, hiddenSize: 32, intermediateSize: 48, vocabSize: 40) with { SlidingWindow = 8 };
        using var model = new LlamaForCausalLM(config);
        using var noGrad = torch.no_grad();
        Assert.Equal([1L, 8, 40], model.forward(Tensors.RandomIds(1, 8, 40, seed: 1)).shape);
        var error = Assert.Throws<NotSupportedException>(() => model.forward(Tensors.RandomIds(1, 9, 40, seed: 1)));
        Assert.Contains("9 tokens", error.Message);
        Assert.Contains("sliding_window of 8", error.Message);
    }

    /// <summary>
    /// Meta's Llama 3.1 rule written independently in float64 (keep short wavelengths, divide long ones, blend between);
    /// ours follows transformers' float32 tensor arithmetic, so they agree to float32 rounding.
    /// </summary>
    [Theory]
    [InlineData(128, 500000.0, 8.0, 1.0, 4.0, 8192)]
    [InlineData(64, 500000.0, 32.0, 1.0, 4.0, 8192)]
    [InlineData(16, 500000.0, 8.0, 1.0, 4.0, 64)]
    public void Llama3_inverse_frequencies_follow_the_published_rule(int headDim, double theta, double factor,
        double low, double high, int oldContext)
    {
        var ours = RotaryEmbedding.ComputeInverseFrequencies(headDim, theta, LlamaRopeScaling.Llama3(factor, low, high, oldContext));
        int scaledBands = 0, smoothBands = 0;
        for (int i = 0; i < headDim / 2; i++)
        {
            double frequency = Math.Pow(theta, -2.0 * i / headDim), wavelength = 2 * Math.PI / frequency, expected;
            if (wavelength < oldContext / high)
            {
                expected = frequency;
            }
            else if (wavelength > oldContext / low)
            {
                expected = frequency / factor;
                scaledBands++;
            }
            else
            {
                double smooth = (oldContext / wavelength - low) / (high - low);
                expected = (1 - smooth) * frequency / factor + smooth * frequency;
                smoothBands++;
            }
            Assert.True(Math.Abs(ours[i] - expected) <= 4e-7 * expected, $"i={i}: ours {ours[i]:R}, expected {expected:R}");
        }
        Assert.True(scaledBands > 0 && smoothBands > 0, "the case exercises the scaled and the smooth band");
    }

    [Fact]
    public void Linear_scaling_divides_every_frequency()
    {
        var plain = RotaryEmbedding.ComputeInverseFrequencies(64, 10000, null);
        var scaled = RotaryEmbedding.ComputeInverseFrequencies(64, 10000, LlamaRopeScaling.Linear(4));
        Assert.Equal(plain.Select(f => f / 4), scaled);
        Assert.Equal(1f, plain[0]);
        Assert.True(Math.Abs(plain[^1] - Math.Pow(10000, -62.0 / 64)) <= 1e-6 * plain[^1]);
    }

    [Fact]
    public void Invalid_dimensions_are_refused_naming_the_field()
    {
        Assert.Contains("NumKeyValueHeads", Assert.Throws<ArgumentException>(
            () => new LlamaForCausalLM(LlamaConfig.Tiny(numKeyValueHeads: 3), device: torch.META)).Message);
        Assert.Contains("HeadDim must be even", Assert.Throws<ArgumentException>(
            () => (LlamaConfig.Tiny() with { HeadDim = 15 }).Validate()).Message);
        Assert.Contains("Qwen2 always has q/k/v biases", Assert.Throws<ArgumentException>(
            () => (LlamaConfig.Tiny(LlamaFamily.Qwen2) with { AttentionBias = false }).Validate()).Message);
    }

    [Fact]
    public void Input_ids_are_checked_against_the_vocabulary_and_dtype()
    {
        using var scope = torch.NewDisposeScope();
        using var model = new LlamaForCausalLM(LlamaConfig.Tiny(hiddenSize: 32, intermediateSize: 48, vocabSize: 40));
        using var noGrad = torch.no_grad();
        Assert.Contains("[0, 40)", Assert.Throws<ArgumentException>(
            () => model.forward(torch.tensor(new long[] { 1, 40 }, [1, 2]))).Message);
        Assert.Contains("int64", Assert.Throws<ArgumentException>(
            () => model.forward(torch.tensor(new int[] { 1, 2 }, [1, 2]))).Message);
    }
}
