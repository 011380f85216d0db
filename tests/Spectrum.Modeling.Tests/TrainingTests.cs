// Training-side behaviour of the model: gradients reach every trainable parameter and no frozen one, checkpointing changes no gradient, seeds reproduce.
using TorchSharp;
using static TorchSharp.torch;

namespace Spectrum.Modeling.Tests;

public sealed class TrainingTests
{
    private static readonly LlamaConfig Config = LlamaConfig.Tiny(hiddenSize: 32, intermediateSize: 48, vocabSize: 40);

    public static TheoryData<string> ConfigNames { get; } = new(["llama", "qwen2", "tied"]);

    private static LlamaConfig Named(string name) => name switch
    {
        "qwen2" => Config with { Family = LlamaFamily.Qwen2, AttentionBias = true },
        "tied" => Config with { TieWordEmbeddings = true },
        _ => Config,
    };

    private static void Backward(LlamaForCausalLM model, long seed)
    {
        using var scope = torch.NewDisposeScope();
        var ids = Tensors.RandomIds(2, 8, model.Config.VocabSize, seed);
        Tensors.NextTokenLoss(model.forward(ids), ids).backward();
    }

    [Theory]
    [MemberData(nameof(ConfigNames))]
    public void Backward_gives_every_parameter_a_nonzero_gradient(string configName)
    {
        using var model = new LlamaForCausalLM(Named(configName), generator: new Generator(1));
        Backward(model, seed: 2);
        foreach (var (name, parameter) in model.named_parameters())
        {
            var gradient = parameter.grad;
            Assert.True(gradient is not null, $"{name} has no gradient");
            Assert.True(gradient!.abs().sum().item<float>() > 0, $"{name} has an all-zero gradient");
        }
    }

    /// <summary>
    /// The tied head is computed as (W · hᵀ)ᵀ so that autograd can sum the tied weight's two gradients in place; the
    /// sum must be exactly what an untied twin's embedding and head gradients add up to (float64, ≤ 1e-12).
    /// </summary>
    [Fact]
    public void A_tied_embeddings_gradient_is_the_sum_of_its_lookup_and_head_gradients()
    {
        var tiedConfig = Config with { TieWordEmbeddings = true };
        using var tied = new LlamaForCausalLM(tiedConfig, ScalarType.Float64, generator: new Generator(5));
        using var untied = new LlamaForCausalLM(Config with { TieWordEmbeddings = false }, ScalarType.Float64, generator: new Generator(6));
        using (torch.no_grad())
        {
            var source = tied.named_parameters().ToDictionary(p => p.name, p => p.parameter);
            foreach (var (name, parameter) in untied.named_parameters())
                parameter.copy_(source[name == "lm_head.weight" ? "model.embed_tokens.weight" : name]);
        }

        Backward(tied, seed: 7);
        Backward(untied, seed: 7);

        var tiedGradient = tied.get_parameter("model.embed_tokens.weight")!.grad!;
        using var expected = untied.get_parameter("model.embed_tokens.weight")!.grad! + untied.get_parameter("lm_head.weight")!.grad!;
        Assert.True((tiedGradient - expected).abs().max().item<double>() <= 1e-12);
        Assert.True(expected.abs().max().item<double>() > 0);
    }

