// Projection replacement (the hook adapters use): names, order, forward routing and refusals.
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Spectrum.Modeling.Tests;

public sealed class ReplaceModuleTests
{
    private static readonly LlamaConfig Config = LlamaConfig.Tiny(hiddenSize: 32, intermediateSize: 48, vocabSize: 40);

    [Fact]
    public void Projections_lists_all_seven_linear_projections_of_every_layer()
    {
        using var model = new LlamaForCausalLM(Config, device: torch.META);
        var projections = model.Projections().ToList();
        Assert.Equal(7 * Config.NumHiddenLayers, projections.Count);
        Assert.Equal(model.ProjectionModuleNames(), projections.Select(p => p.Name));
        Assert.Equal("model.layers.0.self_attn.q_proj", projections[0].Name);
        Assert.Equal("model.layers.1.mlp.down_proj", projections[^1].Name);
        Assert.Equal([Config.HiddenSize, Config.IntermediateSize], projections[^1].Module.weight!.shape);
    }

    [Fact]
    public void Replacement_parameters_appear_under_the_projection_name_in_its_place()
    {
        using var model = new LlamaForCausalLM(Config, generator: new Generator(1));
        const string name = "model.layers.1.self_attn.q_proj";
        var original = (Linear)model.GetProjection(name);
        var adapter = new ScaledLinear(original, 1.0);
        model.ReplaceModule(name, adapter);

        var names = model.named_parameters().Select(p => p.name).ToList();
        Assert.DoesNotContain(name + ".weight", names);
        // In the replaced weight's place: after layer 0's last norm, before layer 1's k_proj.
        int start = names.IndexOf("model.layers.0.post_attention_layernorm.weight") + 1;
        int end = names.IndexOf("model.layers.1.self_attn.k_proj.weight");
        Assert.Equal([name + ".base_layer.weight", name + ".delta"], names[start..end].Order(StringComparer.Ordinal));

        Assert.Same(adapter, model.GetProjection(name));
        Assert.Equal(7 * Config.NumHiddenLayers - 1, model.Projections().Count());
        Assert.DoesNotContain(model.Projections(), p => p.Name == name);
    }

    [Fact]
    public void Forward_goes_through_the_replacement()
    {
        using var scope = torch.NewDisposeScope();
        using var model = new LlamaForCausalLM(Config, generator: new Generator(2));
        using var noGrad = torch.no_grad();
        var ids = Tensors.RandomIds(1, 6, Config.VocabSize, seed: 1);
        var before = model.forward(ids);

        const string name = "model.layers.0.mlp.down_proj";
        var original = (Linear)model.GetProjection(name);
        model.ReplaceModule(name, new ScaledLinear(original, 1.0));
        Assert.True(Tensors.Bytes(before).AsSpan().SequenceEqual(Tensors.Bytes(model.forward(ids))),
            "an identity adapter (scale 1, zero delta) must not change the logits");

        // A second replacement of the same slot; scale 0 and zero delta silence the projection.
        model.ReplaceModule(name, new ScaledLinear(original, 0.0));
        Assert.True(model.forward(ids).sub(before).abs().max().item<float>() > 1e-3f,
            "silencing the down projection must change the logits");
    }

    [Theory]
    [InlineData("model.layers.2.self_attn.q_proj", "layer '2' does not exist")]
    [InlineData("model.layers.0.self_attn.q_norm", "is not one of the seven projections")]
    [InlineData("model.layers.0.mlp.q_proj", "is not one of the seven projections")]
    [InlineData("lm_head", "does not start with")]
    [InlineData("model.layers.0.self_attn", "does not have the form")]
    [InlineData("model.layers.-1.mlp.up_proj", "layer '-1' does not exist")]
    public void Names_other_than_the_seven_projections_are_refused(string name, string why)
    {
        using var model = new LlamaForCausalLM(Config, device: torch.META);
        var error = Assert.Throws<ArgumentException>(() => model.ReplaceModule(name, new OpaqueProjection(32)));
        Assert.Contains(why, error.Message);
        Assert.Contains("model.layers.{layer}.self_attn.{q,k,v,o}_proj", error.Message);
        Assert.Contains("0..1", error.Message);
    }
}
