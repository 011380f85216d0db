// Strict loading: every kind of mismatch is reported together before any weight is copied; tied heads are checked; dtypes convert.
using Spectrum.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Spectrum.Modeling.Tests;

public sealed class CheckpointLoaderTests
{
    private static readonly LlamaConfig Config = LlamaConfig.Tiny(hiddenSize: 32, intermediateSize: 48, vocabSize: 40);

    /// <summary>The model's own tensors as F32 write requests, for building (possibly broken) checkpoints.</summary>
    private static List<TensorToWrite> TensorsOf(LlamaForCausalLM model) =>
        model.named_parameters()
            .Select(pair => TensorToWrite.FromFloat32(pair.name, SafetensorsDType.F32, pair.parameter.shape,
                Tensors.Floats(pair.parameter)))
            .ToList();

    private static TensorToWrite Zeros(string name, SafetensorsDType dtype, params long[] shape) =>
        TensorToWrite.FromBytes(name, dtype, shape,
            new byte[shape.Aggregate(1L, (a, b) => a * b) * SafetensorsDTypes.BitsPerElement(dtype) / 8]);

    private static void Write(string folder, LlamaConfig config, IReadOnlyList<TensorToWrite> tensors, long maxShardBytes = long.MaxValue) =>
        ShardedCheckpointWriter.Write(folder, tensors, maxShardBytes, config.ToConfigJson("float32"));

    /// <summary>Tensors larger than a span copy in blocks of rows; tiny blocks here exercise that path (same bytes as one copy).</summary>
    [Fact]
    public void Copying_in_blocks_of_rows_loads_the_same_weights()
    {
        using var folder = new TemporaryFolder();
        using var source = new LlamaForCausalLM(Config, generator: new Generator(6));
        Write(folder.Path, Config, TensorsOf(source));
        long saved = CheckpointLoader.ChunkBytes;
        LlamaForCausalLM chunked;
        try
        {
            CheckpointLoader.ChunkBytes = 100;   // under one 32-float row: one row per block
            chunked = LlamaForCausalLM.FromPretrained(folder.Path);
        }
        finally
        {
            CheckpointLoader.ChunkBytes = saved;
        }
        using (chunked)
        {
            var loaded = chunked.named_parameters().ToDictionary(p => p.name, p => p.parameter);
            foreach (var (name, parameter) in source.named_parameters())
                Assert.Equal(Tensors.Floats(parameter), Tensors.Floats(loaded[name]));
        }
    }