    [Fact]
    public void Frozen_parameters_get_no_gradient_and_trainable_ones_do()
    {
        using var model = new LlamaForCausalLM(Config, generator: new Generator(3));
        var trainable = new HashSet<string> { "model.layers.1.mlp.up_proj.weight", "model.layers.1.self_attn.v_proj.weight" };
        foreach (var (name, parameter) in model.named_parameters())
        {
            parameter.requires_grad = trainable.Contains(name);
        }
        Backward(model, seed: 4);
        foreach (var (name, parameter) in model.named_parameters())
        {
            Assert.Equal(trainable.Contains(name), parameter.grad is not null);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Gradient_checkpointing_gives_the_same_loss_and_gradients(bool freezeEmbeddingsAndFirstLayer)
    {
        using var plain = new LlamaForCausalLM(Config with { NumHiddenLayers = 3 }, generator: new Generator(5));
        using var checkpointed = new LlamaForCausalLM(Config with { NumHiddenLayers = 3 }, generator: new Generator(5));
        checkpointed.GradientCheckpointing = true;
        foreach (var model in new[] { plain, checkpointed })
        {
            foreach (var (name, parameter) in model.named_parameters())
            {
                // Frozen inputs exercise the path where the layer input needs no gradient.
                parameter.requires_grad = !(freezeEmbeddingsAndFirstLayer
                    && (name.StartsWith("model.embed_tokens", StringComparison.Ordinal)
                        || name.StartsWith("model.layers.0.", StringComparison.Ordinal)));
            }
        }
        float plainLoss, checkpointedLoss;
        long recomputationsBefore = CheckpointedLayerFunction.Recomputations;
        using (var scope = torch.NewDisposeScope())
        {
            var ids = Tensors.RandomIds(2, 8, Config.VocabSize, seed: 6);
            var loss = Tensors.NextTokenLoss(plain.forward(ids), ids);
            loss.backward();
            plainLoss = loss.item<float>();
            var loss2 = Tensors.NextTokenLoss(checkpointed.forward(ids), ids);
            loss2.backward();
            checkpointedLoss = loss2.item<float>();
        }
        // Every layer with something to differentiate was recomputed (other tests may add to the global count).
        Assert.True(CheckpointedLayerFunction.Recomputations - recomputationsBefore >= (freezeEmbeddingsAndFirstLayer ? 2 : 3));

        Assert.Equal(plainLoss, checkpointedLoss);
        var checkpointedParameters = checkpointed.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        int compared = 0;
        foreach (var (name, parameter) in plain.named_parameters())
        {
            var other = checkpointedParameters[name];
            Assert.Equal(parameter.grad is null, other.grad is null);
            if (parameter.grad is null) continue;
            float scale = parameter.grad.abs().max().item<float>();
            float difference = parameter.grad.sub(other.grad!).abs().max().item<float>();
            Assert.True(difference <= 1e-5f * Math.Max(scale, 1e-3f), $"{name}: gradients differ by {difference} (scale {scale})");
            compared++;
        }
        Assert.True(compared >= 9 * 2, "the trainable layers' gradients were compared");
    }

    [Fact]
    public void Gradient_checkpointing_is_inactive_without_autograd()
    {
        using var scope = torch.NewDisposeScope();
        using var model = new LlamaForCausalLM(Config, generator: new Generator(7)) { GradientCheckpointing = true };
        var ids = Tensors.RandomIds(1, 5, Config.VocabSize, seed: 8);
        using var noGrad = torch.no_grad();
        var logits = model.forward(ids);
        Assert.False(logits.requires_grad);
        model.GradientCheckpointing = false;
        Assert.True(Tensors.Bytes(logits).AsSpan().SequenceEqual(Tensors.Bytes(model.forward(ids))));
    }

    [Fact]
    public void The_same_seed_gives_bit_identical_weights_and_logits()
    {
        using var scope = torch.NewDisposeScope();
        using var first = new LlamaForCausalLM(Config, generator: new Generator(42));
        using var second = new LlamaForCausalLM(Config, generator: new Generator(42));
        using var other = new LlamaForCausalLM(Config, generator: new Generator(43));
        using var noGrad = torch.no_grad();
        var ids = Tensors.RandomIds(2, 7, Config.VocabSize, seed: 9);
        var logits = Tensors.Bytes(first.forward(ids));
        Assert.True(logits.AsSpan().SequenceEqual(Tensors.Bytes(second.forward(ids))));
        Assert.True(logits.AsSpan().SequenceEqual(Tensors.Bytes(first.forward(ids))), "repeated forward is deterministic");
        Assert.False(logits.AsSpan().SequenceEqual(Tensors.Bytes(other.forward(ids))));
    }

    [Fact]
    public void Initialisation_follows_hugging_face()
    {
        using var model = new LlamaForCausalLM(LlamaConfig.Tiny(LlamaFamily.Qwen2, hiddenSize: 64, intermediateSize: 256, vocabSize: 512),
            generator: new Generator(11));
        var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        Assert.All(Tensors.Floats(parameters["model.norm.weight"]), value => Assert.Equal(1f, value));
        Assert.All(Tensors.Floats(parameters["model.layers.0.self_attn.q_proj.bias"]), value => Assert.Equal(0f, value));
        float std = parameters["model.embed_tokens.weight"].std().item<float>();
        Assert.InRange(std, 0.019f, 0.021f);
    }

    [Fact]
    public void Bfloat16_models_return_float32_logits()
    {
        using var scope = torch.NewDisposeScope();
        using var model = new LlamaForCausalLM(Config, ScalarType.BFloat16, generator: new Generator(12));
        var ids = Tensors.RandomIds(1, 5, Config.VocabSize, seed: 10);
        var logits = model.forward(ids);
        Assert.Equal(ScalarType.Float32, logits.dtype);
        Tensors.NextTokenLoss(logits, ids).backward();
        Assert.Equal(ScalarType.BFloat16, model.Model.Norm.Weight.grad!.dtype);
    }
}
