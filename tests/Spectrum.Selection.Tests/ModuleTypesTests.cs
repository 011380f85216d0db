// Module names and types: exact-component grouping, expert grouping, and the reference's substring bug avoided.
namespace Spectrum.Selection.Tests;

public class ModuleTypesTests
{
    [Theory]
    [InlineData("model.layers.0.mlp.down_proj.weight", "model.layers.0.mlp.down_proj")]
    [InlineData("model.layers.0.self_attn.q_proj.bias", "model.layers.0.self_attn.q_proj")]
    [InlineData("lm_head.weight", "lm_head")]
    [InlineData("model.layers.0.self_attn.rotary_emb.inv_freq", "model.layers.0.self_attn.rotary_emb.inv_freq")]
    [InlineData("model.layers.0.mlp.down_proj.weight_scale", "model.layers.0.mlp.down_proj.weight_scale")]
    [InlineData("model.layers.0.mlp.down_proj", "model.layers.0.mlp.down_proj")]
    [InlineData("weight", "weight")]
    public void ModuleNameOf_strips_only_a_trailing_weight_or_bias(string tensor, string module) =>
        Assert.Equal(module, ModuleTypes.ModuleNameOf(tensor));

    [Theory]
    [InlineData("model.layers.12.mlp.down_proj", "mlp.down_proj")]
    [InlineData("model.layers.0.self_attn.v_proj", "self_attn.v_proj")]
    [InlineData("model.layers.31.input_layernorm", "input_layernorm")]
    [InlineData("lm_head", "lm_head")]
    [InlineData("model.embed_tokens", "model.embed_tokens")]
    [InlineData("model.norm", "model.norm")]
    [InlineData("transformer.h.11.attn.c_attn", "attn.c_attn")]
    [InlineData("bert.encoder.layer.3.attention.output.dense", "attention.output.dense")]
    [InlineData("bert.encoder.layer.3.output.dense", "output.dense")]
    [InlineData("model.layers.3.block_sparse_moe.experts.7.w1", "block_sparse_moe.experts.*.w1")]
    [InlineData("model.layers.1.mlp.experts.63.down_proj", "mlp.experts.*.down_proj")]
    [InlineData("model.layers.1.mlp.shared_experts.down_proj", "mlp.shared_experts.down_proj")]
    [InlineData("head.0", "head.0")]
    [InlineData("model.layers.v2.mlp", "model.layers.v2.mlp")]
    public void TypeOf_is_the_name_below_the_first_layer_number_with_experts_grouped(string module, string type) =>
        Assert.Equal(type, ModuleTypes.TypeOf(module));

    [Theory]
    [InlineData("model.layers.3.block_sparse_moe.experts.7.w1", "block_sparse_moe.experts.7.w1")]
    [InlineData("model.layers.1.mlp.experts.63.down_proj", "mlp.experts.63.down_proj")]
    [InlineData("model.layers.12.mlp.down_proj", "mlp.down_proj")]
    public void TypeOf_without_grouping_keeps_one_type_per_expert_like_the_reference(string module, string type) =>
        Assert.Equal(type, ModuleTypes.TypeOf(module, groupExperts: false));

    [Theory]
    [InlineData("model.layers.3.mlp.down_proj", true)]
    [InlineData("model.layers.3.mlp.down_proj.weight", true)]
    [InlineData("lm_head", false)]
    [InlineData("model.norm.weight", false)]
    [InlineData("head.0", false)]
    [InlineData("model.layers.03x.mlp", false)]
    public void IsInsideNumberedLayer_needs_an_all_digit_component_with_something_below_it(string name, bool expected) =>
        Assert.Equal(expected, ModuleTypes.IsInsideNumberedLayer(name));

    [Fact]
    public void Bert_attention_output_dense_is_not_grouped_under_output_dense()
    {
        // The reference selects modules of type T with `T in name`, so "output.dense" also catches every
        // "attention.output.dense"; grouping by exact components keeps the 12 attention and 12 FFN outputs apart.
        var modules = Enumerable.Range(0, 12).SelectMany(layer => new[]
        {
            $"bert.encoder.layer.{layer}.attention.output.dense",
            $"bert.encoder.layer.{layer}.output.dense",
        }).ToList();
        var scores = modules.Select((m, i) => new ModuleScore(m, ModuleTypes.TypeOf(m), i)).ToList();

        var selection = TopPercentSelection.Select(scores, 100);

        var outputDense = Assert.Single(selection.Types, t => t.Type == "output.dense");
        Assert.Equal(12, outputDense.Count);
        Assert.All(outputDense.Ranked, s => Assert.DoesNotContain("attention", s.Module));
        Assert.Equal(12, Assert.Single(selection.Types, t => t.Type == "attention.output.dense").Count);
        Assert.Equal(24, modules.Count(m => m.Contains("output.dense")));
    }
}