    [Fact]
    public void Diverted_tensors_go_to_the_callback_in_the_models_dtype_and_the_rest_load_as_usual()
    {
        using var folder = new TemporaryFolder();
        using var source = new LlamaForCausalLM(Config, generator: new Generator(5));
        Write(folder.Path, Config, TensorsOf(source), maxShardBytes: 20_000);
        var received = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var diversion = new LoadDiversion(name => name.EndsWith("mlp.up_proj.weight", StringComparison.Ordinal),
            (name, tensor) => received.Add(name, tensor.clone()));

        using var loaded = LlamaForCausalLM.FromPretrained(folder.Path, ScalarType.BFloat16, diversion);

        Assert.Equal(Enumerable.Range(0, Config.NumHiddenLayers).Select(l => $"model.layers.{l}.mlp.up_proj.weight"), received.Keys);
        var original = source.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);
        foreach (var (name, tensor) in received)
        {
            Assert.Equal(ScalarType.BFloat16, tensor.dtype);
            Assert.True(original[name].to(ScalarType.BFloat16).eq(tensor).all().item<bool>(), name);
        }
        foreach (var (name, parameter) in loaded.named_parameters().Where(p => !received.ContainsKey(p.name)))
            Assert.True(original[name].to(ScalarType.BFloat16).eq(parameter).all().item<bool>(), name);
    }

    [Fact]
    public void Every_kind_of_mismatch_is_listed_in_one_error_and_nothing_is_copied()
    {
        using var folder = new TemporaryFolder();
        using var source = new LlamaForCausalLM(Config, generator: new Generator(1));
        var tensors = TensorsOf(source)
            .Where(t => t.Name != "model.layers.1.mlp.up_proj.weight" && t.Name != "lm_head.weight")
            .Select(t => t.Name switch
            {
                "model.norm.weight" => Zeros(t.Name, SafetensorsDType.F32, 33),
                "model.layers.0.input_layernorm.weight" => Zeros(t.Name, SafetensorsDType.I32, 32),
                _ => t,
            })
            .Append(Zeros("model.layers.0.self_attn.q_norm.weight", SafetensorsDType.F32, 8))
            .ToList();
        Write(folder.Path, Config, tensors, maxShardBytes: 20_000);

        using var target = new LlamaForCausalLM(Config, generator: new Generator(2));
        var before = target.named_parameters().ToDictionary(p => p.name, p => Tensors.Bytes(p.parameter));
        using var checkpoint = Checkpoint.Open(folder.Path);
        var error = Assert.Throws<ModelLoadException>(() => CheckpointLoader.Load(target, checkpoint));

        Assert.Equal(["model.layers.1.mlp.up_proj.weight", "lm_head.weight"], error.Missing.Select(p => p.Name));
        Assert.Equal([48L, 32], error.Missing[0].ExpectedShape);
        Assert.Equal(["model.layers.0.self_attn.q_norm.weight"], error.Unexpected.Select(p => p.Name));
        var misshaped = Assert.Single(error.Misshaped);
        Assert.Equal("model.norm.weight", misshaped.Name);
        Assert.Equal([32L], misshaped.ExpectedShape!);
        Assert.Equal([33L], misshaped.FoundShape!);
        Assert.EndsWith(".safetensors", misshaped.FilePath);
        var wrongType = Assert.Single(error.WrongDType);
        Assert.Equal(("model.layers.0.input_layernorm.weight", SafetensorsDType.I32), (wrongType.Name, wrongType.FoundDType));
        Assert.Empty(error.Conflicting);

        Assert.Contains("model.norm.weight: expected [32], found [33] in", error.Message);
        Assert.Contains("model.layers.1.mlp.up_proj.weight: expected shape [48, 32]", error.Message);
        Assert.Contains("model.layers.0.input_layernorm.weight: I32", error.Message);
        Assert.Contains("model.layers.0.self_attn.q_norm.weight [8] in", error.Message);
        Assert.Contains("What to do", error.Message);
        foreach (var (name, parameter) in target.named_parameters())
        {
            Assert.True(before[name].AsSpan().SequenceEqual(Tensors.Bytes(parameter)), $"{name} changed by a failed load");
        }
    }

    [Fact]
    public void FromPretrained_reports_a_missing_head_of_an_untied_model()
    {
        using var folder = new TemporaryFolder();
        using var source = new LlamaForCausalLM(Config, generator: new Generator(1));
        Write(folder.Path, Config, TensorsOf(source).Where(t => t.Name != "lm_head.weight").ToList());
        var error = Assert.Throws<ModelLoadException>(() => LlamaForCausalLM.FromPretrained(folder.Path));
        Assert.Equal("lm_head.weight", Assert.Single(error.Missing).Name);
        Assert.Empty(error.Unexpected);
    }

    [Fact]
    public void A_tied_model_accepts_a_stored_head_equal_to_the_embedding()
    {
        using var folder = new TemporaryFolder();
        var tied = Config with { TieWordEmbeddings = true };
        using var source = new LlamaForCausalLM(tied, generator: new Generator(3));
        var tensors = TensorsOf(source);
        var embedding = Tensors.Floats(source.Model.EmbedTokens.Weight);
        tensors.Add(TensorToWrite.FromFloat32("lm_head.weight", SafetensorsDType.F32, [40, 32], embedding));
        Write(folder.Path, tied, tensors);

        using var loaded = LlamaForCausalLM.FromPretrained(folder.Path);
        Assert.Null(loaded.LmHead);
        Assert.Equal(embedding, Tensors.Floats(loaded.Model.EmbedTokens.Weight));
    }

    [Fact]
    public void A_tied_model_refuses_a_stored_head_that_differs_from_the_embedding()
    {
        using var folder = new TemporaryFolder();
        var tied = Config with { TieWordEmbeddings = true };
        using var source = new LlamaForCausalLM(tied, generator: new Generator(3));
        var tensors = TensorsOf(source);
        var head = Tensors.Floats(source.Model.EmbedTokens.Weight);
        head[17] += 1;
        tensors.Add(TensorToWrite.FromFloat32("lm_head.weight", SafetensorsDType.F32, [40, 32], head));
        Write(folder.Path, tied, tensors);

        var error = Assert.Throws<ModelLoadException>(() => LlamaForCausalLM.FromPretrained(folder.Path));
        var conflict = Assert.Single(error.Conflicting);
        Assert.Equal("lm_head.weight", conflict.Name);
        Assert.Contains("tie_word_embeddings", error.Message);
    }

    /// <summary>A tied head stored in another dtype than the embedding is compared by value: equal loads, different is refused.</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_tied_head_in_another_dtype_is_compared_by_value(bool differs)
    {
        using var folder = new TemporaryFolder();
        var tied = Config with { TieWordEmbeddings = true };
        using var source = new LlamaForCausalLM(tied, generator: new Generator(3));
        // bf16-representable values, so the F32 embedding and the BF16 head hold the same numbers.
        using (torch.no_grad())
            source.Model.EmbedTokens.Weight.copy_(source.Model.EmbedTokens.Weight.to(ScalarType.BFloat16).to(ScalarType.Float32));
        var tensors = TensorsOf(source);
        var head = Tensors.Floats(source.Model.EmbedTokens.Weight);
        if (differs)
            head[17] += 1;
        tensors.Add(TensorToWrite.FromFloat32("lm_head.weight", SafetensorsDType.BF16, [40, 32], head));
        Write(folder.Path, tied, tensors);

        if (differs)
        {
            var error = Assert.Throws<ModelLoadException>(() => LlamaForCausalLM.FromPretrained(folder.Path));
            Assert.Equal("lm_head.weight", Assert.Single(error.Conflicting).Name);
        }
        else
        {
            using var loaded = LlamaForCausalLM.FromPretrained(folder.Path);
            Assert.True(loaded.Model.EmbedTokens.Weight.eq(source.Model.EmbedTokens.Weight).all().item<bool>());
        }
    }

    [Theory]
    [InlineData(SafetensorsDType.BF16, ScalarType.Float32)]
    [InlineData(SafetensorsDType.F16, ScalarType.Float32)]
    [InlineData(SafetensorsDType.F32, ScalarType.BFloat16)]
    [InlineData(SafetensorsDType.BF16, ScalarType.BFloat16)]
    public void Stored_dtypes_convert_to_the_model_dtype_as_torch_converts_them(SafetensorsDType stored, ScalarType modelType)
    {
        using var folder = new TemporaryFolder();
        using var source = new LlamaForCausalLM(Config, generator: new Generator(4));
        var tensors = source.named_parameters()
            .Select(pair => TensorToWrite.FromFloat32(pair.name, stored, pair.parameter.shape, Tensors.Floats(pair.parameter)))
            .ToList();
        Write(folder.Path, Config, tensors);

        using var loaded = LlamaForCausalLM.FromPretrained(folder.Path, modelType);
        var storedType = stored switch { SafetensorsDType.BF16 => ScalarType.BFloat16, SafetensorsDType.F16 => ScalarType.Float16, _ => ScalarType.Float32 };
        var loadedParameters = loaded.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, parameter) in source.named_parameters())
        {
            using var scope = torch.NewDisposeScope();
            var expected = parameter.to(storedType).to(modelType);
            Assert.Equal(modelType, loadedParameters[name].dtype);
            Assert.True(Tensors.Bytes(expected).AsSpan().SequenceEqual(Tensors.Bytes(loadedParameters[name])), name);
        }
    }

    [Fact]
    public void Derived_rotary_buffers_of_old_exports_are_skipped()
    {
        using var folder = new TemporaryFolder();
        using var source = new LlamaForCausalLM(Config, generator: new Generator(5));
        var tensors = TensorsOf(source);
        tensors.Add(Zeros("model.layers.0.self_attn.rotary_emb.inv_freq", SafetensorsDType.F32, 4));
        Write(folder.Path, Config, tensors);
        using var loaded = LlamaForCausalLM.FromPretrained(folder.Path);
        Assert.Equal(Tensors.Floats(source.Model.Norm.Weight), Tensors.Floats(loaded.Model.Norm.Weight));
    }

    [Fact]
    public void Loading_after_a_projection_was_replaced_says_to_load_first()
    {
        using var folder = new TemporaryFolder();
        using var source = new LlamaForCausalLM(Config, generator: new Generator(6));
        Write(folder.Path, Config, TensorsOf(source));
        using var target = new LlamaForCausalLM(Config);
        target.ReplaceModule("model.layers.0.mlp.up_proj", new ScaledLinear(target.Projections().First(p => p.Name == "model.layers.0.mlp.up_proj").Module, 2));
        using var checkpoint = Checkpoint.Open(folder.Path);
        var error = Assert.Throws<InvalidOperationException>(() => CheckpointLoader.Load(target, checkpoint));
        Assert.Contains("model.layers.0.mlp.up_proj.weight", error.Message);
        Assert.Contains("Load the base checkpoint first", error.Message);
    }

    [Fact]
    public void A_folder_without_config_json_is_refused_with_advice()
    {
        using var folder = new TemporaryFolder();
        using var source = new LlamaForCausalLM(Config, generator: new Generator(7));
        ShardedCheckpointWriter.Write(folder.Path, TensorsOf(source), long.MaxValue);
        var error = Assert.Throws<CheckpointException>(() => LlamaForCausalLM.FromPretrained(folder.Path));
        Assert.Equal(CheckpointError.ConfigMissing, error.Error);
        Assert.Contains("config.json", error.Message);
    }
}
