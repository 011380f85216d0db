// The fine-tuning recipe end to end on a tiny generated Llama: freezing per method, exported folders, merged LoRA, adapters, exact resume, option checks.
using System.Text.Json;
using Spectrum.Checkpoints;
using Spectrum.Modeling;
using Spectrum.Selection;
using Spectrum.Training.Recipes;
using Spectrum.Training.Tests.TestSupport;
using TorchSharp;
using static TorchSharp.torch;

namespace Spectrum.Training.Tests.Recipes;

public sealed class FineTuneRecipeTests : IDisposable
{
    private readonly TempFolder _folder = new();
    private readonly string _model;
    private readonly string _data;
    private readonly string _selection;

    public FineTuneRecipeTests()
    {
        _model = TinyModelFolder.Create(_folder.File("base"));
        _data = TinyModelFolder.WriteData(_folder.File("data.jsonl"));
        _selection = _folder.File("selection.yaml");
        File.WriteAllText(_selection, "unfrozen_parameters:\n- ^lm_head.weight$\n# mlp.down_proj layers\n- model.layers.1.mlp.down_proj\n");
    }

    public void Dispose() => _folder.Dispose();

    private FineTuneOptions Options(FineTuneMethod method, string outName = "out") => new()
    {
        ModelFolder = _model,
        DataPath = _data,
        OutputFolder = _folder.File(outName),
        Method = method,
        SelectionYaml = method is FineTuneMethod.Spectrum or FineTuneMethod.SpectrumQLora ? _selection : null,
        Steps = 3,
        LearningRate = 1e-2,
        SequenceLength = 48,
        BatchSize = 2,
        ValidationFraction = 0.2,
        ValidateEvery = 2,
        LoraRank = method is FineTuneMethod.Lora or FineTuneMethod.QLora or FineTuneMethod.SpectrumQLora ? 4 : null,
        Seed = 3,
    };

    private static readonly string[] Projections = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"];

    private static HashSet<string> ExpectedTrainable(FineTuneMethod method, IEnumerable<string> allParameters) => method switch
    {
        FineTuneMethod.Full => allParameters.ToHashSet(),
        FineTuneMethod.Spectrum => ["lm_head.weight", "model.layers.1.mlp.down_proj.weight"],
        FineTuneMethod.SpectrumQLora => ["model.layers.1.mlp.down_proj.lora_A.weight", "model.layers.1.mlp.down_proj.lora_B.weight"],
        _ => Enumerable.Range(0, 2).SelectMany(l => Projections.SelectMany(p => new[] { $"model.layers.{l}.{p}.lora_A.weight", $"model.layers.{l}.{p}.lora_B.weight" })).ToHashSet(),
    };

    [Theory]
    [InlineData(FineTuneMethod.Full, TrainingPrecision.Float32)]
    [InlineData(FineTuneMethod.Spectrum, TrainingPrecision.Float32)]
    [InlineData(FineTuneMethod.Lora, TrainingPrecision.Float32)]
    [InlineData(FineTuneMethod.QLora, TrainingPrecision.Float32)]
    [InlineData(FineTuneMethod.SpectrumQLora, TrainingPrecision.Float32)]
    [InlineData(FineTuneMethod.Full, TrainingPrecision.BFloat16)]
    [InlineData(FineTuneMethod.Spectrum, TrainingPrecision.BFloat16)]
    [InlineData(FineTuneMethod.Lora, TrainingPrecision.BFloat16)]
    [InlineData(FineTuneMethod.QLora, TrainingPrecision.BFloat16)]
    [InlineData(FineTuneMethod.SpectrumQLora, TrainingPrecision.BFloat16)]
    public void EachMethodTrainsExactlyItsParametersAndSavesALoadableMergedModel(FineTuneMethod method, TrainingPrecision precision)
    {
        var options = Options(method) with { Precision = precision };
        bool bf16 = precision == TrainingPrecision.BFloat16;
        using var recipe = FineTuneRecipe.Setup(options);
        var before = recipe.Model.named_parameters().Select(p => (p.name, (Tensor)p.parameter))
            .Concat(recipe.Model.named_buffers().Select(b => (b.name, b.buffer)))
            .ToDictionary(p => p.Item1, p => p.Item2.detach().clone());
        var parameterNames = recipe.Model.named_parameters().Select(p => p.name).ToList();
        var expected = ExpectedTrainable(method, parameterNames);

        var summary = recipe.Train();

        Assert.Equal(3, summary.Losses.Count);
        Assert.All(summary.Losses, loss => Assert.True(double.IsFinite(loss), $"loss {loss}"));
        Assert.Equal(expected.Order(), recipe.Trainer.Optimizer.ParameterNames.Order());
        Assert.Equal(expected.Order(), parameterNames.Where(n => recipe.Model.get_parameter(n)!.requires_grad).Order());
        Assert.All(expected, name => Assert.True(recipe.Trainer.Optimizer.HasState(name), $"{name} has no AdamW state"));
        Assert.Equal(expected.Sum(n => recipe.Model.get_parameter(n)!.numel()), recipe.Plan.TrainableParameters);
        // bf16: the checkpoint's weights are bf16 and trained through float32 masters; LoRA adapters are float32 themselves (as PEFT keeps them).
        bool adapters = method is FineTuneMethod.Lora or FineTuneMethod.QLora or FineTuneMethod.SpectrumQLora;
        Assert.Equal(bf16 ? ScalarType.BFloat16 : ScalarType.Float32, recipe.Model.Model.EmbedTokens.Weight.dtype);
        Assert.All(expected, name => Assert.Equal(bf16 && !adapters, recipe.Trainer.Optimizer.HasMasterWeight(name)));
        Assert.Equal(bf16 && !adapters ? recipe.Plan.TrainableParameters * 4 : 0, recipe.Plan.Memory.MasterWeightBytes);
        // The plan's estimate of what training holds is what the optimizer held (no gradient accumulation here).
        var m = recipe.Plan.Memory;
        Assert.Equal(m.MasterWeightBytes + m.GradientBytes + m.OptimizerBytes, recipe.Trainer.Optimizer.TrainingStateBytes);
        Assert.Equal(bf16 ? CpuFeatures.HasNativeBf16MatrixProducts() : null, recipe.Plan.NativeBf16);
        var after = recipe.Model.named_parameters().Select(p => (p.name, (Tensor)p.parameter))
            .Concat(recipe.Model.named_buffers().Select(b => (b.name, b.buffer)))
            .ToDictionary(p => p.Item1, p => p.Item2);
        foreach (var (name, tensor) in before)
        {
            if (expected.Contains(name))
                Assert.False(TensorAssert.BitEqual(tensor, after[name]), $"trainable {name} did not change");
            else
                TensorAssert.Identical(tensor, after[name], $"frozen {name}");
        }
        if (method is FineTuneMethod.QLora or FineTuneMethod.SpectrumQLora)
            Assert.Contains(after.Keys, name => name.EndsWith("weight_packed", StringComparison.Ordinal));

        string saved = recipe.Save();
        using (var checkpoint = Checkpoint.Open(saved))
            checkpoint.ValidateAgainstConfig();
        Assert.True(File.Exists(Path.Combine(saved, "tokenizer.json")));
        if (bf16)
            Assert.Equal("bfloat16", JsonDocument.Parse(File.ReadAllText(Path.Combine(saved, "config.json"))).RootElement.GetProperty("torch_dtype").GetString());
        using var exported = LlamaForCausalLM.FromPretrained(saved, bf16 ? ScalarType.BFloat16 : ScalarType.Float32);
        using var ids = torch.tensor(new long[] { 577, 579, 40, 41, 42, 580, 12, 99 }, [1, 8]);
        recipe.Model.eval();
        exported.eval();
        using var noGrad = torch.no_grad();
        using var adapted = recipe.Model.call(ids);
        using var reloaded = exported.call(ids);
        double maxError = (adapted - reloaded).abs().max().item<float>();
        // A merged adapter is rounded to bf16 once (W + BA), where the live model adds B·A·x to W·x: bf16's 2^-8
        // relative step then shows in the logits. Without adapters the saved bf16 weights are the ones the model ran.
        double tolerance = bf16 && adapters ? 5e-2 : bf16 ? 0 : 1e-4;
        Assert.True(maxError <= tolerance, $"exported logits differ from the trained model's by {maxError} (tolerance {tolerance})");
    }

