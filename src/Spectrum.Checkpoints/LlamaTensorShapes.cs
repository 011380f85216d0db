// The tensor names and shapes a Llama-family config.json implies, compared with what a checkpoint actually holds.
using System.Globalization;

namespace Spectrum.Checkpoints;

/// <summary>
/// One disagreement between config.json and the weights. <see cref="FoundShape"/> is null for a tensor the config
/// requires but the checkpoint lacks; <see cref="ExpectedShape"/> is null for a tensor the config rules out.
/// </summary>
public sealed record ConfigMismatch(
    string TensorName,
    IReadOnlyList<long>? ExpectedShape,
    IReadOnlyList<long>? FoundShape,
    string Explanation);

/// <summary>
/// Expected shapes for Hugging Face Llama-style names (Llama, Mistral, Qwen2/3, Mixtral experts). Weight matrices
/// are stored [out_features, in_features], so q_proj is [num_attention_heads × head_dim, hidden_size].
/// </summary>
public static class LlamaTensorShapes
{
    private const string LayerPrefix = "model.layers.";

    public static IReadOnlyList<ConfigMismatch> FindMismatches(ModelConfig config, IReadOnlyList<TensorEntry> tensors)
    {
        var byName = tensors.ToDictionary(tensor => tensor.Name, StringComparer.Ordinal);
        var mismatches = new List<ConfigMismatch>();
        long hidden = config.HiddenSize;
        long vocab = config.VocabSize;
        long intermediate = config.IntermediateSize;
        long queryWidth = (long)config.NumAttentionHeads * config.HeadDim;
        long keyValueWidth = (long)config.NumKeyValueHeads * config.HeadDim;

        void Expect(string name, bool required, string formula, params long[] expected)
        {
            if (!byName.TryGetValue(name, out var found))
            {
                if (required)
                {
                    mismatches.Add(new ConfigMismatch(name, expected, null,
                        $"missing; config.json implies it with shape {formula} = {TensorEntry.FormatShape(expected)}"));
                }
                return;
            }
            if (!found.Shape.SequenceEqual(expected))
            {
                mismatches.Add(new ConfigMismatch(name, expected, found.Shape,
                    $"expected shape {formula} = {TensorEntry.FormatShape(expected)} but found {found.ShapeText}"));
            }
        }

        Expect("model.embed_tokens.weight", true, "[vocab_size, hidden_size]", vocab, hidden);
        bool isMoE = config.NumLocalExperts is not null || config.Raw["num_experts"] is not null;
        for (int layer = 0; layer < config.NumHiddenLayers; layer++)
        {
            string prefix = $"{LayerPrefix}{layer}.";
            Expect(prefix + "input_layernorm.weight", true, "[hidden_size]", hidden);
            Expect(prefix + "post_attention_layernorm.weight", true, "[hidden_size]", hidden);

            const string QueryRows = "num_attention_heads × head_dim";
            const string KeyValueRows = "num_key_value_heads × head_dim";
            Expect(prefix + "self_attn.q_proj.weight", true, $"[{QueryRows}, hidden_size]", queryWidth, hidden);
            Expect(prefix + "self_attn.k_proj.weight", true, $"[{KeyValueRows}, hidden_size]", keyValueWidth, hidden);
            Expect(prefix + "self_attn.v_proj.weight", true, $"[{KeyValueRows}, hidden_size]", keyValueWidth, hidden);
            Expect(prefix + "self_attn.o_proj.weight", true, $"[hidden_size, {QueryRows}]", hidden, queryWidth);
            Expect(prefix + "self_attn.q_proj.bias", config.AttentionBias, $"[{QueryRows}]", queryWidth);
            Expect(prefix + "self_attn.k_proj.bias", config.AttentionBias, $"[{KeyValueRows}]", keyValueWidth);
            Expect(prefix + "self_attn.v_proj.bias", config.AttentionBias, $"[{KeyValueRows}]", keyValueWidth);
            Expect(prefix + "self_attn.o_proj.bias", false, "[hidden_size]", hidden);
            // Qwen3 normalises each head's queries and keys.
            Expect(prefix + "self_attn.q_norm.weight", false, "[head_dim]", config.HeadDim);
            Expect(prefix + "self_attn.k_norm.weight", false, "[head_dim]", config.HeadDim);

            if (config.ModelType == "mixtral" && config.NumLocalExperts is int experts)
            {
                Expect(prefix + "block_sparse_moe.gate.weight", true, "[num_local_experts, hidden_size]",
                    experts, hidden);
                for (int expert = 0; expert < experts; expert++)
                {
                    string expertPrefix = $"{prefix}block_sparse_moe.experts.{expert}.";
                    Expect(expertPrefix + "w1.weight", true, "[intermediate_size, hidden_size]", intermediate, hidden);
                    Expect(expertPrefix + "w2.weight", true, "[hidden_size, intermediate_size]", hidden, intermediate);
                    Expect(expertPrefix + "w3.weight", true, "[intermediate_size, hidden_size]", intermediate, hidden);
                }
            }
            else if (!isMoE)
            {
                Expect(prefix + "mlp.gate_proj.weight", true, "[intermediate_size, hidden_size]", intermediate, hidden);
                Expect(prefix + "mlp.up_proj.weight", true, "[intermediate_size, hidden_size]", intermediate, hidden);
                Expect(prefix + "mlp.down_proj.weight", true, "[hidden_size, intermediate_size]", hidden, intermediate);
            }
            // Other MoE layouts (Qwen-MoE, DeepSeek) name experts differently; their MLPs are not checked here.
        }
        Expect("model.norm.weight", true, "[hidden_size]", hidden);
        // Tied embeddings reuse embed_tokens, but some exporters still store lm_head; check it whenever present.
        Expect("lm_head.weight", !config.TieWordEmbeddings, "[vocab_size, hidden_size]", vocab, hidden);

        foreach (var tensor in tensors)
        {
            if (LayerIndex(tensor.Name) is int layer && layer >= config.NumHiddenLayers)
            {
                mismatches.Add(new ConfigMismatch(tensor.Name, null, tensor.Shape,
                    $"belongs to layer {layer}, but config.json says num_hidden_layers = {config.NumHiddenLayers} " +
                    $"(layers 0..{config.NumHiddenLayers - 1})"));
            }
        }
        return mismatches;
    }

    private static int? LayerIndex(string tensorName)
    {
        if (!tensorName.StartsWith(LayerPrefix, StringComparison.Ordinal))
        {
            return null;
        }
        var rest = tensorName.AsSpan(LayerPrefix.Length);
        int dot = rest.IndexOf('.');
        var digits = dot < 0 ? rest : rest[..dot];
        return int.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out int layer) ? layer : null;
    }
}
