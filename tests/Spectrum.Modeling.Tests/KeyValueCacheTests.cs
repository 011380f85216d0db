// Cached generation steps give the logits of a full forward over everything so far, and greedy decoding reproduces the PyTorch reference's tokens.
using TorchSharp;
using static TorchSharp.torch;

namespace Spectrum.Modeling.Tests;

public sealed class KeyValueCacheTests
{
    public static TheoryData<string> FixtureCases => new() { "llama3_bf16_sharded", "qwen2_bias_f32", "tied_f16" };

    /// <summary>
    /// Cached and full passes sum in different orders: a float64 model agrees to the float32 rounding of its logits
    /// (one float32 step of a logit below 16 is ≤ 1e-6), a float32 model within the bound used against the PyTorch
    /// reference (1e-4; ≈1e-5 seen).
    /// </summary>
    public static TheoryData<string, ScalarType, double> FixtureCasesAndPrecisions()
    {
        var data = new TheoryData<string, ScalarType, double>();
        foreach (string fixtureCase in new[] { "llama3_bf16_sharded", "qwen2_bias_f32", "tied_f16" })
        {
            data.Add(fixtureCase, ScalarType.Float64, 1e-6);
            data.Add(fixtureCase, ScalarType.Float32, 1e-4);
        }
        return data;
    }

    /// <summary>
    /// Prompt in one pass, then chunks of several tokens (attending to the cache with an offset mask), then single
    /// tokens: every step's next-token logits equal the full forward's at that position. The fixtures cover grouped
    /// heads, q/k/v biases, an explicit head_dim, tied embeddings and llama3 RoPE scaling.
    /// </summary>
    [Theory]
    [MemberData(nameof(FixtureCasesAndPrecisions))]
    public void EveryStepEqualsTheFullForwardAtThatPosition(string fixtureCase, ScalarType dtype, double tolerance)
    {
        using var scope = torch.NewDisposeScope();
        using var model = LlamaForCausalLM.FromPretrained(RepositoryPaths.Fixture("llama", fixtureCase, "model"), dtype);
        var ids = Tensors.RandomIds(2, 16, model.Config.VocabSize, seed: 3);
        using var noGrad = torch.no_grad();
        var full = model.forward(ids);                                                        // (2, 16, vocab)

        using var cache = model.CreateCache(capacity: 16, batch: 2);
        int position = 0;
        foreach (int chunk in new[] { 5, 3, 4, 1, 1, 2 })
        {
            var logits = model.NextTokenLogits(ids.narrow(1, position, chunk), cache);
            position += chunk;
            Assert.Equal(position, cache.Length);
            double error = logits.to(ScalarType.Float64).sub(full.select(1, position - 1)).abs().max().item<double>();
            Assert.True(error <= tolerance, $"{fixtureCase} {dtype}: after {position} tokens the cached logits differ by {error:E2}");
        }
    }

    [Theory]
    [MemberData(nameof(FixtureCases))]
    public void GreedyDecodingReproducesTheReferenceTokens(string fixtureCase)
    {
        using var scope = torch.NewDisposeScope();
        using var model = LlamaForCausalLM.FromPretrained(RepositoryPaths.Fixture("llama", fixtureCase, "model"));
        string expected = RepositoryPaths.Fixture("llama", fixtureCase, "expected.safetensors");
        int[] prompt = ExpectedFile.Read(expected, "greedy_prompt").data<long>().Select(id => (int)id).ToArray();
        int[] reference = ExpectedFile.Read(expected, "greedy_ids").data<long>().Select(id => (int)id).ToArray();

        var generated = TokenGenerator.Generate(model, prompt, new GenerationSettings { MaxNewTokens = reference.Length }).ToArray();

        Assert.Equal(reference, generated);
    }

    /// <summary>
    /// In bf16 the cached steps take the explicit attention path against a longer key list, the full pass the one for
    /// square scores; both round differently, so the bound is relative to the logits' spread (2%), not absolute.
    /// </summary>
    [Fact]
    public void BFloat16StepsStayWithinRoundingOfTheFullForward()
    {
        using var scope = torch.NewDisposeScope();
        using var model = LlamaForCausalLM.FromPretrained(RepositoryPaths.Fixture("llama", "llama3_bf16_sharded", "model"), ScalarType.BFloat16);
        var ids = Tensors.RandomIds(1, 12, model.Config.VocabSize, seed: 9);
        using var noGrad = torch.no_grad();
        var full = model.forward(ids);
        using var cache = model.CreateCache(12);
        model.NextTokenLogits(ids.narrow(1, 0, 4), cache);
        for (int position = 4; position < 12; position++)
        {
            var step = model.NextTokenLogits(ids.narrow(1, position, 1), cache)[0];
            var want = full[0, position];
            double spread = want.max().item<float>() - want.min().item<float>();
            double error = step.sub(want).abs().max().item<float>();
            Assert.True(error <= 0.02 * spread, $"position {position}: |Δ| {error:G3} vs logit spread {spread:G3}");
        }
    }

    [Fact]
    public void ClearingStartsANewSequenceWithTheSameResults()
    {
        using var scope = torch.NewDisposeScope();
        using var model = new LlamaForCausalLM(LlamaConfig.Tiny(), generator: new Generator(4));
        var first = Tensors.RandomIds(1, 6, 100, seed: 1);
        var second = Tensors.RandomIds(1, 4, 100, seed: 2);
        using var cache = model.CreateCache(8);
        using var fresh = model.CreateCache(8);

        model.NextTokenLogits(first, cache);
        cache.Clear();
        var reused = model.NextTokenLogits(second, cache);

        Assert.Equal(0, reused.sub(model.NextTokenLogits(second, fresh)).abs().max().item<float>());
        Assert.Equal(4, cache.Length);
    }

    [Fact]
    public void RefusesWhatDoesNotFitWithoutChangingTheCache()
    {
        using var scope = torch.NewDisposeScope();
        using var model = new LlamaForCausalLM(LlamaConfig.Tiny(vocabSize: 50), generator: new Generator(4));
        using var cache = model.CreateCache(6);
        model.NextTokenLogits(Tensors.RandomIds(1, 4, 50, seed: 1), cache);

        var full = Assert.Throws<ArgumentException>(() => model.NextTokenLogits(Tensors.RandomIds(1, 3, 50, seed: 2), cache));
        Assert.Contains("holds 4 of 6 positions", full.Message);
        var batch = Assert.Throws<ArgumentException>(() => model.NextTokenLogits(Tensors.RandomIds(2, 1, 50, seed: 2), cache));
        Assert.Contains("batch 1", batch.Message);
        var vocabulary = Assert.Throws<ArgumentException>(() => model.NextTokenLogits(torch.tensor(new long[] { 50 }).unsqueeze(0), cache));
        Assert.Contains("[0, 50)", vocabulary.Message);
        Assert.Equal(4, cache.Length);
    }

    [Fact]
    public void TheCacheOutlivesTheDisposeScopeItWasMadeIn()
    {
        using var model = new LlamaForCausalLM(LlamaConfig.Tiny(), generator: new Generator(4));
        KeyValueCache cache;
        using (torch.NewDisposeScope())
        {
            cache = model.CreateCache(4);
        }
        using (cache)
        using (torch.NewDisposeScope())
        {
            Assert.Equal(100, model.NextTokenLogits(Tensors.RandomIds(1, 3, 100, seed: 1), cache).shape[^1]);
            Assert.Equal(2L * 2 * 2 * 4 * 16 * 4, cache.Bytes); // layers × (k, v) × kv_heads × capacity × head_dim × 4 bytes
        }
    }
}
