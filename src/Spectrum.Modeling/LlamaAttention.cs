// Grouped-query causal self-attention of a Llama-family decoder layer, with HF-named, replaceable q/k/v/o projections; no KV cache (training only).
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Spectrum.Modeling;

/// <summary>
/// q/k/v/o projections are typed as plain <c>Module&lt;Tensor, Tensor&gt;</c> so adapters (LoRA, quantised
/// wrappers) can stand in for them under the same checkpoint names; see <see cref="LlamaForCausalLM.ReplaceModule"/>.
/// </summary>
public sealed class LlamaAttention : nn.Module<Tensor, Tensor, Tensor, Tensor>
{
    public static IReadOnlyList<string> ProjectionNames { get; } = ["q_proj", "k_proj", "v_proj", "o_proj"];

    private readonly int _heads;
    private readonly int _keyValueHeads;
    private readonly int _headDim;

    // Field names are the checkpoint keys ("…self_attn.q_proj.weight").
    private nn.Module<Tensor, Tensor> q_proj;
    private nn.Module<Tensor, Tensor> k_proj;
    private nn.Module<Tensor, Tensor> v_proj;
    private nn.Module<Tensor, Tensor> o_proj;

    public LlamaAttention(LlamaConfig config, ScalarType dtype, Device? device) : base(nameof(LlamaAttention))
    {
        _heads = config.NumAttentionHeads;
        _keyValueHeads = config.NumKeyValueHeads;
        _headDim = config.HeadDim;
        long hidden = config.HiddenSize, queryWidth = (long)_heads * _headDim, keyValueWidth = (long)_keyValueHeads * _headDim;
        q_proj = LinearFactory.Create(hidden, queryWidth, config.AttentionBias, dtype, device);
        k_proj = LinearFactory.Create(hidden, keyValueWidth, config.AttentionBias, dtype, device);
        v_proj = LinearFactory.Create(hidden, keyValueWidth, config.AttentionBias, dtype, device);
        o_proj = LinearFactory.Create(queryWidth, hidden, config.OutputProjectionBias, dtype, device);
        // Explicit registration fixes the parameter order to the Hugging Face order (q, k, v, o).
        register_module(nameof(q_proj), q_proj);
        register_module(nameof(k_proj), k_proj);
        register_module(nameof(v_proj), v_proj);
        register_module(nameof(o_proj), o_proj);
    }

    public nn.Module<Tensor, Tensor> GetProjection(string name) => name switch
    {
        nameof(q_proj) => q_proj,
        nameof(k_proj) => k_proj,
        nameof(v_proj) => v_proj,
        nameof(o_proj) => o_proj,
        _ => throw UnknownProjection(name),
    };

    internal void ReplaceProjection(string name, nn.Module<Tensor, Tensor> replacement)
    {
        switch (name)
        {
            case nameof(q_proj): q_proj = replacement; break;
            case nameof(k_proj): k_proj = replacement; break;
            case nameof(v_proj): v_proj = replacement; break;
            case nameof(o_proj): o_proj = replacement; break;
            default: throw UnknownProjection(name);
        }
        SubmoduleSlots.Replace(_internal_submodules, this, name, replacement);
    }

    /// <summary>x is (batch, seq, hidden); cos/sin are (batch, seq, head_dim); returns (batch, seq, hidden).</summary>
    public override Tensor forward(Tensor x, Tensor cos, Tensor sin)
    {
        using var scope = torch.NewDisposeScope();
        long batch = x.shape[0], seq = x.shape[1];
        var q = q_proj.call(x).view(batch, seq, _heads, _headDim).transpose(1, 2);         // (batch, heads, seq, head_dim)
        var k = k_proj.call(x).view(batch, seq, _keyValueHeads, _headDim).transpose(1, 2); // (batch, kv_heads, seq, head_dim)
        var v = v_proj.call(x).view(batch, seq, _keyValueHeads, _headDim).transpose(1, 2); // (batch, kv_heads, seq, head_dim)
        q = RotaryEmbedding.Apply(q, cos, sin);
        k = RotaryEmbedding.Apply(k, cos, sin);
        int group = _heads / _keyValueHeads;
        if (group > 1)
        {
            // Query head h reads key/value head h / group (HF repeat_kv); TorchSharp's SDPA has no enable_gqa.
            k = k.repeat_interleave(group, dim: 1);                                          // (batch, heads, seq, head_dim)
            v = v.repeat_interleave(group, dim: 1);
        }
        // Default scale is 1/sqrt(head_dim), as in Llama.
        var attended = nn.functional.scaled_dot_product_attention(q, k, v, is_casual: true); // (batch, heads, seq, head_dim)
        var merged = attended.transpose(1, 2).reshape(batch, seq, _heads * _headDim);      // (batch, seq, heads·head_dim)
        return o_proj.call(merged).MoveToOuterDisposeScope();
    }

    private static ArgumentException UnknownProjection(string name) =>
        new($"'{name}' is not an attention projection; expected one of {string.Join(", ", ProjectionNames)}.");
}
