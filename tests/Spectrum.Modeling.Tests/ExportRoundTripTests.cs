// Saving to a Hugging Face folder and loading back: bit-identical weights, valid config.json, merged adapters, refusals.
using Spectrum.Checkpoints;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Spectrum.Modeling.Tests;

public sealed class ExportRoundTripTests
{
    public static TheoryData<string, ScalarType, SafetensorsDType> Cases { get; } = new()
    {
        { "llama-untied", ScalarType.Float32, SafetensorsDType.F32 },
        { "llama-untied", ScalarType.BFloat16, SafetensorsDType.BF16 },
        { "qwen2-bias", ScalarType.Float32, SafetensorsDType.F32 },
        { "tied-llama3-scaling", ScalarType.Float16, SafetensorsDType.F16 },
        { "mistral-window", ScalarType.Float32, SafetensorsDType.F32 },
    };

    private static LlamaConfig Named(string name) => name switch
    {
        "llama-untied" => LlamaConfig.Tiny(hiddenSize: 32, intermediateSize: 48, vocabSize: 40) with
        {
            PassThroughConfigJson = """{"bos_token_id":1,"eos_token_id":2}""",
        },
        "qwen2-bias" => LlamaConfig.Tiny(LlamaFamily.Qwen2, hiddenSize: 32, intermediateSize: 48, vocabSize: 40),
        "tied-llama3-scaling" => LlamaConfig.Tiny(hiddenSize: 32, intermediateSize: 48, vocabSize: 40,
            tieWordEmbeddings: true, ropeScaling: LlamaRopeScaling.Llama3(8, 1, 4, 64)),
        "mistral-window" => LlamaConfig.Tiny(LlamaFamily.Mistral, hiddenSize: 32, intermediateSize: 48, vocabSize: 40)
            with { SlidingWindow = 64 },
        _ => throw new ArgumentOutOfRangeException(nameof(name)),
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Saved_folder_loads_back_bit_identically(string configName, ScalarType modelType, SafetensorsDType fileType)
    {
        using var folder = new TemporaryFolder();
        var config = Named(configName);
        using var model = new LlamaForCausalLM(config, modelType, generator: new Generator(10));
        // A small shard limit forces an index plus several shards.
        HuggingFaceExporter.Save(model, config, folder.Path, fileType, maxShardBytes: 30_000);

        using (var checkpoint = Checkpoint.Open(folder.Path))
        {
            checkpoint.ValidateAgainstConfig();
            Assert.NotNull(checkpoint.IndexPath);
            Assert.True(checkpoint.ShardPaths.Count > 1);
            Assert.All(checkpoint.Tensors, tensor => Assert.Equal(fileType, tensor.DType));
            Assert.Equal(config, LlamaConfig.From(checkpoint.Config!));
            Assert.Equal(config.ExpectedTensors().Select(t => t.Name).Order(StringComparer.Ordinal),
                checkpoint.Tensors.Select(t => t.Name).Order(StringComparer.Ordinal));
        }

        using var loaded = LlamaForCausalLM.FromPretrained(folder.Path, modelType);
        var loadedParameters = loaded.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, parameter) in model.named_parameters())
        {
            Assert.True(Tensors.Bytes(parameter).AsSpan().SequenceEqual(Tensors.Bytes(loadedParameters[name])),
                $"{name} differs after save and load");
        }
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var ids = Tensors.RandomIds(2, 9, config.VocabSize, seed: 3);
        Assert.True(Tensors.Bytes(model.forward(ids)).AsSpan().SequenceEqual(Tensors.Bytes(loaded.forward(ids))));
    }

    [Fact]
    public void Config_json_is_a_hugging_face_config_with_dtype_and_pass_through_keys()
    {
        using var folder = new TemporaryFolder();
        var config = Named("llama-untied");
        using var model = new LlamaForCausalLM(config, ScalarType.BFloat16);
        HuggingFaceExporter.Save(model, config, folder.Path, SafetensorsDType.BF16);

        var written = ModelConfig.Load(folder.File("config.json"));
        Assert.Equal("llama", written.ModelType);
        Assert.Equal(["LlamaForCausalLM"], written.Architectures);
        Assert.Equal("bfloat16", written.TorchDtype);
        Assert.False(written.TieWordEmbeddings);
        Assert.Equal(1, written.Raw["bos_token_id"]!.GetValue<int>());
        Assert.Equal("silu", written.Raw["hidden_act"]!.GetValue<string>());
        Assert.True(File.Exists(folder.File("model.safetensors")), "a model under the shard limit is one file");
    }

    [Fact]
    public void Llama3_rope_scaling_is_written_in_hugging_face_form()
    {
        using var folder = new TemporaryFolder();
        var config = Named("tied-llama3-scaling");
        using var model = new LlamaForCausalLM(config);
        HuggingFaceExporter.Save(model, config, folder.Path, SafetensorsDType.F32);
        var scaling = ModelConfig.Load(folder.File("config.json")).RopeScaling!;
        Assert.Equal(("llama3", 8.0, 1.0, 4.0, 64), (scaling.Type, scaling.Factor, scaling.LowFreqFactor,
            scaling.HighFreqFactor, scaling.OriginalMaxPositionEmbeddings));
    }

    [Fact]
    public void A_mergeable_replacement_is_exported_as_its_merged_weight()
    {
        using var folder = new TemporaryFolder();
        var config = Named("qwen2-bias");
        using var model = new LlamaForCausalLM(config, generator: new Generator(11));
        const string name = "model.layers.1.self_attn.k_proj";
        var original = (Linear)model.GetProjection(name);
        var delta = torch.randn(original.weight!.shape, generator: new Generator(12)).mul(0.1);
        // Parameter takes over the handle it is given, so the adapter gets a copy.
        model.ReplaceModule(name, new ScaledLinear(original, 1.5, delta.clone()));

        HuggingFaceExporter.Save(model, config, folder.Path, SafetensorsDType.F32);
        using var loaded = LlamaForCausalLM.FromPretrained(folder.Path);

        var merged = (Linear)loaded.GetProjection(name);
        Assert.Equal(Tensors.Floats(original.weight!.mul(1.5).add(delta)), Tensors.Floats(merged.weight!));
        Assert.Equal(Tensors.Floats(original.bias!.mul(1.5)), Tensors.Floats(merged.bias!));
        using var noGrad = torch.no_grad();
        var ids = Tensors.RandomIds(1, 7, config.VocabSize, seed: 4);
        float difference = model.forward(ids).sub(loaded.forward(ids)).abs().max().item<float>();
        Assert.True(difference < 1e-5f, $"merged export changes logits by {difference}");
    }

    [Fact]
    public void A_replacement_without_merge_is_refused_before_anything_is_written()
    {
        using var folder = new TemporaryFolder();
        var config = Named("llama-untied");
        using var model = new LlamaForCausalLM(config);
        model.ReplaceModule("model.layers.0.mlp.down_proj", new OpaqueProjection(config.HiddenSize));
        var error = Assert.Throws<InvalidOperationException>(() =>
            HuggingFaceExporter.Save(model, config, folder.Path, SafetensorsDType.F32));
        Assert.Contains("model.layers.0.mlp.down_proj", error.Message);
        Assert.Contains(nameof(IMergeableModule), error.Message);
        Assert.Empty(Directory.EnumerateFileSystemEntries(folder.Path));
    }

    [Fact]
    public void Unsupported_dtype_and_mismatched_config_are_refused()
    {
        using var folder = new TemporaryFolder();
        var config = Named("llama-untied");
        using var model = new LlamaForCausalLM(config);
        Assert.Contains("BF16, F16 or F32", Assert.Throws<ArgumentException>(() =>
            HuggingFaceExporter.Save(model, config, folder.Path, SafetensorsDType.I32)).Message);
        Assert.Contains("does not describe the model", Assert.Throws<ArgumentException>(() =>
            HuggingFaceExporter.Save(model, config with { IntermediateSize = 64 }, folder.Path, SafetensorsDType.F32)).Message);
        Assert.Empty(Directory.EnumerateFileSystemEntries(folder.Path));
    }

    [Fact]
    public void Extra_files_are_copied_beside_the_weights()
    {
        using var source = new TemporaryFolder();
        using var folder = new TemporaryFolder();
        File.WriteAllText(source.File("tokenizer.json"), """{"version":"1.0"}""");
        var config = Named("llama-untied");
        using var model = new LlamaForCausalLM(config);
        HuggingFaceExporter.Save(model, config, folder.Path, SafetensorsDType.F32,
            extraFilesToCopy: [source.File("tokenizer.json")]);
        Assert.Equal("""{"version":"1.0"}""", File.ReadAllText(folder.File("tokenizer.json")));

        var error = Assert.Throws<ArgumentException>(() => HuggingFaceExporter.Save(model, config, folder.Path,
            SafetensorsDType.F32, extraFilesToCopy: [source.File("missing.json")]));
        Assert.Contains("missing.json", error.Message);
    }
}
