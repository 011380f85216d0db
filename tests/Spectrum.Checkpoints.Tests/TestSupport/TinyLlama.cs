// A miniature Llama-shaped checkpoint (names and shapes as Hugging Face writes them) for checkpoint-level tests.
using System.Globalization;

namespace Spectrum.Checkpoints.Tests.TestSupport;

internal sealed record TinyLlama(
    int Hidden = 8,
    int Heads = 2,
    int KeyValueHeads = 1,
    int Intermediate = 12,
    int Layers = 2,
    int Vocab = 10,
    bool Tied = false,
    string ModelType = "llama")
{
    private int HeadDim => Hidden / Heads;

    public string ConfigJson() => string.Create(CultureInfo.InvariantCulture, $$"""
        {
          "architectures": ["LlamaForCausalLM"],
          "model_type": "{{ModelType}}",
          "hidden_size": {{Hidden}},
          "intermediate_size": {{Intermediate}},
          "num_hidden_layers": {{Layers}},
          "num_attention_heads": {{Heads}},
          "num_key_value_heads": {{KeyValueHeads}},
          "vocab_size": {{Vocab}},
          "tie_word_embeddings": {{(Tied ? "true" : "false")}},
          "rms_norm_eps": 1e-05,
          "rope_theta": 500000.0,
          "torch_dtype": "bfloat16"
        }
        """);

    /// <summary>Every tensor the config implies, each filled with a value derived from its position in the list.</summary>
    public List<TensorToWrite> Tensors()
    {
        var shapes = new List<(string Name, long[] Shape)> { ("model.embed_tokens.weight", [Vocab, Hidden]) };
        for (int layer = 0; layer < Layers; layer++)
        {
            string prefix = $"model.layers.{layer}.";
            shapes.Add((prefix + "input_layernorm.weight", [Hidden]));
            shapes.Add((prefix + "self_attn.q_proj.weight", [Heads * HeadDim, Hidden]));
            shapes.Add((prefix + "self_attn.k_proj.weight", [KeyValueHeads * HeadDim, Hidden]));
            shapes.Add((prefix + "self_attn.v_proj.weight", [KeyValueHeads * HeadDim, Hidden]));
            shapes.Add((prefix + "self_attn.o_proj.weight", [Hidden, Heads * HeadDim]));
            shapes.Add((prefix + "post_attention_layernorm.weight", [Hidden]));
            shapes.Add((prefix + "mlp.gate_proj.weight", [Intermediate, Hidden]));
            shapes.Add((prefix + "mlp.up_proj.weight", [Intermediate, Hidden]));
            shapes.Add((prefix + "mlp.down_proj.weight", [Hidden, Intermediate]));
        }
        shapes.Add(("model.norm.weight", [Hidden]));
        if (!Tied)
        {
            shapes.Add(("lm_head.weight", [Vocab, Hidden]));
        }
        return shapes.Select((tensor, index) => Filled(tensor.Name, tensor.Shape, index)).ToList();
    }

    public static TensorToWrite Filled(string name, long[] shape, int seed)
    {
        long count = shape.Aggregate(1L, (product, dimension) => product * dimension);
        var values = Enumerable.Range(0, (int)count).Select(i => seed + i / 1024f).ToArray();
        return TensorToWrite.FromFloat32(name, SafetensorsDType.F32, shape, values);
    }
}
