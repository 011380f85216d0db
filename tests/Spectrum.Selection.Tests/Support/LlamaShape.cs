// Hugging Face Llama tensor names and element counts for any size, built from the config dimensions (no weights).
namespace Spectrum.Selection.Tests.Support;

internal sealed record LlamaShape(
    int Layers, long Hidden, long Intermediate, int Heads, int KeyValueHeads, long Vocabulary,
    bool TiedEmbeddings = false, bool AttentionBias = false)
{
    /// <summary>meta-llama/Meta-Llama-3-8B's config.json: 8,030,261,248 parameters.</summary>
    public static LlamaShape Llama3_8B { get; } = new(32, 4096, 14336, 32, 8, 128256);

    public static readonly string[] LinearModules =
        ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"];

    public static readonly string[] NormModules = ["input_layernorm", "post_attention_layernorm"];

    /// <summary>Every tensor in the checkpoint's order: embeddings, each layer, final norm, head (unless tied).</summary>
    public IReadOnlyList<(string Name, long Elements)> Tensors()
    {
        long headDim = Hidden / Heads;
        long keyValue = KeyValueHeads * headDim;
        var tensors = new List<(string, long)> { ("model.embed_tokens.weight", Vocabulary * Hidden) };
        for (int layer = 0; layer < Layers; layer++)
        {
            string prefix = $"model.layers.{layer}.";
            tensors.Add((prefix + "input_layernorm.weight", Hidden));
            foreach (var (name, rows) in new[] { ("q_proj", Hidden), ("k_proj", keyValue), ("v_proj", keyValue), ("o_proj", Hidden) })
            {
                tensors.Add((prefix + $"self_attn.{name}.weight", rows * Hidden));
                if (AttentionBias)
                    tensors.Add((prefix + $"self_attn.{name}.bias", rows));
            }
            tensors.Add((prefix + "post_attention_layernorm.weight", Hidden));
            tensors.Add((prefix + "mlp.gate_proj.weight", Intermediate * Hidden));
            tensors.Add((prefix + "mlp.up_proj.weight", Intermediate * Hidden));
            tensors.Add((prefix + "mlp.down_proj.weight", Hidden * Intermediate));
        }
        tensors.Add(("model.norm.weight", Hidden));
        if (!TiedEmbeddings)
            tensors.Add(("lm_head.weight", Vocabulary * Hidden));
        return tensors;
    }
}
