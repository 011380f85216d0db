// LoRA and QLoRA adapters: PEFT names and initialisation, the forward formula, merging, injection into a model.
using Spectrum.Training.Tests.TestSupport;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Spectrum.Training.Tests;

public sealed class LoraTests
{
    [Fact]
    public void DefaultsAreThePapersQloraSettings()
    {
        var options = new LoraOptions();
        Assert.Equal((32, 16.0, 0.05), (options.Rank, options.Alpha, options.Dropout));
        Assert.Equal(0.5, options.Scaling);
        Assert.Null(options.TargetModules);
    }

    [Theory]
    [InlineData(0, 16, 0.05, "Rank")]
    [InlineData(8, 0, 0.05, "Alpha")]
    [InlineData(8, 16, 1.0, "Dropout")]
    [InlineData(8, 16, -0.1, "Dropout")]
    public void InvalidOptionsAreRejectedNamingTheOption(int rank, double alpha, double dropout, string option)
    {
        using var linear = nn.Linear(4, 3);
        var error = Assert.Throws<TrainingConfigurationException>(() => new LoraLinear(linear, new LoraOptions(rank, alpha, dropout)));
        Assert.Contains(option, error.Message);
    }

    [Fact]
    public void ParametersFollowPeftNamesShapesAndFreezing()
    {
        using var lora = new LoraLinear(nn.Linear(5, 3), new LoraOptions(Rank: 2));
        var parameters = lora.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        Assert.Equal(["base_layer.bias", "base_layer.weight", "lora_A.weight", "lora_B.weight"], parameters.Keys.Order(StringComparer.Ordinal));
        Assert.Equal([3L, 5], parameters["base_layer.weight"].shape);
        Assert.Equal([2L, 5], parameters["lora_A.weight"].shape);
        Assert.Equal([3L, 2], parameters["lora_B.weight"].shape);
        Assert.False(parameters["base_layer.weight"].requires_grad);
        Assert.False(parameters["base_layer.bias"].requires_grad);
        Assert.True(parameters["lora_A.weight"].requires_grad);
        Assert.True(parameters["lora_B.weight"].requires_grad);
    }

    [Fact]
    public void InitialisationIsKaimingUniformForAAndZerosForBReproducibleFromAGenerator()
    {
        using var g1 = new Generator(5);
        using var g2 = new Generator(5);
        using var first = new LoraLinear(nn.Linear(50, 20), new LoraOptions(Rank: 4), g1);
        using var second = new LoraLinear(nn.Linear(50, 20), new LoraOptions(Rank: 4), g2);
        var a = first.named_parameters().Single(p => p.name == "lora_A.weight").parameter;
        var b = first.named_parameters().Single(p => p.name == "lora_B.weight").parameter;
        double bound = 1 / Math.Sqrt(50);
        Assert.True(a.abs().max().item<float>() <= bound);
        Assert.True(a.abs().max().item<float>() > bound / 2);   // spread over the interval, not collapsed
        Assert.Equal(0f, b.abs().max().item<float>());
        TensorAssert.Identical(a, second.named_parameters().Single(p => p.name == "lora_A.weight").parameter, "lora_A from equal generators");
    }

    [Fact]
    public void FreshAdapterComputesExactlyTheBaseEvenWithDropoutActive()
    {
        torch.random.manual_seed(3);
        var linear = nn.Linear(6, 4);
        using var input = torch.randn(3, 7, 6);
        using var expected = linear.call(input);
        using var lora = new LoraLinear(linear, new LoraOptions(Rank: 3, Dropout: 0.9));
        lora.train();
        using var actual = lora.call(input);
        // B = 0 makes the adapter term zero; had dropout touched the base path, the output would differ.
        TensorAssert.Identical(expected, actual, "fresh LoRA output");
    }

