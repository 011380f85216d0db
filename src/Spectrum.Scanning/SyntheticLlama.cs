// Generates Llama-shaped safetensors checkpoints with planted low-rank signal over noise, for the demo, tests and benchmarks.
using System.Text.Json;
using System.Text.Json.Nodes;
using Spectrum.Checkpoints;
using TorchSharp;

namespace Spectrum.Scanning;

/// <summary>The dimensions of a Llama-family decoder; presets mirror real models' shapes.</summary>
public sealed record LlamaShape(
    string Name, int HiddenSize, int IntermediateSize, int Layers, int Heads, int KeyValueHeads, int VocabSize, bool TieEmbeddings)
{
    public int HeadDim => HiddenSize / Heads;

    public static LlamaShape Demo { get; } = new("demo", 256, 688, 8, 8, 4, 2048, true);
    public static LlamaShape SmolLM135M { get; } = new("SmolLM-135M", 576, 1536, 30, 9, 3, 49152, true);
    public static LlamaShape TinyLlama1B { get; } = new("TinyLlama-1.1B", 2048, 5632, 22, 32, 4, 32000, false);
    public static LlamaShape Llama3_8B { get; } = new("Llama-3-8B", 4096, 14336, 32, 32, 8, 128256, false);

    public static IReadOnlyList<LlamaShape> Presets { get; } = [Demo, SmolLM135M, TinyLlama1B, Llama3_8B];

    /// <summary>Every tensor of the model in Hugging Face naming, as (name, shape).</summary>
    public IReadOnlyList<(string Name, long[] Shape)> TensorShapes()
    {
        long kv = (long)KeyValueHeads * HeadDim;
        var shapes = new List<(string, long[])> { ("model.embed_tokens.weight", [VocabSize, HiddenSize]) };
        for (int layer = 0; layer < Layers; layer++)
        {
            string p = $"model.layers.{layer}.";
            shapes.Add((p + "input_layernorm.weight", [HiddenSize]));
            shapes.Add((p + "self_attn.q_proj.weight", [(long)Heads * HeadDim, HiddenSize]));
            shapes.Add((p + "self_attn.k_proj.weight", [kv, HiddenSize]));
            shapes.Add((p + "self_attn.v_proj.weight", [kv, HiddenSize]));
            shapes.Add((p + "self_attn.o_proj.weight", [HiddenSize, (long)Heads * HeadDim]));
            shapes.Add((p + "post_attention_layernorm.weight", [HiddenSize]));
            shapes.Add((p + "mlp.gate_proj.weight", [IntermediateSize, HiddenSize]));
            shapes.Add((p + "mlp.up_proj.weight", [IntermediateSize, HiddenSize]));
            shapes.Add((p + "mlp.down_proj.weight", [HiddenSize, IntermediateSize]));
        }
        shapes.Add(("model.norm.weight", [HiddenSize]));
        if (!TieEmbeddings) shapes.Add(("lm_head.weight", [VocabSize, HiddenSize]));
        return shapes;
    }

    public long ParameterCount => TensorShapes().Sum(t => t.Shape.Aggregate(1L, (a, b) => a * b));

    /// <summary>A Hugging Face `config.json` for this shape.</summary>
    public string ConfigJson(SafetensorsDType dtype)
    {
        var config = new JsonObject
        {
            ["architectures"] = new JsonArray("LlamaForCausalLM"),
            ["model_type"] = "llama",
            ["hidden_size"] = HiddenSize,
            ["intermediate_size"] = IntermediateSize,
            ["num_hidden_layers"] = Layers,
            ["num_attention_heads"] = Heads,
            ["num_key_value_heads"] = KeyValueHeads,
            ["head_dim"] = HeadDim,
            ["vocab_size"] = VocabSize,
            ["max_position_embeddings"] = 2048,
            ["rms_norm_eps"] = 1e-5,
            ["rope_theta"] = 10000.0,
            ["hidden_act"] = "silu",
            ["tie_word_embeddings"] = TieEmbeddings,
            ["torch_dtype"] = dtype switch
            {
                SafetensorsDType.BF16 => "bfloat16",
                SafetensorsDType.F16 => "float16",
                _ => "float32",
            },
        };
        return config.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }
}

