// One pre-norm Llama-family decoder layer: x + attn(norm(x)), then + mlp(norm(·)); HF-named children.
using TorchSharp;
using static TorchSharp.torch;

namespace Spectrum.Modeling;

public sealed class LlamaDecoderLayer : nn.Module<Tensor, Tensor, Tensor, Tensor?, Tensor>
{
    // Field names are the checkpoint keys ("model.layers.{i}.self_attn…", "…input_layernorm.weight").
    private readonly LlamaAttention self_attn;
    private readonly LlamaMlp mlp;
    private readonly LlamaRmsNorm input_layernorm;
    private readonly LlamaRmsNorm post_attention_layernorm;

    public LlamaDecoderLayer(LlamaConfig config, ScalarType dtype, Device? device) : base(nameof(LlamaDecoderLayer))
    {
        self_attn = new LlamaAttention(config, dtype, device);
        mlp = new LlamaMlp(config, dtype, device);
        input_layernorm = new LlamaRmsNorm(config.HiddenSize, config.RmsNormEps, dtype, device);
        post_attention_layernorm = new LlamaRmsNorm(config.HiddenSize, config.RmsNormEps, dtype, device);
        // Hugging Face's parameter order: self_attn, mlp, input_layernorm, post_attention_layernorm.
        register_module(nameof(self_attn), self_attn);
        register_module(nameof(mlp), mlp);
        register_module(nameof(input_layernorm), input_layernorm);
        register_module(nameof(post_attention_layernorm), post_attention_layernorm);
    }

    public LlamaAttention SelfAttention => self_attn;

    public LlamaMlp Mlp => mlp;

    public LlamaRmsNorm InputLayerNorm => input_layernorm;

    public LlamaRmsNorm PostAttentionLayerNorm => post_attention_layernorm;

    /// <summary>
    /// x is (batch, seq, hidden); cos/sin are (batch, seq, head_dim); <paramref name="allowedPairs"/> is null (causal over
    /// the row) or (batch, 1, seq, seq) bool, see <see cref="PackedDocuments.AllowedPairs"/>; returns (batch, seq, hidden).
    /// </summary>
    public override Tensor forward(Tensor x, Tensor cos, Tensor sin, Tensor? allowedPairs)
    {
        using var scope = torch.NewDisposeScope();
        var afterAttention = x.add(self_attn.call(input_layernorm.call(x), cos, sin, allowedPairs));
        var output = afterAttention.add(mlp.call(post_attention_layernorm.call(afterAttention)));
        return output.MoveToOuterDisposeScope();
    }

    /// <summary>As <see cref="forward"/> for new tokens after those in <paramref name="cache"/> (see <see cref="LlamaAttention.ForwardCached"/>).</summary>
    internal Tensor ForwardCached(Tensor x, Tensor cos, Tensor sin, KeyValueCache cache, int layer)
    {
        using var scope = torch.NewDisposeScope();
        var afterAttention = x.add(self_attn.ForwardCached(input_layernorm.call(x), cos, sin, cache, layer));
        var output = afterAttention.add(mlp.call(post_attention_layernorm.call(afterAttention)));
        return output.MoveToOuterDisposeScope();
    }
}