    /// <summary>
    /// Quantising each projection as it is loaded gives exactly the model that loading densely and quantising
    /// afterwards gives (same NF4 codes and scales, same adapters drawn in the same order), without the dense weights.
    /// </summary>
    [Theory]
    [InlineData(FineTuneMethod.QLora, TrainingPrecision.Float32)]
    [InlineData(FineTuneMethod.SpectrumQLora, TrainingPrecision.BFloat16)]
    public void QuantisingWhileLoadingEqualsQuantisingTheDenseModel(FineTuneMethod method, TrainingPrecision precision)
    {
        var options = Options(method) with { Precision = precision };
        using var recipe = FineTuneRecipe.Setup(options);

        var dtype = precision == TrainingPrecision.BFloat16 ? ScalarType.BFloat16 : ScalarType.Float32;
        using var reference = LlamaForCausalLM.FromPretrained(_model, dtype);
        var targets = method == FineTuneMethod.SpectrumQLora ? (IReadOnlyList<string>)["model.layers.1.mlp.down_proj"] : null;
        using (var generator = new Generator((ulong)options.Seed))
            LoraInjection.Apply(reference, options.LoraOptions(targets), reference.ReplaceModule, quantizeBase: true, generator: generator);
        foreach (var (name, linear) in reference.Projections().ToList())
        {
            reference.ReplaceModule(name, new Nf4Linear(linear));
            linear.Dispose();
        }

        var expected = reference.named_parameters().Select(p => (p.name, (Tensor)p.parameter)).Concat(reference.named_buffers()).ToList();
        var actual = recipe.Model.named_parameters().Select(p => (p.name, (Tensor)p.parameter)).Concat(recipe.Model.named_buffers())
            .ToDictionary(p => p.Item1, p => p.Item2);
        Assert.Equal(expected.Select(e => e.Item1).Order(), actual.Keys.Order());
        Assert.Contains(actual.Keys, name => name.EndsWith("weight_packed", StringComparison.Ordinal));
        Assert.DoesNotContain(actual.Keys, name => name.EndsWith("_proj.weight", StringComparison.Ordinal) || name.EndsWith("base_layer.weight", StringComparison.Ordinal));
        foreach (var (name, tensor) in expected)
            TensorAssert.Identical(tensor, actual[name], name);
    }

    [Theory]
    [InlineData(FineTuneMethod.Lora)]
    [InlineData(FineTuneMethod.QLora)]
    public void LoraTargetsChooseTheWrappedProjections(FineTuneMethod method)
    {
        var options = Options(method) with { Steps = 1, ValidateEvery = 0, LoraTargets = ["q_proj", "mlp.down_proj", "model.layers.0.self_attn.o_proj"] };
        using var recipe = FineTuneRecipe.Setup(options);
        string[] expected =
        [
            "model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.o_proj", "model.layers.0.mlp.down_proj",
            "model.layers.1.self_attn.q_proj", "model.layers.1.mlp.down_proj",
        ];
        Assert.Equal(expected.Order(), recipe.Plan.Modules.Order());
        Assert.Equal(expected.SelectMany(m => new[] { m + ".lora_A.weight", m + ".lora_B.weight" }).Order(), recipe.Trainer.Optimizer.ParameterNames.Order());
    }

    [Theory]
    [InlineData("lm_head", FineTuneMethod.Lora, "not a projection")]
    [InlineData("embed_tokens", FineTuneMethod.QLora, "not a projection")]
    [InlineData("q_proj", FineTuneMethod.Full, "--method full")]
    [InlineData("q_proj", FineTuneMethod.SpectrumQLora, "spectrum-qlora")]
    public void LoraTargetsOutsideTheProjectionsOrMethodsAreRefusedBeforeAnyWork(string target, FineTuneMethod method, string expected)
    {
        var options = Options(method) with { LoraTargets = [target], LoraRank = method is FineTuneMethod.Full ? null : 4 };
        var error = Assert.Throws<TrainingConfigurationException>(() => FineTuneRecipe.Setup(options));
        Assert.Contains("--lora-targets", error.Message);
        Assert.Contains(expected, error.Message);
        Assert.False(Directory.Exists(options.OutputFolder));
    }

    [Fact]
    public void QLoraOnACheckpointWithANaNWeightFailsNamingTheTensor()
    {
        string broken = TinyModelFolder.Create(_folder.File("broken"), model =>
        {
            using var noGrad = torch.no_grad();
            model.named_parameters().Single(p => p.name == "model.layers.1.mlp.up_proj.weight").parameter[3, 5] = float.NaN;
        });
        var options = Options(FineTuneMethod.QLora) with { ModelFolder = broken };
        var error = Assert.Throws<InvalidDataException>(() => FineTuneRecipe.Setup(options));
        Assert.Contains("model.layers.1.mlp.up_proj.weight", error.Message);
        Assert.Contains("NaN", error.Message);
    }

