// Freezing by Axolotl's unfrozen_parameters rule and by predicate, checked against hand-written expectations.
using Spectrum.Selection;
using Spectrum.Training.Tests.TestSupport;

namespace Spectrum.Training.Tests;

public sealed class ParameterFreezerTests
{
    [Fact]
    public void ModuleNamePatternUnfreezesItsWeightAndBiasButNotLayerTen()
    {
        using var model = new TinyCausalLm(layers: 11);
        var report = ParameterFreezer.Apply(model, ["^lm_head.weight$", "^model.embed_tokens.weight$", "model.layers.1.mlp.down_proj"]);

        string[] expected = ["model.embed_tokens.weight", "model.layers.1.mlp.down_proj.weight", "model.layers.1.mlp.down_proj.bias", "lm_head.weight"];
        Assert.Equal(expected.Order(), report.Trainable.Order());
        foreach (var (name, parameter) in model.named_parameters())
            Assert.Equal(expected.Contains(name), parameter.requires_grad);
        Assert.False(model.named_parameters().Single(p => p.name == "model.layers.10.mlp.down_proj.weight").parameter.requires_grad);
        // embed 13×8, down_proj 8×16 + 8, lm_head 13×8.
        Assert.Equal(104 + 136 + 104, report.TrainableParameters);
        Assert.Equal(model.parameters().Sum(p => p.numel()), report.TotalParameters);
        Assert.Equal((double)report.TrainableParameters / report.TotalParameters, report.Fraction, 12);
        Assert.Empty(report.UnmatchedPatterns);
    }

    [Fact]
    public void AgreesWithTheSelectionProjectsCountOfTheSameRule()
    {
        using var model = new TinyCausalLm(layers: 3);
        IReadOnlyList<string> patterns = ["model.layers.[02].mlp.up_proj", "^lm_head.weight$", "model.norm"];
        var report = ParameterFreezer.Apply(model, patterns);
        var counted = ParameterCounts.Count(model.named_parameters().Select(p => (p.name, p.parameter.numel())), patterns);
        Assert.Equal(counted.TrainableTensors, report.Trainable);
        Assert.Equal(counted.Trainable, report.TrainableParameters);
        Assert.Equal(counted.Total, report.TotalParameters);
    }

    [Fact]
    public void EverythingIsFrozenFirstSoEarlierTrainableFlagsDoNotSurvive()
    {
        using var model = new TinyCausalLm();
        foreach (var parameter in model.parameters())
            parameter.requires_grad = true;
        ParameterFreezer.Apply(model, ["^lm_head.weight$"]);
        Assert.Equal(["lm_head.weight"], model.named_parameters().Where(p => p.parameter.requires_grad).Select(p => p.name));
    }

    [Fact]
    public void PatternsMatchingNothingAreAnErrorNotASilentFullFreeze()
    {
        using var model = new TinyCausalLm();
        var error = Assert.Throws<TrainingConfigurationException>(() =>
            ParameterFreezer.Apply(model, ["base_model.model.model.layers.0.mlp.up_proj"]));
        Assert.Contains("base_model.model.model.layers.0.mlp.up_proj", error.Message);
        Assert.Contains("model.embed_tokens.weight", error.Message);
        // Nothing was changed: the default-trainable parameters are still trainable.
        Assert.All(model.parameters(), p => Assert.True(p.requires_grad));
    }

    [Fact]
    public void AnEmptyListIsRejectedBecauseAxolotlWouldTrainEverything()
    {
        using var model = new TinyCausalLm();
        var error = Assert.Throws<TrainingConfigurationException>(() => ParameterFreezer.Apply(model, []));
        Assert.Contains("empty", error.Message);
    }

    [Fact]
    public void AnInvalidRegexIsATypedErrorNamingThePattern()
    {
        using var model = new TinyCausalLm();
        var error = Assert.Throws<TrainingConfigurationException>(() => ParameterFreezer.Apply(model, ["model.layers.(0"]));
        Assert.Contains("model.layers.(0", error.Message);
    }

    [Fact]
    public void PatternsWithoutAMatchAreReportedWhenOthersMatch()
    {
        using var model = new TinyCausalLm();
        var report = ParameterFreezer.Apply(model, ["^lm_head.weight$", "^model.missing.weight$"]);
        Assert.Equal(["^model.missing.weight$"], report.UnmatchedPatterns);
    }