    [Fact]
    public void ForwardIsBasePlusScaledLowRankTermComputedIndependently()
    {
        torch.random.manual_seed(4);
        using var lora = new LoraLinear(nn.Linear(6, 4), new LoraOptions(Rank: 3, Alpha: 6, Dropout: 0.3));
        var p = lora.named_parameters().ToDictionary(x => x.name, x => x.parameter);
        using (torch.no_grad())
            p["lora_B.weight"].normal_();
        lora.eval();   // dropout off
        using var input = torch.randn(2, 5, 6);
        using var actual = lora.call(input);
        using var scope = torch.NewDisposeScope();
        var x = input.to_type(ScalarType.Float64);
        var w = p["base_layer.weight"].to_type(ScalarType.Float64);
        var bias = p["base_layer.bias"].to_type(ScalarType.Float64);
        var a = p["lora_A.weight"].to_type(ScalarType.Float64);
        var b = p["lora_B.weight"].to_type(ScalarType.Float64);
        var expected = torch.matmul(x, w.t()) + bias + torch.matmul(torch.matmul(x, a.t()), b.t()) * (6.0 / 3);
        Assert.True((actual.to_type(ScalarType.Float64) - expected).abs().max().item<double>() < 1e-5);
    }

    /// <summary>
    /// In a bf16 model the float32 adapters run in bf16, as under torch.autocast: output and the adapters' float32
    /// gradients agree with a float64 computation to bf16's precision (3 significant digits: 2e-2 relative to the
    /// largest value), and the adapter weights and their gradients stay float32.
    /// </summary>
    [Fact]
    public void InABf16ModelTheFloat32AdaptersRunInBf16AndKeepFloat32Gradients()
    {
        torch.random.manual_seed(6);
        var linear = nn.Linear(64, 48, hasBias: false);
        linear.to(ScalarType.BFloat16);
        using var lora = new LoraLinear(linear, new LoraOptions(Rank: 8, Alpha: 16, Dropout: 0));
        var p = lora.named_parameters().ToDictionary(x => x.name, x => x.parameter);
        using (torch.no_grad())
            p["lora_B.weight"].normal_();
        Assert.Equal(ScalarType.Float32, p["lora_A.weight"].dtype);
        using var input = torch.randn(5, 64).to_type(ScalarType.BFloat16);

        using var output = lora.call(input);
        output.to_type(ScalarType.Float32).sum().backward();

        Assert.Equal(ScalarType.BFloat16, output.dtype);
        Assert.Equal(ScalarType.Float32, p["lora_A.weight"].grad!.dtype);
        Assert.Equal(ScalarType.Float32, p["lora_B.weight"].grad!.dtype);
        using var scope = torch.NewDisposeScope();
        var x = input.to_type(ScalarType.Float64).requires_grad_(false);
        var w = p["base_layer.weight"].detach().to_type(ScalarType.Float64);
        var a = p["lora_A.weight"].detach().to_type(ScalarType.Float64).requires_grad_(true);
        var b = p["lora_B.weight"].detach().to_type(ScalarType.Float64).requires_grad_(true);
        var expected = torch.matmul(x, w.t()) + torch.matmul(torch.matmul(x, a.t()), b.t()) * 2.0;
        expected.sum().backward();
        static double RelativeError(Tensor actual, Tensor reference) =>
            (actual.to_type(ScalarType.Float64) - reference).abs().max().item<double>() / reference.abs().max().item<double>();
        Assert.True(RelativeError(output, expected) < 2e-2, $"output: {RelativeError(output, expected)}");
        Assert.True(RelativeError(p["lora_A.weight"].grad!, a.grad!) < 2e-2, $"A gradient: {RelativeError(p["lora_A.weight"].grad!, a.grad!)}");
        Assert.True(RelativeError(p["lora_B.weight"].grad!, b.grad!) < 2e-2, $"B gradient: {RelativeError(p["lora_B.weight"].grad!, b.grad!)}");
    }

    [Fact]
    public void MergedWeightAndBiasReproduceTheAdapterOutput()
    {
        torch.random.manual_seed(5);
        using var lora = new LoraLinear(nn.Linear(8, 5), new LoraOptions(Rank: 2));
        using (torch.no_grad())
            lora.named_parameters().Single(p => p.name == "lora_B.weight").parameter.normal_();
        lora.eval();
        using var input = torch.randn(4, 8);
        using var adapted = lora.call(input);
        using var weight = lora.MergedWeight();
        using var bias = lora.MergedBias();
        Assert.Equal([5L, 8], weight.shape);
        Assert.False(weight.requires_grad);
        using var merged = nn.functional.linear(input, weight, bias);
        Assert.True((adapted - merged).abs().max().item<float>() < 1e-5);
    }