    [Fact]
    public void ALoraTargetInALayerThatDoesNotExistIsRefused()
    {
        var options = Options(FineTuneMethod.Lora) with { LoraTargets = ["model.layers.7.mlp.up_proj"] };
        var error = Assert.Throws<TrainingConfigurationException>(() => FineTuneRecipe.Setup(options));
        Assert.Contains("model.layers.7.mlp.up_proj", error.Message);
    }

    /// <summary>
    /// The exported folder, read by an independent Python reader (tests/reference/check_exported_model.py), follows
    /// Hugging Face's conventions (files, format metadata, config, tensor names) and gives, through the plain-PyTorch
    /// reference forward, the logits our model gives on the same folder (1e-4). Where transformers is installed the
    /// script also loads the folder with AutoModelForCausalLM and compares.
    /// </summary>
    [PythonTorchTheory]
    [InlineData(FineTuneMethod.Spectrum, TrainingPrecision.Float32)]
    [InlineData(FineTuneMethod.Lora, TrainingPrecision.Float32)]
    [InlineData(FineTuneMethod.Full, TrainingPrecision.BFloat16)]
    [InlineData(FineTuneMethod.SpectrumQLora, TrainingPrecision.BFloat16)]
    public void TheExportedFolderPassesTheIndependentPythonCheck(FineTuneMethod method, TrainingPrecision precision)
    {
        // The base ships a generation_config.json whose EOS is not the ChatML reply end, so the export extends it.
        File.WriteAllText(Path.Combine(_model, FineTuneRecipe.GenerationConfigFileName), "{\"eos_token_id\": 578, \"do_sample\": false}");
        var options = Options(method) with { Steps = 2, Precision = precision };
        string saved = FineTuneRecipe.Run(options).ModelFolder;
        Assert.Contains("580", File.ReadAllText(Path.Combine(saved, FineTuneRecipe.GenerationConfigFileName)));

        using var exported = LlamaForCausalLM.FromPretrained(saved, ScalarType.Float32);
        exported.eval();
        using var ids = torch.tensor(new long[] { 577, 579, 40, 41, 42, 580, 12, 99, 3, 7, 300, 501 }, [2, 6]);
        Tensor logits;
        using (torch.no_grad())
            logits = exported.call(ids);
        string expected = _folder.File("expected.safetensors");
        TensorFiles.Write(expected, [("input_ids", ids), ("logits", logits)]);
        logits.Dispose();

        var (code, output) = PythonTorch.RunReferenceScript("check_exported_model.py", saved, expected);
        Assert.True(code == 0, output);
        Assert.Contains("agree", output);
    }

    [PythonTorchTheory]
    [InlineData("metadata")]
    [InlineData("logits")]
    [InlineData("generation")]
    public void ThePythonCheckFailsOnABrokenExport(string broken)
    {
        string saved = FineTuneRecipe.Run(Options(FineTuneMethod.Full) with { Steps = 1, ValidateEvery = 0 }).ModelFolder;
        using var exported = LlamaForCausalLM.FromPretrained(saved, ScalarType.Float32);
        using var ids = torch.tensor(new long[] { 577, 40, 41, 580 }, [1, 4]);
        using var logits = exported.call(ids).detach();
        string expected = _folder.File("expected.safetensors");
        string weights = Path.Combine(saved, "model.safetensors");
        if (broken == "metadata")
        {
            // The same tensors without the format metadata, as a writer unaware of transformers would produce.
            var tensors = TensorFiles.Read(weights);
            TensorFiles.Write(weights, tensors.Select(t => (t.Key, t.Value)).ToList());
            TensorFiles.Write(expected, [("input_ids", ids), ("logits", logits)]);
        }
        else if (broken == "logits")
        {
            TensorFiles.Write(expected, [("input_ids", ids), ("logits", logits + 0.01)]);
        }
        else
        {
            TensorFiles.Write(expected, [("input_ids", ids), ("logits", logits)]);
            File.WriteAllText(Path.Combine(saved, FineTuneRecipe.GenerationConfigFileName), "{\"eos_token_id\": [580, 99999]}");
        }
        var (code, output) = PythonTorch.RunReferenceScript("check_exported_model.py", saved, expected);
        Assert.Equal(1, code);
        Assert.Contains(broken + ":", output);
    }