    [Fact]
    public void RowRangesAreRecordedAndAWholeParameterPatternOverridesThem()
    {
        using var model = new TinyCausalLm();
        var report = ParameterFreezer.Apply(model, ["model.layers.0.mlp.up_proj.weight[2:5]", "model.layers.0.mlp.up_proj.weight[9]",
            "model.layers.1.mlp.up_proj.weight[0:3]", "model.layers.1.mlp.up_proj"]);
        Assert.Equal([new RowRange(2, 5), new RowRange(9, 10)], report.RowRanges["model.layers.0.mlp.up_proj.weight"]);
        Assert.False(report.RowRanges.ContainsKey("model.layers.1.mlp.up_proj.weight"));
        Assert.Contains("model.layers.0.mlp.up_proj.weight", report.Trainable);
    }

    [Fact]
    public void ARowRangePastTheParametersRowsIsRejected()
    {
        using var model = new TinyCausalLm();
        // up_proj.weight is (16, 8).
        var error = Assert.Throws<TrainingConfigurationException>(() => ParameterFreezer.Apply(model, ["model.layers.0.mlp.up_proj.weight[10:20]"]));
        Assert.Contains("16 rows", error.Message);
    }

    [Fact]
    public void ASpectrumYamlFileFreezesLikeItsPatterns()
    {
        using var folder = new TempFolder();
        string yaml = folder.File("snr_results_tiny_unfrozenparameters_50percent.yaml");
        File.WriteAllText(yaml, "unfrozen_parameters:\n- ^lm_head.weight$\n- ^model.embed_tokens.weight$\n# mlp.down_proj layers\n- model.layers.1.mlp.down_proj\n");
        using var model = new TinyCausalLm();
        var report = ParameterFreezer.ApplyYaml(model, yaml);
        Assert.Equal(["model.embed_tokens.weight", "model.layers.1.mlp.down_proj.weight", "model.layers.1.mlp.down_proj.bias", "lm_head.weight"], report.Trainable);
        Assert.Throws<ScanResultsException>(() => ParameterFreezer.ApplyYaml(model, folder.File("missing.yaml")));
    }

    [Fact]
    public void FreezeAllExceptKeepsOnlyWhatThePredicateAccepts()
    {
        using var model = new TinyCausalLm();
        var report = ParameterFreezer.FreezeAllExcept(model, name => name.EndsWith(".bias", StringComparison.Ordinal));
        var biases = model.named_parameters().Where(p => p.name.EndsWith(".bias", StringComparison.Ordinal)).ToList();
        Assert.Equal(biases.Select(b => b.name), report.Trainable);
        Assert.Equal(biases.Sum(b => b.parameter.numel()), report.TrainableParameters);
        Assert.All(model.named_parameters(), p => Assert.Equal(p.name.EndsWith(".bias", StringComparison.Ordinal), p.parameter.requires_grad));
    }

    [Fact]
    public void ATiedParameterCountsOnceUnderItsFirstNameAsInPyTorch()
    {
        using var tied = new TiedModel();
        var names = tied.named_parameters().Select(p => p.name).ToList();
        Assert.Equal(["embed.weight", "head.weight"], names);   // TorchSharp lists the shared tensor twice
        var report = ParameterFreezer.Apply(tied, ["^head.weight$", "embed"]);
        Assert.Equal(["embed.weight"], report.Trainable);
        Assert.Equal(["^head.weight$"], report.UnmatchedPatterns);
        Assert.Equal(5 * 3, report.TotalParameters);
        using var optimizer = new AdamWOptimizer(AdamWOptimizer.Trainable(tied), new AdamWOptions());
        Assert.Equal(["embed.weight"], optimizer.ParameterNames);
    }

    private sealed class TiedModel : TorchSharp.torch.nn.Module
    {
        public TiedModel() : base(nameof(TiedModel))
        {
            var embed = TorchSharp.torch.nn.Embedding(5, 3);
            var head = TorchSharp.torch.nn.Linear(3, 5, hasBias: false);
            head.weight = embed.weight!;
            register_module("embed", embed);
            register_module("head", head);
        }
    }

    [Fact]
    public void FreezeAllExceptWithNoSurvivorIsAnError()
    {
        using var model = new TinyCausalLm();
        Assert.Throws<TrainingConfigurationException>(() => ParameterFreezer.FreezeAllExcept(model, _ => false));
    }
}