/// <summary>
/// Writes a checkpoint whose projections are Gaussian noise plus a planted low-rank signal whose rank and strength vary
/// by layer and module type, so scores differ and a selection is meaningful. Tensors are generated one at a time while
/// being written: generating an 8B checkpoint needs memory for one tensor, not the model.
/// </summary>
public static class SyntheticLlama
{
    public const double NoiseStd = 0.02;

    public static void Write(string folder, LlamaShape shape, SafetensorsDType dtype, long maxShardBytes, int seed)
    {
        if (dtype is not (SafetensorsDType.BF16 or SafetensorsDType.F16 or SafetensorsDType.F32))
            throw new ArgumentException($"Synthetic checkpoints are BF16, F16 or F32, not {dtype}.", nameof(dtype));
        var shapes = shape.TensorShapes();
        var tensors = shapes.Select((t, index) => new TensorToWrite(
            t.Name, dtype, t.Shape, stream => WriteTensor(stream, t.Name, t.Shape, dtype, seed * 100_003L + index))).ToList();
        Directory.CreateDirectory(folder);
        ShardedCheckpointWriter.Write(folder, tensors, maxShardBytes, shape.ConfigJson(dtype));
    }

    /// <summary>Planted rank and strength (in multiples of the noise edge) for one module: deterministic, varied.</summary>
    public static (int Rank, double Strength) PlantedSignal(string tensorName)
    {
        uint hash = 2166136261;
        foreach (char c in tensorName) hash = (hash ^ c) * 16777619;
        int rank = 1 + (int)(hash % 12);
        double strength = 1.5 + (hash >> 8) % 1000 / 250.0;
        return (rank, strength);
    }

    private static void WriteTensor(Stream stream, string name, long[] shape, SafetensorsDType dtype, long seed)
    {
        using var scope = torch.NewDisposeScope();
        var generator = new torch.Generator((ulong)seed);
        torch.Tensor values;
        if (shape.Length == 1)
        {
            // Norm weights: around 1, like trained RMSNorm gains.
            values = 1 + 0.05 * torch.randn(shape, torch.float32, generator: generator);
        }
        else if (name.Contains("embed_tokens") || name.EndsWith("lm_head.weight", StringComparison.Ordinal))
        {
            values = NoiseStd * torch.randn(shape, torch.float32, generator: generator);
        }
        else
        {
            long rows = shape[0], cols = shape[1];
            var (rank, strength) = PlantedSignal(name);
            // W (rows, cols) = noise + U diag(s) Vᵀ; U (rows, r), V (cols, r) have near-orthonormal columns.
            var noise = torch.randn(shape, torch.float32, generator: generator).mul_(NoiseStd);
            double edge = NoiseStd * (Math.Sqrt(rows) + Math.Sqrt(cols));
            var u = torch.randn(new[] { rows, (long)rank }, torch.float32, generator: generator).div_(Math.Sqrt(rows));
            var v = torch.randn(new[] { cols, (long)rank }, torch.float32, generator: generator).div_(Math.Sqrt(cols));
            var s = torch.linspace(strength, strength / 2, rank, torch.float32).mul_(edge);
            values = noise.add_(u.mul(s).matmul(v.t()));
        }
        var encoded = dtype switch
        {
            SafetensorsDType.BF16 => values.to(torch.bfloat16),
            SafetensorsDType.F16 => values.to(torch.float16),
            _ => values,
        };
        WriteBytes(stream, encoded.contiguous());
    }

    /// <summary>Streams a CPU tensor's bytes in slices small enough for a span.</summary>
    internal static void WriteBytes(Stream stream, torch.Tensor tensor)
    {
        var flat = tensor.reshape(-1);
        long total = flat.numel(), step = Math.Max(1, (1L << 28) / flat.element_size());
        for (long start = 0; start < total; start += step)
        {
            using var slice = flat.narrow(0, start, Math.Min(step, total - start));
            stream.Write(slice.bytes);
        }
    }
}