    [Fact]
    public void AdapterOnlySavesPeftNamedLoraWeightsAndConfig()
    {
        var options = Options(FineTuneMethod.QLora) with { AdapterOnly = true, Steps = 2 };
        using var recipe = FineTuneRecipe.Setup(options);
        recipe.Train();
        string folder = recipe.Save();

        var tensors = TensorFiles.Read(Path.Combine(folder, PeftAdapterWriter.WeightsFileName));
        using (var file = SafetensorsFile.Open(Path.Combine(folder, PeftAdapterWriter.WeightsFileName)))
            Assert.Equal("pt", file.Metadata["format"]);   // what PEFT and transformers' loaders check
        var live = recipe.Model.named_parameters().Where(p => LoraLinear.IsAdapterParameter(p.name)).ToList();
        Assert.Equal(28, tensors.Count);
        foreach (var (name, parameter) in live)
            TensorAssert.Identical(parameter, tensors[PeftAdapterWriter.NamePrefix + name], name);
        using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, PeftAdapterWriter.ConfigFileName)));
        Assert.Equal("LORA", config.RootElement.GetProperty("peft_type").GetString());
        Assert.Equal(4, config.RootElement.GetProperty("r").GetInt32());
        Assert.False(File.Exists(Path.Combine(folder, "config.json")));
        foreach (var tensor in tensors.Values)
            tensor.Dispose();
    }

    [Fact]
    public void ScanResultsAndPercentSelectTopModulesPerTypePlusEmbeddingAndHead()
    {
        string scan = _folder.File("scan.json");
        var scores = Enumerable.Range(0, 2).SelectMany(l => Projections.Select(p => new ModuleScore($"model.layers.{l}.{p}", p, l == 1 ? 2.0 : 1.0))).ToList();
        ScanResultsJson.WriteFlat(scan, scores);
        var options = Options(FineTuneMethod.Full) with { Method = FineTuneMethod.Spectrum, ScanResults = scan, TopPercent = 50, Steps = 1, ValidateEvery = 0 };
        using var recipe = FineTuneRecipe.Setup(options);
        var expected = Projections.Select(p => $"model.layers.1.{p}.weight").Append("lm_head.weight").Append("model.embed_tokens.weight");
        Assert.Equal(expected.Order(), recipe.Trainer.Optimizer.ParameterNames.Order());
    }

    /// <summary>
    /// The exported generation_config.json keeps the base model's (sampling defaults, EOS) and adds the chat format's
    /// end-of-reply token to eos_token_id when the data was conversations, so transformers' generate stops after the
    /// reply; text-only training leaves it as it was, and a base without one gets none unless a token must be added.
    /// </summary>
    [Fact]
    public void AGenerationConfigWithEntriesThatAreNotIdsDoesNotFailTheExport()
    {
        string model = TinyModelFolder.Create(_folder.File("odd-generation-config"));
        File.WriteAllText(Path.Combine(model, FineTuneRecipe.GenerationConfigFileName), "{\"eos_token_id\": [578, \"x\", null, {}], \"top_p\": 0.9}");

        var result = FineTuneRecipe.Run(Options(FineTuneMethod.Full) with { ModelFolder = model, Steps = 1, ValidateEvery = 0 });

        using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(result.ModelFolder, FineTuneRecipe.GenerationConfigFileName)));
        Assert.Equal([578, 580], config.RootElement.GetProperty("eos_token_id").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal(0.9, config.RootElement.GetProperty("top_p").GetDouble());
    }

    [Theory]
    [InlineData(true, true)]
    [InlineData(false, true)]
    [InlineData(true, false)]
    [InlineData(false, false)]
    public void TheGenerationConfigStopsAtTheEndOfARepliesLearntInTheChatFormat(bool baseHasOne, bool chatData)
    {
        // A base model whose EOS is <|end_of_text|> (as Llama 3's base), fine-tuned on ChatML replies ending in <|im_end|>.
        string model = TinyModelFolder.Create(_folder.File("base-with-generation-config"));
        string tokenizerConfig = Path.Combine(model, "tokenizer_config.json");
        File.WriteAllText(tokenizerConfig, File.ReadAllText(tokenizerConfig).Replace("\"eos_token\": \"<|im_end|>\"", "\"eos_token\": \"<|end_of_text|>\""));
        var tokenizer = Spectrum.Text.ModelTokenizer.Load(model);
        int eos = tokenizer.EosId!.Value, imEnd = tokenizer.TokenToId("<|im_end|>")!.Value;
        Assert.Equal(tokenizer.TokenToId("<|end_of_text|>"), eos);
        if (baseHasOne)
            File.WriteAllText(Path.Combine(model, FineTuneRecipe.GenerationConfigFileName), $"{{\"eos_token_id\": {eos}, \"temperature\": 0.6, \"do_sample\": true}}");
        string data = chatData ? _data : _folder.File("text.jsonl");
        if (!chatData)
            File.WriteAllLines(data, Enumerable.Range(0, 8).Select(i => JsonSerializer.Serialize(new { text = $"Plain text number {i}." })));

        var result = FineTuneRecipe.Run(Options(FineTuneMethod.Full) with { ModelFolder = model, DataPath = data, Steps = 1, ValidateEvery = 0 });

        string written = Path.Combine(result.ModelFolder, FineTuneRecipe.GenerationConfigFileName);
        if (!baseHasOne && !chatData)
        {
            Assert.False(File.Exists(written));
            return;
        }
        using var config = JsonDocument.Parse(File.ReadAllText(written));
        var root = config.RootElement;
        int[] eosIds = root.GetProperty("eos_token_id").ValueKind == JsonValueKind.Array
            ? root.GetProperty("eos_token_id").EnumerateArray().Select(e => e.GetInt32()).ToArray()
            : [root.GetProperty("eos_token_id").GetInt32()];
        Assert.Equal(chatData ? [eos, imEnd] : [eos], eosIds);
        if (baseHasOne)
            Assert.Equal(0.6, root.GetProperty("temperature").GetDouble());
        else
            Assert.Equal(tokenizer.BosId, root.GetProperty("bos_token_id").GetInt32());
    }

    /// <summary>A scan of a deeper model would silently select whatever of it this model happens to have; it is refused.</summary>
    [Theory]
    [InlineData(FineTuneMethod.Spectrum)]
    [InlineData(FineTuneMethod.SpectrumQLora)]
    public void ScanResultsOfAnotherModelAreRefused(FineTuneMethod method)
    {
        string scan = _folder.File("deeper-scan.json");
        var scores = Enumerable.Range(0, 4).SelectMany(l => Projections.Select(p => new ModuleScore($"model.layers.{l}.{p}", p, l))).ToList();
        ScanResultsJson.WriteFlat(scan, scores);
        var options = Options(method) with { SelectionYaml = null, ScanResults = scan, TopPercent = 25 };

        var error = Assert.Throws<TrainingConfigurationException>(() => FineTuneRecipe.Setup(options));

        Assert.Contains("made for another model", error.Message);
        Assert.Contains("14 of its 28 modules", error.Message);
        Assert.Contains("model.layers.2.self_attn.q_proj", error.Message);
        Assert.False(Directory.Exists(options.OutputFolder));
    }

    /// <summary>YAML patterns that match nothing are skipped, as Axolotl does, but the plan names them.</summary>
    [Theory]
    [InlineData(FineTuneMethod.Spectrum)]
    [InlineData(FineTuneMethod.SpectrumQLora)]
    public void SelectionPatternsThatMatchNothingAreNamedInThePlan(FineTuneMethod method)
    {
        File.WriteAllText(_selection, "unfrozen_parameters:\n- model.layers.1.mlp.down_proj\n- model.layers.31.mlp.down_proj\n- model.layers.30.self_attn.q_proj\n");
        using var recipe = FineTuneRecipe.Setup(Options(method));

        string warning = Assert.Single(recipe.Plan.Warnings!, w => w.Contains("selection patterns"));
        Assert.Contains("2 of the 3 selection patterns match no parameter", warning);
        Assert.Contains("\"model.layers.31.mlp.down_proj\"", warning);

        File.WriteAllText(_selection, "unfrozen_parameters:\n- model.layers.1.mlp.down_proj\n");
        using var matching = FineTuneRecipe.Setup(Options(method) with { OutputFolder = _folder.File("matching") });
        Assert.DoesNotContain(matching.Plan.Warnings!, w => w.Contains("selection patterns"));
    }

    [Theory]
    [InlineData(FineTuneMethod.Lora, TrainingPrecision.Float32)]
    [InlineData(FineTuneMethod.Spectrum, TrainingPrecision.BFloat16)]
    [InlineData(FineTuneMethod.Full, TrainingPrecision.BFloat16)]
    public void ResumedRunRepeatsTheUninterruptedLossSequence(FineTuneMethod method, TrainingPrecision precision)
    {
        var options = Options(method) with { Steps = 4, CheckpointEvery = 2, WarmupSteps = 1, Precision = precision };
        if (options.UsesLora)
            options = options with { LoraDropout = 0.1 };
        var straight = FineTuneRecipe.Run(options with { OutputFolder = _folder.File("straight") });

        var interrupted = options with { OutputFolder = _folder.File("interrupted") };
        using var stop = new CancellationTokenSource();
        Assert.Throws<OperationCanceledException>(() => FineTuneRecipe.Run(interrupted,
            onProgress: p => { if (p.Step == 2) stop.Cancel(); }, cancellationToken: stop.Token));
        Assert.Equal(2, TrainLosses(Path.Combine(interrupted.OutputFolder, "metrics.jsonl")).Count);
        var resumed = FineTuneRecipe.Run(interrupted with { Resume = true });

        Assert.Equal(2, resumed.Plan.ResumedFromStep);
        Assert.Equal(4, TrainLosses(straight.MetricsPath).Count);
        Assert.Equal(TrainLosses(straight.MetricsPath), TrainLosses(resumed.MetricsPath));
        Assert.Equal(ValidationLosses(straight.MetricsPath), ValidationLosses(resumed.MetricsPath));
        // The saved models are the same bits too (bf16: the masters were restored, not re-derived from bf16 weights).
        var straightWeights = TensorFiles.Read(Path.Combine(straight.ModelFolder, "model.safetensors"));
        var resumedWeights = TensorFiles.Read(Path.Combine(resumed.ModelFolder, "model.safetensors"));
        Assert.Equal(straightWeights.Keys.Order(), resumedWeights.Keys.Order());
        foreach (var (name, tensor) in straightWeights)
            TensorAssert.Identical(tensor, resumedWeights[name], name);
    }

    [Fact]
    public void ResumingWithAnotherMethodFailsNamingBothOptionsAndTouchesNothing()
    {
        var first = Options(FineTuneMethod.Lora) with { Steps = 2, CheckpointEvery = 2, ValidateEvery = 0 };
        FineTuneRecipe.Run(first);
        var files = Snapshot(first.OutputFolder);

        var error = Assert.Throws<TrainingConfigurationException>(() =>
            FineTuneRecipe.Setup(first with { Method = FineTuneMethod.Full, LoraRank = null, Resume = true }));
        Assert.Contains("--resume", error.Message);
        Assert.Contains("--method", error.Message);
        Assert.Equal(files, Snapshot(first.OutputFolder));

        var fresh = Assert.Throws<TrainingConfigurationException>(() => FineTuneRecipe.Setup(first));
        Assert.Contains("--resume", fresh.Message);
        Assert.Contains("--out", fresh.Message);
    }

    /// <summary>Recomputing each layer in backward changes memory, not results: bf16 with master weights included.</summary>
    [Theory]
    [InlineData(FineTuneMethod.Spectrum, TrainingPrecision.BFloat16)]
    [InlineData(FineTuneMethod.QLora, TrainingPrecision.BFloat16)]
    [InlineData(FineTuneMethod.Full, TrainingPrecision.Float32)]
    public void GradientCheckpointingGivesTheSameLosses(FineTuneMethod method, TrainingPrecision precision)
    {
        var options = Options(method) with { Steps = 3, Precision = precision };
        var plain = FineTuneRecipe.Run(options with { OutputFolder = _folder.File("plain") });
        var checkpointed = FineTuneRecipe.Run(options with { OutputFolder = _folder.File("checkpointed"), GradientCheckpointing = true });
        Assert.Equal(plain.Summary.Losses, checkpointed.Summary.Losses);
        Assert.Equal(plain.Summary.LastValidationLoss, checkpointed.Summary.LastValidationLoss);
    }

    /// <summary>
    /// The same paths with other contents (data edited, selection rewritten) or another base model would resume into a
    /// different run; each is refused naming it, and the run's files stay as they were.
    /// </summary>
    [Fact]
    public void ResumingAfterTheDataSelectionOrBaseModelChangedIsRefused()
    {
        var first = Options(FineTuneMethod.Spectrum) with { Steps = 2, CheckpointEvery = 1, ValidateEvery = 0 };
        using (var stop = new CancellationTokenSource())
            Assert.ThrowsAny<OperationCanceledException>(() => FineTuneRecipe.Run(first, null, _ => stop.Cancel(), stop.Token));
        var files = Snapshot(first.OutputFolder);
        string originalData = File.ReadAllText(_data), originalSelection = File.ReadAllText(_selection);

        File.AppendAllText(_data, File.ReadLines(_data).First() + "\n");
        var data = Assert.Throws<TrainingConfigurationException>(() => FineTuneRecipe.Setup(first with { Resume = true }));
        Assert.Contains("--data contents (sha256)", data.Message);
        File.WriteAllText(_data, originalData);

        File.AppendAllText(_selection, "- model.layers.0.mlp.up_proj\n");
        var selection = Assert.Throws<TrainingConfigurationException>(() => FineTuneRecipe.Setup(first with { Resume = true }));
        Assert.Contains("--selection contents (sha256)", selection.Message);
        File.WriteAllText(_selection, originalSelection);

        string otherModel = TinyModelFolder.Create(_folder.File("other-base"));
        var model = Assert.Throws<TrainingConfigurationException>(() => FineTuneRecipe.Setup(first with { ModelFolder = otherModel, Resume = true }));
        Assert.Contains("model folder", model.Message);
        Assert.Equal(files, Snapshot(first.OutputFolder));

        var resumed = FineTuneRecipe.Run(first with { Resume = true });
        Assert.Equal(1, resumed.Plan.ResumedFromStep);
    }

    /// <summary>
    /// When writing the model fails after training (here: a file where the model folder should go), the error says
    /// where the trained state is; --resume then writes the model from the last checkpoint without training again.
    /// </summary>
    [Fact]
    public void AFailedExportIsRecoveredByResumingFromTheFinalCheckpoint()
    {
        var options = Options(FineTuneMethod.Spectrum) with { Steps = 2, CheckpointEvery = 1, ValidateEvery = 0 };
        Directory.CreateDirectory(options.OutputFolder);
        File.WriteAllText(options.ExportFolder, "in the way");

        var error = Assert.Throws<IOException>(() => FineTuneRecipe.Run(options));
        Assert.Contains("Training finished (step 2), but writing the model", error.Message);
        Assert.Contains("--resume", error.Message);

        File.Delete(options.ExportFolder);
        var resumed = FineTuneRecipe.Run(options with { Resume = true });
        Assert.Equal(2, resumed.Plan.ResumedFromStep);
        Assert.Empty(resumed.Summary.Losses);
        using var exported = LlamaForCausalLM.FromPretrained(resumed.ModelFolder, ScalarType.Float32);
        Assert.Equal(2, exported.Config.NumHiddenLayers);
    }

    [Fact]
    public void AFailedExportWithoutCheckpointsSaysTheWeightsAreLostAndHowToAvoidIt()
    {
        var summary = new TrainingSummary(1, 5, [1.0, 0.9], null);
        string message = FineTuneRecipe.ExportFailure(Options(FineTuneMethod.Full), "/runs/a/model", summary, new IOException("No space left on device"));

        Assert.Contains("Training finished (step 5), but writing the model to /runs/a/model failed: No space left on device.", message);
        Assert.Contains("--checkpoint-every N", message);
    }

    /// <summary>A bf16 run's checkpoints hold float32 masters of bf16 weights; resuming them in fp32 would not continue the same run.</summary>
    [Fact]
    public void ResumingWithAnotherPrecisionFailsNamingIt()
    {
        var first = Options(FineTuneMethod.Spectrum) with { Steps = 2, CheckpointEvery = 2, ValidateEvery = 0, Precision = TrainingPrecision.BFloat16 };
        FineTuneRecipe.Run(first);
        var files = Snapshot(first.OutputFolder);

        var error = Assert.Throws<TrainingConfigurationException>(() =>
            FineTuneRecipe.Setup(first with { Precision = TrainingPrecision.Float32, Resume = true }));
        Assert.Contains("--precision bf16", error.Message);
        Assert.Contains("--precision fp32", error.Message);
        Assert.Equal(files, Snapshot(first.OutputFolder));
    }

    /// <summary>
    /// By default packed examples attend only to themselves; asking for attention across them changes the very first
    /// loss (same weights, same rows), and resuming with the other setting is refused.
    /// </summary>
    [Fact]
    public void PackedExamplesAreKeptApartUnlessAskedAndResumeKeepsTheChoice()
    {
        // 128-token rows hold several of the test data's short examples.
        var options = Options(FineTuneMethod.Full) with { Steps = 2, CheckpointEvery = 2, ValidateEvery = 0, SequenceLength = 128, ValidationFraction = 0 };
        var isolated = FineTuneRecipe.Run(options);
        var shared = FineTuneRecipe.Run(options with { OutputFolder = _folder.File("shared"), AttendAcrossDocuments = true });
        Assert.True(isolated.Plan.TrainingSequences * 2 <= 16, $"{isolated.Plan.TrainingSequences} rows for 16 examples: rows should pack several");
        Assert.NotEqual(isolated.Summary.Losses[0], shared.Summary.Losses[0]);

        var error = Assert.Throws<TrainingConfigurationException>(() => FineTuneRecipe.Setup(options with { AttendAcrossDocuments = true, Resume = true }));
        Assert.Contains("--attend-across-documents false", error.Message);
        Assert.Contains("--attend-across-documents true", error.Message);
    }

    /// <summary>
    /// The output never lands on the user's files: an --out whose model/ (or checkpoints/) folder is the model being
    /// trained, or holds a fine-tuned model of an earlier run, is refused before any work and nothing changes on disk.
    /// </summary>
    [Fact]
    public void AnOutFolderThatWouldReplaceTheBaseModelOrAnEarlierResultIsRefused()
    {
        string baseModel = TinyModelFolder.Create(_folder.File(Path.Combine("runs", "model")));
        var modelFiles = Snapshot(baseModel);
        foreach (string parent in new[] { _folder.File("runs"), Path.Combine(baseModel, "..", "..", "runs") })
        {
            var error = Assert.Throws<TrainingConfigurationException>(() =>
                FineTuneRecipe.Setup(Options(FineTuneMethod.Full) with { ModelFolder = baseModel, OutputFolder = parent }));
            Assert.Contains("--out", error.Message);
            Assert.Contains("the model being trained", error.Message);
        }
        string inCheckpoints = TinyModelFolder.Create(_folder.File(Path.Combine("elsewhere", "checkpoints", "copy")));
        var insideCheckpoints = Assert.Throws<TrainingConfigurationException>(() => FineTuneRecipe.Setup(
            Options(FineTuneMethod.Full) with { ModelFolder = inCheckpoints, OutputFolder = _folder.File("elsewhere"), CheckpointEvery = 1 }));
        Assert.Contains("the model being trained", insideCheckpoints.Message);
        Assert.Equal(modelFiles, Snapshot(baseModel));

        var first = Options(FineTuneMethod.Full) with { Steps = 1, ValidateEvery = 0 };
        FineTuneRecipe.Run(first);
        var exported = Snapshot(first.ExportFolder);
        var again = Assert.Throws<TrainingConfigurationException>(() => FineTuneRecipe.Setup(first with { Method = FineTuneMethod.Lora, LoraRank = 4 }));
        Assert.Contains("already holds a fine-tuned model", again.Message);
        Assert.Equal(exported, Snapshot(first.ExportFolder));

        // Training into the base model's own folder is allowed: the result goes to a new model/ inside it.
        var inside = FineTuneRecipe.Run(Options(FineTuneMethod.Full) with { ModelFolder = baseModel, OutputFolder = baseModel, Steps = 1, ValidateEvery = 0 });
        Assert.Equal(Path.GetFullPath(Path.Combine(baseModel, "model")), Path.GetFullPath(inside.ModelFolder));
        foreach (var (file, bytes) in modelFiles)
            Assert.Equal(bytes, Snapshot(baseModel)[file]);
    }

    /// <summary>
    /// Prompts longer than --seq-len used to leave prompt-only rows, and a batch of those stopped training ("no label
    /// other than -100"); such rows are now left out, and the plan says what packing did.
    /// </summary>
    [Fact]
    public void ExamplesWithPromptsLongerThanTheSequenceTrainOnTheirResponsesAndThePlanSaysSo()
    {
        string data = _folder.File("long-prompts.jsonl");
        File.WriteAllLines(data, Enumerable.Range(0, 6).Select(i => JsonSerializer.Serialize(new
        {
            instruction = string.Join(' ', Enumerable.Repeat($"hello {i}", 60)),
            input = "",
            output = $"answer {i}",
        })));
        var options = Options(FineTuneMethod.Full) with { DataPath = data, ValidationFraction = 0.2, ValidateEvery = 1, Steps = 4 };

        var result = FineTuneRecipe.Run(options);

        Assert.All(result.Summary.Losses, loss => Assert.True(double.IsFinite(loss)));
        Assert.True(result.Summary.LastValidationLoss is { } v && double.IsFinite(v));
        var warnings = result.Plan.Warnings!;
        Assert.Contains(warnings, w => w.Contains("training examples are longer than --seq-len 48"));
        Assert.Contains(warnings, w => w.Contains("training rows held no token with a loss"));
    }

    /// <summary>--epochs sets the run's length from the packed rows: ceil(epochs × rows / (batch × grad-accum)) steps.</summary>
    [Theory]
    [InlineData(2.0, 2, 1)]
    [InlineData(0.5, 1, 2)]
    [InlineData(1.0, 3, 2)]
    public void EpochsGiveTheStepsThatCoverThatManyPassesOverTheRows(double epochs, int batch, int accumulation)
    {
        var options = Options(FineTuneMethod.Spectrum) with { Epochs = epochs, Steps = 999, BatchSize = batch, GradientAccumulation = accumulation, ValidateEvery = 0 };

        var result = FineTuneRecipe.Run(options);

        int rows = result.Plan.TrainingSequences;
        int expected = (int)Math.Ceiling(epochs * rows / (batch * accumulation));
        Assert.Equal(expected, result.Plan.TotalSteps);
        Assert.Equal(expected, result.Summary.Losses.Count);
        Assert.InRange(result.Plan.Epochs, epochs, epochs + (double)batch * accumulation / rows);
        var metrics = File.ReadLines(result.MetricsPath).Select(l => JsonDocument.Parse(l).RootElement)
            .Where(e => e.GetProperty("type").GetString() == "train").ToList();
        Assert.Equal(expected, metrics.Count);
    }

    [Theory]
    [InlineData(null, 10, 10, 0.1, 1)]
    [InlineData(null, 10, 10, 0.25, 3)]
    [InlineData(2.0, 999, 14, 0.5, 7)]
    [InlineData(null, 10, 10, null, 0)]
    public void WarmUpRatioIsThatShareOfTheRunsStepsRoundedUp(double? epochs, int steps, int expectedSteps, double? ratio, int expectedWarmup)
    {
        var options = Options(FineTuneMethod.Full) with { Epochs = epochs, Steps = steps, BatchSize = 1, WarmupRatio = ratio };
        options.Validate();

        var settled = options.WithLengthFor(trainingRows: 7);

        Assert.Equal(expectedSteps, settled.Steps);
        Assert.Equal(expectedWarmup, settled.WarmupSteps);
    }

    [Fact]
    public void WarmUpStepsAndRatioTogetherOrARatioOutsideZeroToOneAreRefused()
    {
        Assert.Contains("--warmup-ratio", Assert.Throws<TrainingConfigurationException>(() => (Options(FineTuneMethod.Full) with { WarmupSteps = 2, WarmupRatio = 0.1 }).Validate()).Message);
        Assert.Contains("--warmup-ratio is 1.5", Assert.Throws<TrainingConfigurationException>(() => (Options(FineTuneMethod.Full) with { WarmupRatio = 1.5 }).Validate()).Message);
    }

    [Fact]
    public void AWarmUpLongerThanTheRunTheEpochsGiveIsRefused()
    {
        var options = Options(FineTuneMethod.Full) with { Epochs = 1, WarmupSteps = 500 };

        var error = Assert.Throws<TrainingConfigurationException>(() => FineTuneRecipe.Setup(options));

        Assert.Contains("--warmup is 500", error.Message);
        Assert.Contains("--epochs 1", error.Message);
        Assert.Throws<TrainingConfigurationException>(() => FineTuneRecipe.Setup(options with { Epochs = 0, WarmupSteps = 0 }));
    }

    [Fact]
    public void ASequenceLongerThanTheModelsContextIsRefusedBeforeTheModelLoads()
    {
        using var checkpoint = Checkpoint.Open(_model);
        int context = LlamaConfig.From(checkpoint.Config!).MaxPositionEmbeddings;
        var options = Options(FineTuneMethod.Full) with { SequenceLength = context + 1 };

        var error = Assert.Throws<TrainingConfigurationException>(() => FineTuneRecipe.Setup(options));

        Assert.Contains($"--seq-len {context + 1}", error.Message);
        Assert.Contains($"max_position_embeddings is {context}", error.Message);
        Assert.False(Directory.Exists(options.OutputFolder));
        using var fits = FineTuneRecipe.Setup(options with { SequenceLength = context, Steps = 1 });
    }

    /// <summary>A run whose estimate exceeds the memory the process may use would be killed partway; it is refused with the figures.</summary>
    [Fact]
    public void ARunWhoseEstimateExceedsTheAvailableMemoryIsRefusedWithTheFigures()
    {
        var options = Options(FineTuneMethod.Full);
        using var recipe = FineTuneRecipe.Setup(options);
        long needed = recipe.Plan.Memory.TotalBytes + recipe.Plan.ActivationBytes;

        FineTuneRecipe.RequireFitsInMemory(recipe.Plan, options, needed);
        var error = Assert.Throws<TrainingConfigurationException>(() => FineTuneRecipe.RequireFitsInMemory(recipe.Plan, options, needed - 1));

        Assert.Contains("--seq-len", error.Message);
        Assert.Contains("--gradient-checkpointing", error.Message);
        Assert.Contains($"{Math.Min(options.BatchSize, recipe.Plan.TrainingSequences)} x {options.SequenceLength} tokens", error.Message);
    }

    public static TheoryData<string, string, string> InvalidCombinations => new()
    {
        { "spectrum-without-selection", "--method spectrum", "--selection" },
        { "selection-with-lora", "--selection", "--method lora" },
        { "top-percent-without-scan", "--top-percent", "--scan" },
        { "selection-and-scan", "--selection", "--scan" },
        { "adapter-only-with-full", "--adapter-only", "--method full" },
        { "lora-rank-with-spectrum", "--lora-rank", "--method spectrum" },
        { "validate-without-validation-data", "--validate-every", "--validation-fraction" },
        { "resume-without-checkpoints", "--resume", "--checkpoint-every" },
    };

    [Theory]
    [MemberData(nameof(InvalidCombinations))]
    public void InvalidCombinationsFailBeforeAnyFileIsWritten(string combination, string firstOption, string secondOption)
    {
        var spectrum = Options(FineTuneMethod.Spectrum);
        var options = combination switch
        {
            "spectrum-without-selection" => spectrum with { SelectionYaml = null },
            "selection-with-lora" => Options(FineTuneMethod.Lora) with { SelectionYaml = _selection },
            "top-percent-without-scan" => spectrum with { TopPercent = 25 },
            "selection-and-scan" => spectrum with { ScanResults = _folder.File("scan.json") },
            "adapter-only-with-full" => Options(FineTuneMethod.Full) with { AdapterOnly = true },
            "lora-rank-with-spectrum" => spectrum with { LoraRank = 8 },
            "validate-without-validation-data" => spectrum with { ValidationFraction = 0 },
            "resume-without-checkpoints" => spectrum with { Resume = true },
            _ => throw new ArgumentOutOfRangeException(nameof(combination)),
        };

        var error = Assert.Throws<TrainingConfigurationException>(() => FineTuneRecipe.Setup(options));
        Assert.Contains(firstOption, error.Message);
        Assert.Contains(secondOption, error.Message);
        Assert.False(Directory.Exists(options.OutputFolder), $"{options.OutputFolder} was created");
    }

    [Theory]
    [InlineData(FineTuneMethod.Spectrum, "model.layers.9.mlp.down_proj")]
    [InlineData(FineTuneMethod.SpectrumQLora, "^lm_head.weight$")]
    public void ASelectionThatMatchesNothingTrainableIsAnError(FineTuneMethod method, string pattern)
    {
        File.WriteAllText(_selection, $"unfrozen_parameters:\n- {pattern}\n");
        var options = Options(method);
        var error = Assert.Throws<TrainingConfigurationException>(() => FineTuneRecipe.Setup(options));
        Assert.Contains(pattern, error.Message);
        Assert.False(Directory.Exists(options.OutputFolder));
    }

    [Theory]
    [InlineData(0.2, 1)]
    [InlineData(0.0, 0)]
    public void WithoutValidateEveryTheHeldOutSplitIsEvaluatedOnceAfterTheLastStep(double fraction, int expectedValidations)
    {
        var result = FineTuneRecipe.Run(Options(FineTuneMethod.Full) with { Steps = 3, ValidateEvery = 0, ValidationFraction = fraction });

        Assert.Equal(expectedValidations, ValidationLosses(result.MetricsPath).Count);
        Assert.Equal(expectedValidations == 1, result.Summary.LastValidationLoss is not null);
        if (expectedValidations == 1)
        {
            var entry = File.ReadAllLines(result.MetricsPath).Select(line => JsonDocument.Parse(line).RootElement)
                .Single(e => e.GetProperty("type").GetString() == "validation");
            Assert.Equal(3, entry.GetProperty("step").GetInt32());
        }
    }

    /// <summary>
    /// The exported tokenizer carries the chat format the model was trained in: written when it differs from the
    /// model's own (the fixture tokenizer's template is ChatML), left as the model's own when it is the same.
    /// </summary>
    [Theory]
    [InlineData("llama3", false)]
    [InlineData("gemma", true)]
    [InlineData("chatml", false)]
    public void TheExportedTokenizerCarriesTheChatFormatTrainedIn(string format, bool adapterOnly)
    {
        string original = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(_model, "tokenizer_config.json")))!["chat_template"]!.GetValue<string>();
        var options = Options(adapterOnly ? FineTuneMethod.Lora : FineTuneMethod.Full) with
        {
            Steps = 1, ValidateEvery = 0, ChatTemplateName = format, AdapterOnly = adapterOnly,
        };

        var result = FineTuneRecipe.Run(options);

        Assert.Equal(format, result.Plan.ChatTemplate);
        var config = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(result.ModelFolder, "tokenizer_config.json")))!;
        var tokenizer = Spectrum.Text.ModelTokenizer.Load(_model);
        string expected = format == "chatml"
            ? original
            : Spectrum.Text.ChatTemplate.Named(format).ToJinja(startWithBos: tokenizer.AddsBosToken && tokenizer.BosId is not null);
        Assert.Equal(expected, config["chat_template"]!.GetValue<string>());
        Assert.Equal(Spectrum.Text.ChatTemplate.Named(format), Spectrum.Text.ChatTemplate.Recognise(config["chat_template"]!.GetValue<string>()));
    }

    /// <summary>--chat-template auto takes the format the model's own chat_template is in, and ChatML where there is none it knows.</summary>
    [Theory]
    [InlineData("{{ bos_token }}{% for m in messages %}{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>\\n\\n' + m['content'] + '<|eot_id|>' }}{% endfor %}", "llama3")]
    [InlineData("{% for m in messages %}{{ m['role'] + ': ' + m['content'] }}{% endfor %}", "chatml")]
    [InlineData(null, "chatml")]
    public void AutoChatTemplateFollowsTheModelsOwnFormat(string? ownTemplate, string expected)
    {
        string model = _folder.File("own-template");
        Directory.CreateDirectory(model);
        foreach (string file in Directory.EnumerateFiles(_model))
            File.Copy(file, Path.Combine(model, Path.GetFileName(file)));
        string configPath = Path.Combine(model, "tokenizer_config.json");
        var config = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(configPath))!.AsObject();
        config.Remove("chat_template");
        if (ownTemplate is not null)
            config["chat_template"] = ownTemplate;
        File.WriteAllText(configPath, config.ToJsonString());

        using var recipe = FineTuneRecipe.Setup(Options(FineTuneMethod.Full) with { ModelFolder = model, Steps = 1, ValidateEvery = 0, ChatTemplateName = "auto" });

        Assert.Equal(expected, recipe.Plan.ChatTemplate);
        Assert.DoesNotContain(recipe.Plan.Warnings ?? [], w => w.Contains("own chat template", StringComparison.Ordinal));
    }

    private static List<double> TrainLosses(string metrics) => Entries(metrics, "train");

    private static List<double> ValidationLosses(string metrics) => Entries(metrics, "validation");

    private static List<double> Entries(string metrics, string type) => File.ReadAllLines(metrics)
        .Select(line => JsonDocument.Parse(line).RootElement)
        .Where(e => e.GetProperty("type").GetString() == type)
        .Select(e => e.GetProperty("loss").GetDouble())
        .ToList();

    private static Dictionary<string, string> Snapshot(string folder) => Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories)
        .ToDictionary(f => f, f => Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(f))));
}
