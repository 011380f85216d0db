// Pins the full parameter name/shape listing of every preset (approval files) and checks it against the checkpoint-side shape rules.
using System.Text;
using Spectrum.Checkpoints;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Spectrum.Modeling.Tests;

public sealed class ParameterListingTests(ITestOutputHelper output)
{
    /// <summary>Set to 1 to (re)write the approved listings after an intended change; review the diff before committing.</summary>
    private const string ApproveVariable = "SPECTRUM_APPROVE_LISTINGS";

    public static TheoryData<string> PresetNames { get; } = new(
        ["tiny-llama", "tiny-qwen2", "tiny-tied", "tiny-llama-attention-bias", .. LlamaConfig.Presets.Keys]);

    private static LlamaConfig Preset(string name) => name switch
    {
        "tiny-llama" => LlamaConfig.Tiny(),
        "tiny-qwen2" => LlamaConfig.Tiny(LlamaFamily.Qwen2),
        "tiny-tied" => LlamaConfig.Tiny(tieWordEmbeddings: true),
        "tiny-llama-attention-bias" => LlamaConfig.Tiny(attentionBias: true),
        _ => LlamaConfig.Presets[name],
    };

    [Theory]
    [MemberData(nameof(PresetNames))]
    public void Named_parameters_equal_the_approved_listing(string presetName)
    {
        // The meta device allocates nothing, so 8B-parameter presets list instantly.
        using var model = new LlamaForCausalLM(Preset(presetName), device: torch.META);
        string actual = Listing(model.named_parameters().Select(pair => (pair.name, pair.parameter.shape)));
        string approvedPath = RepositoryPaths.TestsFolder("Approved", $"{presetName}.parameters.txt");

        if (Environment.GetEnvironmentVariable(ApproveVariable) == "1")
        {
            Directory.CreateDirectory(Path.GetDirectoryName(approvedPath)!);
            File.WriteAllText(approvedPath, actual);
        }
        Assert.True(File.Exists(approvedPath),
            $"{approvedPath} does not exist; run the tests with {ApproveVariable}=1 to create it, then review it.");
        string approved = File.ReadAllText(approvedPath);
        if (approved != actual)
        {
            string received = Path.Combine(Path.GetTempPath(), $"{presetName}.parameters.received.txt");
            File.WriteAllText(received, actual);
            var firstDifferences = approved.Split('\n').Zip(actual.Split('\n'))
                .Select((pair, line) => (pair, line)).Where(x => x.pair.First != x.pair.Second).Take(5)
                .Select(x => $"line {x.line + 1}: approved '{x.pair.First}' vs now '{x.pair.Second}'");
            foreach (string line in firstDifferences) output.WriteLine(line);
            Assert.Fail($"{presetName}: parameter listing differs from {approvedPath} (received listing: {received}). " +
                $"If the change is intended, rerun with {ApproveVariable}=1 and review the diff.");
        }
    }

    [Theory]
    [MemberData(nameof(PresetNames))]
    public void Named_parameters_are_exactly_the_expected_checkpoint_tensors(string presetName)
    {
        var config = Preset(presetName);
        using var model = new LlamaForCausalLM(config, device: torch.META);
        var actual = model.named_parameters().Select(pair => (pair.name, pair.parameter.shape)).ToList();
        var expected = config.ExpectedTensors();
        Assert.Equal(expected.Select(t => t.Name), actual.Select(p => p.name));
        Assert.All(expected.Zip(actual), pair => Assert.Equal(pair.First.Shape, pair.Second.shape));
    }

    /// <summary>Independent cross-check: Spectrum.Checkpoints' own Llama shape rules accept our listing for our config.json.</summary>
    [Theory]
    [MemberData(nameof(PresetNames))]
    public void Listing_satisfies_the_checkpoint_shape_rules_of_the_written_config(string presetName)
    {
        var config = Preset(presetName);
        using var model = new LlamaForCausalLM(config, device: torch.META);
        var modelConfig = ModelConfig.Parse(config.ToConfigJson("float32"), "in-memory config.json");
        var entries = model.named_parameters()
            .Select(pair => new TensorEntry(pair.name, SafetensorsDType.F32, pair.parameter.shape, 0, 0, "in-memory"))
            .ToList();
        Assert.Empty(LlamaTensorShapes.FindMismatches(modelConfig, entries));
    }

    [Fact]
    public void SmolLM135M_has_its_published_parameter_count()
    {
        // By hand from SmolLM-135M's config.json: embeddings 49152×576, 30 layers of (2×576² + 2×192×576 +
        // 3×1536×576 + 2×576) = 3,540,096, final norm 576; the tied head adds nothing.
        Assert.Equal(49152L * 576 + 30L * 3_540_096 + 576, LlamaConfig.SmolLM135M.ParameterCount);
        Assert.Equal(134_515_008, LlamaConfig.SmolLM135M.ParameterCount);
    }

    private static string Listing(IEnumerable<(string Name, long[] Shape)> parameters)
    {
        var text = new StringBuilder();
        foreach (var (name, shape) in parameters)
        {
            text.Append(name).Append(' ').Append(TensorEntry.FormatShape(shape)).Append('\n');
        }
        return text.ToString();
    }
}
