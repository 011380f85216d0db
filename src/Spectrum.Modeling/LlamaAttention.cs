// Grouped-query causal self-attention of a Llama-family decoder layer, with HF-named, replaceable q/k/v/o projections, for training and cached generation.
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Spectrum.Modeling;

/// <summary>
/// q/k/v/o projections are typed as plain <c>Module&lt;Tensor, Tensor&gt;</c> so adapters (LoRA, quantised
/// wrappers) can stand in for them under the same checkpoint names; see <see cref="LlamaForCausalLM.ReplaceModule"/>.
/// </summary>
public sealed class LlamaAttention : nn.Module<Tensor, Tensor, Tensor, Tensor?, Tensor>
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

    /// <summary>
    /// x is (batch, seq, hidden); cos/sin are (batch, seq, head_dim); <paramref name="allowedPairs"/> is null for causal
    /// attention over the whole row, or (batch, 1, seq, seq) bool, true where query i may attend key j (causal and within
    /// one packed document); returns (batch, seq, hidden).
    /// </summary>
    public override Tensor forward(Tensor x, Tensor cos, Tensor sin, Tensor? allowedPairs)
    {
        using var scope = torch.NewDisposeScope();
        var (q, k, v) = Project(x, cos, sin);
        return Output(Attend(q, k, v, allowedPairs)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Attention for generation: x holds the new tokens only, (batch, new, hidden), at positions cache.Length onwards
    /// (cos/sin for those positions); their keys and values are stored in <paramref name="cache"/>'s slot for
    /// <paramref name="layer"/> and each new token attends to everything cached before it and itself.
    /// </summary>
    internal Tensor ForwardCached(Tensor x, Tensor cos, Tensor sin, KeyValueCache cache, int layer)
    {
        using var scope = torch.NewDisposeScope();
        long start = cache.Length;
        var (q, k, v) = Project(x, cos, sin);
        var (keys, values) = cache.Store(layer, k, v);                                         // (batch, kv_heads, start+new, head_dim)
        // An empty cache is an ordinary causal pass (the prompt); later tokens also see the cached ones.
        var attended = start == 0 ? Attend(q, k, v, null) : GroupedEagerAttention(q, keys, values, _heads / _keyValueHeads, queryOffset: start);
        return Output(attended).MoveToOuterDisposeScope();
    }

    /// <summary>x (batch, seq, hidden) → q (batch, heads, seq, head_dim), k and v (batch, kv_heads, seq, head_dim), q and k rotated.</summary>
    private (Tensor Q, Tensor K, Tensor V) Project(Tensor x, Tensor cos, Tensor sin)
    {
        long batch = x.shape[0], seq = x.shape[1];
        var q = q_proj.call(x).view(batch, seq, _heads, _headDim).transpose(1, 2);
        var k = k_proj.call(x).view(batch, seq, _keyValueHeads, _headDim).transpose(1, 2);
        var v = v_proj.call(x).view(batch, seq, _keyValueHeads, _headDim).transpose(1, 2);
        return (RotaryEmbedding.Apply(q, cos, sin), RotaryEmbedding.Apply(k, cos, sin), v);
    }

    /// <summary>(batch, heads, seq, head_dim) attention output → (batch, seq, hidden) through o_proj.</summary>
    private Tensor Output(Tensor attended)
    {
        long batch = attended.shape[0], seq = attended.shape[2];
        var merged = attended.transpose(1, 2).reshape(batch, seq, _heads * _headDim);      // (batch, seq, heads·head_dim)
        return o_proj.call(merged);
    }

    /// <summary>Causal (or <paramref name="allowedPairs"/>-masked) attention of equally long q and k/v: explicit or fused, by size.</summary>
    private Tensor Attend(Tensor q, Tensor k, Tensor v, Tensor? allowedPairs)
    {
        long batch = q.shape[0], seq = q.shape[2];
        int group = _heads / _keyValueHeads;
        if (UsesEagerAttention(q.dtype, batch, _heads, seq))
        {
            return GroupedEagerAttention(q, k, v, group, allowedPairs);
        }
        if (group > 1)
        {
            // Query head h reads key/value head h / group (HF repeat_kv); TorchSharp's SDPA has no enable_gqa.
            k = k.repeat_interleave(group, dim: 1);                                          // (batch, heads, seq, head_dim)
            v = v.repeat_interleave(group, dim: 1);
        }
        // Default scale is 1/sqrt(head_dim), as in Llama. A mask replaces the causal flag (it is causal itself).
        return allowedPairs is null
            ? nn.functional.scaled_dot_product_attention(q, k, v, is_casual: true)         // (batch, heads, seq, head_dim)
            : nn.functional.scaled_dot_product_attention(q, k, v, attn_mask: allowedPairs);
    }

    /// <summary>
    /// Score elements (batch · heads · seq²) up to which bf16/f16 attention is computed explicitly rather than by
    /// LibTorch's fused kernel. On CPU that kernel converts reduced precision to float32 internally and measured about
    /// twice as slow as bf16 matrix products at SmolLM's shape (9 heads, sequence 256: 0.08 vs 0.14 s per step, forward
    /// and backward over 30 layers); the explicit form keeps the probabilities for backward (≈6 bytes per score: 3.5 MB
    /// per layer at that shape), so it is used only while they stay that small.
    /// </summary>
    internal const long EagerScoreLimit = 1L << 20;

    // Tests compare both paths on one model by overriding the limit on their own thread only.
    [ThreadStatic] internal static long? EagerScoreLimitOverride;

    /// <summary>True when <see cref="forward"/> takes the explicit path for these sizes (see <see cref="EagerScoreLimit"/>).</summary>
    internal static bool UsesEagerAttention(ScalarType dtype, long batch, long heads, long seq) =>
        dtype is ScalarType.BFloat16 or ScalarType.Float16 && batch * heads * seq * seq <= (EagerScoreLimitOverride ?? EagerScoreLimit);

    /// <summary>
    /// Causal attention as Hugging Face's eager Llama attention computes it — scores = q·kᵀ/√d in the model dtype,
    /// masked, softmax in float32 (or the input's wider dtype), rounded back, times v — with each key/value head shared
    /// by its query heads through a reshape instead of a copy: query heads of one group stack along the sequence axis.
    /// </summary>
    /// <param name="q">(batch, heads, queries, head_dim)</param>
    /// <param name="k">(batch, kv_heads, keys, head_dim); keys = queryOffset + queries</param>
    /// <param name="v">(batch, kv_heads, keys, head_dim)</param>
    /// <param name="allowedPairs">Null (causal), or (batch, 1, seq, seq) bool: true where query i may attend key j (offset 0 only).</param>
    /// <param name="queryOffset">Position of the first query among the keys: query i attends keys 0..queryOffset + i.</param>
    internal static Tensor GroupedEagerAttention(Tensor q, Tensor k, Tensor v, int group, Tensor? allowedPairs = null, long queryOffset = 0)
    {
        long batch = q.shape[0], heads = q.shape[1], queries = q.shape[2], headDim = q.shape[3];
        long keyValueHeads = k.shape[1], keys = k.shape[2];
        var stacked = q.reshape(batch, keyValueHeads, group * queries, headDim);              // row g·queries + s is query s of head kv·group + g
        var scores = torch.matmul(stacked, k.transpose(-2, -1)).mul_(1.0 / Math.Sqrt(headDim)); // (batch, kv_heads, group·queries, keys)
        var masked = allowedPairs is null
            ? torch.ones(queries, keys, dtype: ScalarType.Bool, device: q.device).triu_(1 + queryOffset) // key after query
            : allowedPairs.logical_not();                                                    // (batch, 1, seq, seq)
        if (group > 1)
        {
            // Tiled along the query axis, matching the stacked rows: row g·queries + s is query s.
            var tiles = Enumerable.Repeat(1L, (int)masked.dim()).ToArray();
            tiles[^2] = group;
            masked = masked.repeat(tiles);
        }
        scores = scores.masked_fill_(masked, double.NegativeInfinity);
        var softmaxType = q.dtype is ScalarType.BFloat16 or ScalarType.Float16 ? ScalarType.Float32 : q.dtype;
        var probabilities = nn.functional.softmax(scores, -1, softmaxType).to(q.dtype);
        return torch.matmul(probabilities, v).reshape(batch, heads, queries, headDim);
    }

    private static ArgumentException UnknownProjection(string name) =>
        new($"'{name}' is not an attention projection; expected one of {string.Join(", ", ProjectionNames)}.");
}
