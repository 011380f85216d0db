// generation_config.json: the keys generate uses, transformers' defaults for missing ones, and malformed values named with file and key.
using Spectrum.Checkpoints.Tests.TestSupport;

namespace Spectrum.Checkpoints.Tests;

public sealed class GenerationConfigTests
{
    private const string Source = "/models/test/generation_config.json";

    [Fact]
    public void ReadsLlama3InstructsFile()
    {
        // The shape of meta-llama/Meta-Llama-3-8B-Instruct's generation_config.json.
        var config = GenerationConfig.Parse("""
            {"bos_token_id": 128000, "do_sample": true, "eos_token_id": [128001, 128009], "max_length": 4096,
             "temperature": 0.6, "top_p": 0.9, "transformers_version": "4.40.0.dev0"}
            """, Source);

        Assert.Equal([128001, 128009], config.EosTokenIds);
        Assert.True(config.DoSample);
        Assert.Equal(0.6, config.Temperature);
        Assert.Equal(0.9, config.TopP);
        Assert.Equal(50, config.TopK);
        Assert.Null(config.MaxNewTokens);
    }

    [Fact]
    public void ASingleEosIdAndMissingKeysTakeTransformersDefaults()
    {
        var config = GenerationConfig.Parse("""{"eos_token_id": 2, "max_new_tokens": 64}""", Source);

        Assert.Equal([2], config.EosTokenIds);
        Assert.False(config.DoSample);
        Assert.Equal((1.0, 50, 1.0), (config.Temperature, config.TopK, config.TopP));
        Assert.Equal(64, config.MaxNewTokens);
    }

    [Fact]
    public void AFolderWithoutTheFileGetsTheDefaults()
    {
        string folder = Path.Combine(Path.GetTempPath(), $"spectrum-generation-{Guid.NewGuid():N}");
        Directory.CreateDirectory(folder);
        try
        {
            Assert.Same(GenerationConfig.Default, GenerationConfig.Read(folder));
        }
        finally
        {
            Directory.Delete(folder);
        }
    }

    [Theory]
    [InlineData("""{"eos_token_id": "</s>"}""", "eos_token_id")]
    [InlineData("""{"eos_token_id": [2, -1]}""", "eos_token_id")]
    [InlineData("""{"do_sample": "yes"}""", "do_sample")]
    [InlineData("""{"top_k": -5}""", "top_k")]
    [InlineData("""{"top_p": 1.5}""", "top_p")]
    [InlineData("""{"do_sample": true, "temperature": 0}""", "temperature")]
    [InlineData("""{"max_new_tokens": 0}""", "max_new_tokens")]
    public void AWrongValueIsNamedWithFileAndKey(string json, string key)
    {
        var error = Rejection.Assert(() => GenerationConfig.Parse(json, Source), CheckpointError.ConfigInvalid, Source);

        Assert.Contains($"\"{key}\" must be", error.Message);
        Assert.Contains("Fix generation_config.json", error.Message);
    }

    [Fact]
    public void NotAnObjectIsRefused()
    {
        var error = Rejection.Assert(() => GenerationConfig.Parse("[1, 2]", Source), CheckpointError.ConfigInvalid, Source);

        Assert.Contains("expected a JSON object", error.Message);
    }
}