    [Fact]
    public void MergedWeightKeepsABfloat16BasesDtype()
    {
        var linear = nn.Linear(8, 4, hasBias: false);
        linear.to(ScalarType.BFloat16);
        using var lora = new LoraLinear(linear, new LoraOptions(Rank: 2));
        using var weight = lora.MergedWeight();
        Assert.Equal(ScalarType.BFloat16, weight.dtype);
        Assert.Null(lora.MergedBias());
        using var input = torch.randn(3, 8).to_type(ScalarType.BFloat16);
        using var output = lora.call(input);
        Assert.Equal(ScalarType.BFloat16, output.dtype);
    }

    [Fact]
    public void OnlyAdapterParametersReceiveGradients()
    {
        torch.random.manual_seed(6);
        using var lora = new LoraLinear(nn.Linear(6, 4), new LoraOptions(Rank: 2, Dropout: 0));
        using var input = torch.randn(3, 6);
        lora.call(input).pow(2).sum().backward();
        var p = lora.named_parameters().ToDictionary(x => x.name, x => x.parameter);
        Assert.Null(p["base_layer.weight"].grad);
        Assert.Null(p["base_layer.bias"].grad);
        Assert.True(p["lora_B.weight"].grad!.abs().sum().item<float>() > 0);
        Assert.NotNull(p["lora_A.weight"].grad);   // zero at B = 0, but present
    }

    [Theory]
    [InlineData("model.layers.0.mlp.up_proj.lora_A.weight", true)]
    [InlineData("lora_B.weight", true)]
    [InlineData("base_model.model.lm_head.lora_A.weight", true)]
    [InlineData("model.layers.0.mlp.up_proj.base_layer.weight", false)]
    [InlineData("model.lora_A_extra.weight", false)]
    [InlineData("model.up_proj.lora_A.bias", false)]
    public void AdapterParameterNamesAreRecognised(string name, bool expected) =>
        Assert.Equal(expected, LoraLinear.IsAdapterParameter(name));

    [Fact]
    public void InjectionWrapsEveryLinearButTheHeadAndLeavesOutputsUnchanged()
    {
        using var model = new TinyCausalLm();
        model.eval();
        using var ids = torch.tensor(new long[] { 1, 4, 2, 7, 3, 9 }).view(2, 3);
        using var before = model.call(ids);
        var report = LoraInjection.Apply(model, new LoraOptions(Rank: 2), model.ReplaceModule);
        Assert.Equal(["model.layers.0.mlp.up_proj", "model.layers.0.mlp.down_proj", "model.layers.1.mlp.up_proj", "model.layers.1.mlp.down_proj"],
            report.WrappedModules);
        var freeze = ParameterFreezer.FreezeAllExcept(model, LoraLinear.IsAdapterParameter);
        Assert.Equal(8, freeze.Trainable.Count);
        Assert.All(freeze.Trainable, name => Assert.Matches(@"^model\.layers\.[01]\.mlp\.(up|down)_proj\.lora_[AB]\.weight$", name));
        Assert.Contains(model.named_parameters(), p => p.name == "model.layers.0.mlp.up_proj.base_layer.weight" && !p.parameter.requires_grad);
        using var after = model.call(ids);
        TensorAssert.Identical(before, after, "logits after injecting fresh adapters");
    }

    [Fact]
    public void TargetsFollowPeftSuffixRulesAndSpectrumSelections()
    {
        using var model = new TinyCausalLm(layers: 3);
        string[] moduleNames = ["model.layers.0.mlp.down_proj", "model.layers.1.mlp.down_proj", "model.layers.10.mlp.down_proj", "lm_head"];
        var targets = LoraInjection.ModulesSelectedBy(["^lm_head.weight$", "^model.embed_tokens.weight$", "model.layers.1.mlp.down_proj"], moduleNames);
        Assert.Equal(["model.layers.1.mlp.down_proj", "lm_head"], targets);
        var report = LoraInjection.Apply(model, new LoraOptions(Rank: 2, TargetModules: targets), model.ReplaceModule);
        Assert.Equal(targets, report.WrappedModules);

        using var other = new TinyCausalLm(layers: 3);
        Assert.Equal(["model.layers.0.mlp.down_proj", "model.layers.1.mlp.down_proj", "model.layers.2.mlp.down_proj"],
            LoraInjection.Apply(other, new LoraOptions(Rank: 2, TargetModules: ["down_proj"]), other.ReplaceModule).WrappedModules);
    }

