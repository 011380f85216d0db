// Merging a PEFT LoRA adapter folder into a base model: the adapted model's logits, PEFT's scaling rules, and refusals that leave the model untouched.
using System.Text.Json.Nodes;
using Spectrum.Checkpoints;
using Spectrum.Modeling;
using Spectrum.Training.Recipes;
using Spectrum.Training.Tests.TestSupport;
using TorchSharp;
using static TorchSharp.torch;

namespace Spectrum.Training.Tests.Recipes;

public sealed class PeftAdapterReaderTests : IDisposable
{
    private static readonly LoraOptions Lora = new(Rank: 4, Alpha: 8, Dropout: 0.1);
    private readonly TempFolder _temp = new();
    private readonly string _base;
    private readonly string _adapter;
    private readonly Tensor _adaptedLogits;
    private readonly Tensor _ids = torch.tensor(new long[] { 577, 5, 90, 300, 12, 44, 7, 580 }).unsqueeze(0);

    public PeftAdapterReaderTests()
    {
        _base = TinyModelFolder.Create(_temp.File("base"));
        _adapter = _temp.File("adapter");
        using var adapted = LlamaForCausalLM.FromPretrained(_base);
        LoraInjection.Apply(adapted, Lora, adapted.ReplaceModule, generator: new Generator(3));
        using (torch.no_grad())
        {
            // lora_B starts at zero, which would make any merge look right.
            var random = new Generator(4);
            foreach (var (name, parameter) in adapted.named_parameters().Where(p => p.name.EndsWith("lora_B.weight", StringComparison.Ordinal)))
                parameter.normal_(0, 0.05, random);
        }
        adapted.eval();
        using (torch.no_grad())
            _adaptedLogits = adapted.forward(_ids).DetachFromDisposeScope();
        PeftAdapterWriter.Write(adapted, Lora, Path.GetFullPath(_base), _adapter, []);
    }

    public void Dispose()
    {
        _adaptedLogits.Dispose();
        _ids.Dispose();
        _temp.Dispose();
    }

    /// <summary>Float32 both ways; the merged weight sums W + s·B·A once instead of per forward (≈1e-6 seen).</summary>
    [Fact]
    public void TheMergedModelGivesTheAdaptedModelsLogits()
    {
        using var model = LlamaForCausalLM.FromPretrained(_base);

        var merged = PeftAdapterReader.MergeInto(model, _adapter);

        Assert.Equal(14, merged.Count);   // 2 layers × 7 projections
        using var noGrad = torch.no_grad();
        double error = model.forward(_ids).sub(_adaptedLogits).abs().max().item<float>();
        Assert.True(error <= 1e-5, $"merged logits differ from the adapted model's by {error:E2}");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ScalesByAlphaOverRankOrOverItsRootWithRsLora(bool rsLora)
    {
        EditConfig(config => config["use_rslora"] = rsLora);
        using var model = LlamaForCausalLM.FromPretrained(_base);
        using var original = model.GetProjection("model.layers.1.mlp.down_proj") is TorchSharp.Modules.Linear l ? l.weight!.detach().clone() : throw new InvalidOperationException();

        PeftAdapterReader.MergeInto(model, _adapter);

        var tensors = TensorFiles.Read(Path.Combine(_adapter, PeftAdapterWriter.WeightsFileName));
        const string prefix = PeftAdapterWriter.NamePrefix + "model.layers.1.mlp.down_proj";
        double scaling = rsLora ? 8 / Math.Sqrt(4) : 8.0 / 4;
        var expected = original.add(tensors[prefix + ".lora_B.weight"].mm(tensors[prefix + ".lora_A.weight"]).mul(scaling));
        var actual = ((TorchSharp.Modules.Linear)model.GetProjection("model.layers.1.mlp.down_proj")).weight!;
        Assert.True(actual.sub(expected).abs().max().item<float>() <= 1e-6);
        foreach (var tensor in tensors.Values) tensor.Dispose();
    }

    [Theory]
    [InlineData("dora")]
    [InlineData("rank_pattern")]
    [InlineData("not-lora")]
    public void PeftFeaturesAPlainMergeWouldGetWrongAreRefused(string feature)
    {
        EditConfig(config =>
        {
            if (feature == "dora") config["use_dora"] = true;
            if (feature == "rank_pattern") config["rank_pattern"] = new JsonObject { ["q_proj"] = 8 };
            if (feature == "not-lora") config["peft_type"] = "IA3";
        });

        AssertRefusedAndUntouched<NotSupportedException>(feature == "not-lora" ? "only LoRA adapters" : "merge_and_unload");
    }

    [Fact]
    public void AnAdapterForAnotherShapeIsRefusedNamingTheTensor()
    {
        string other = _temp.File("other-adapter");
        var config = LlamaConfig.Tiny(hiddenSize: 48, intermediateSize: 64, vocabSize: TinyModelFolder.VocabSize);
        using (var wider = new LlamaForCausalLM(config, generator: new Generator(1)))
        {
            LoraInjection.Apply(wider, Lora, wider.ReplaceModule, generator: new Generator(3));
            PeftAdapterWriter.Write(wider, Lora, "elsewhere", other, []);
        }

        var error = AssertRefusedAndUntouched<CheckpointException>("Was the adapter trained on another model?", other);
        Assert.Contains("the projection's weight is [", error.Message);
    }

    [Fact]
    public void AFolderWithoutTheAdapterFilesSaysWhatItShouldHold()
    {
        File.Delete(Path.Combine(_adapter, PeftAdapterWriter.WeightsFileName));

        AssertRefusedAndUntouched<CheckpointException>("A PEFT adapter folder holds adapter_config.json and adapter_model.safetensors");
    }

    [Fact]
    public void GenerateTakesTheAdapterAsAnOptionOrAsTheModelFolder()
    {
        var asOption = new GenerateOptions { ModelFolder = _base, AdapterFolder = _adapter, Prompt = "Add 3 and 4.", MaxNewTokens = 10 };
        var asModel = new GenerateOptions { ModelFolder = _adapter, Prompt = "Add 3 and 4.", MaxNewTokens = 10 };
        var plain = new GenerateOptions { ModelFolder = _base, Prompt = "Add 3 and 4.", MaxNewTokens = 10 };
        string Text(GenerateOptions options, out GenerationPlan plan)
        {
            using var generation = TextGeneration.Load(options);
            plan = generation.Plan;
            return string.Concat(generation.Stream());
        }

        string merged = Text(asOption, out var plan);

        Assert.Equal(merged, Text(asModel, out _));
        Assert.Contains(plan.Notes, note => note.Contains("into 14 projections"));
        Assert.NotEqual(merged, Text(plain, out _));
    }

    private void EditConfig(Action<JsonObject> edit)
    {
        string path = Path.Combine(_adapter, PeftAdapterWriter.ConfigFileName);
        var config = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        edit(config);
        File.WriteAllText(path, config.ToJsonString());
    }

    private TException AssertRefusedAndUntouched<TException>(string expected, string? adapter = null) where TException : Exception
    {
        using var model = LlamaForCausalLM.FromPretrained(_base);
        var before = model.named_parameters().Select(p => p.parameter.detach().clone()).ToList();

        var error = Assert.Throws<TException>(() => PeftAdapterReader.MergeInto(model, adapter ?? _adapter));

        Assert.Contains(expected, error.Message);
        foreach (var (parameter, saved) in model.parameters().Zip(before))
            Assert.True(parameter.eq(saved).all().item<bool>(), "a refused adapter changed the model");
        return error;
    }
}