    [Fact]
    public void TargetsThatMatchNoModuleAreRejectedBeforeAnythingIsWrapped()
    {
        using var model = new TinyCausalLm();
        var replaced = new List<string>();
        var error = Assert.Throws<TrainingConfigurationException>(() =>
            LoraInjection.Apply(model, new LoraOptions(Rank: 2, TargetModules: ["down_proj", "q_proj"]), (name, _) => replaced.Add(name)));
        Assert.Contains("\"q_proj\"", error.Message);
        Assert.Empty(replaced);
    }

    [Fact]
    public void DoubleQuantisationWithoutAQuantisedBaseNamesBothOptions()
    {
        using var model = new TinyCausalLm();
        var error = Assert.Throws<TrainingConfigurationException>(() =>
            LoraInjection.Apply(model, new LoraOptions(Rank: 2), model.ReplaceModule, quantizeBase: false, doubleQuantize: true));
        Assert.Contains("doubleQuantize", error.Message);
        Assert.Contains("quantizeBase", error.Message);
    }

    [Fact]
    public void QloraInjectionKeepsOnlyPackedCodesAndScalesOfTheBase()
    {
        using var model = new TinyCausalLm(hidden: 32);
        model.eval();
        using var ids = torch.tensor(new long[] { 1, 4, 2, 7, 3, 9, 0, 5 }).view(2, 4);
        using var before = model.call(ids);
        LoraInjection.Apply(model, new LoraOptions(Rank: 4), model.ReplaceModule, quantizeBase: true);
        Assert.DoesNotContain(model.named_parameters(), p => p.name.EndsWith("base_layer.weight", StringComparison.Ordinal));
        var buffers = model.named_buffers().ToDictionary(b => b.name, b => b.buffer);
        var packed = buffers["model.layers.0.mlp.up_proj.base_layer.weight_packed"];
        Assert.Equal(ScalarType.Byte, packed.dtype);
        Assert.Equal(64 * 32 / 2, packed.numel());                                       // up_proj is (64, 32)
        Assert.Equal(64 * 32 / 64, buffers["model.layers.0.mlp.up_proj.base_layer.weight_absmax"].numel());
        using var after = model.call(ids);
        double relative = ((after - before).norm() / before.norm()).item<float>();
        Assert.InRange(relative, 1e-6, 0.2);
    }

    [Fact]
    public void Nf4AdapterIsTheDequantisedLinearPlusTheLowRankTerm()
    {
        torch.random.manual_seed(8);
        var linear = nn.Linear(64, 16);
        using var lora = Nf4LoraLinear.FromLinear(linear, new LoraOptions(Rank: 4, Dropout: 0));
        var p = lora.named_parameters().ToDictionary(x => x.name, x => x.parameter);
        Assert.Equal(["base_layer.bias", "lora_A.weight", "lora_B.weight"], p.Keys.Order(StringComparer.Ordinal));
        Assert.False(p["base_layer.bias"].requires_grad);
        using (torch.no_grad())
            p["lora_B.weight"].normal_();
        using var input = torch.randn(3, 64);
        using var actual = lora.call(input);
        using var scope = torch.NewDisposeScope();
        var dense = lora.BaseLayer.Weight.Dequantize();
        var expected = nn.functional.linear(input, dense, p["base_layer.bias"])
            + torch.matmul(torch.matmul(input, p["lora_A.weight"].t()), p["lora_B.weight"].t()) * lora.Options.Scaling;
        Assert.True((actual - expected).abs().max().item<float>() < 1e-5);
        var merged = nn.functional.linear(input, lora.MergedWeight(), lora.MergedBias());
        Assert.True((actual - merged).abs().max().item<float>() < 1e-5);
        long residentBytes = lora.named_buffers().Sum(b => b.buffer.numel() * b.buffer.element_size());
        Assert.Equal(64 * 16 / 2 + 16 * 4, residentBytes);   // codes + one float32 scale per 64-element block
    }
}
