// End-to-end: our forward pass over checkpoints written by an independent PyTorch script reproduces that script's logits.
using Spectrum.Checkpoints;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Spectrum.Modeling.Tests;

public sealed class ReferenceLogitsTests(ITestOutputHelper output)
{
    /// <summary>The issue's bound: max abs error ≤ 1e-4 against float32 PyTorch logits from the same decoded weights.</summary>
    private const float Tolerance = 1e-4f;

    [Theory]
    [InlineData("llama3_bf16_sharded")]
    [InlineData("qwen2_bias_f32")]
    [InlineData("tied_f16")]
    public void Logits_match_the_pytorch_reference(string fixtureCase)
    {
        using var scope = torch.NewDisposeScope();
        using var model = LlamaForCausalLM.FromPretrained(RepositoryPaths.Fixture("llama", fixtureCase, "model"));
        string expected = RepositoryPaths.Fixture("llama", fixtureCase, "expected.safetensors");
        var ids = ExpectedFile.Read(expected, "input_ids");

        using var noGrad = torch.no_grad();
        AssertClose(ExpectedFile.Read(expected, "logits"), model.forward(ids), fixtureCase);
    }

    [Fact]
    public void Logits_with_packed_and_strided_positions_match_the_reference()
    {
        using var scope = torch.NewDisposeScope();
        const string fixtureCase = "llama3_bf16_sharded";
        using var model = LlamaForCausalLM.FromPretrained(RepositoryPaths.Fixture("llama", fixtureCase, "model"));
        string expected = RepositoryPaths.Fixture("llama", fixtureCase, "expected.safetensors");
        var ids = ExpectedFile.Read(expected, "input_ids");
        var positions = ExpectedFile.Read(expected, "position_ids");

        using var noGrad = torch.no_grad();
        var logits = model.forward(ids, positions);
        AssertClose(ExpectedFile.Read(expected, "logits_at_positions"), logits, fixtureCase + " (position ids)");
        // The positions must matter, otherwise this test would not exercise them.
        Assert.True(logits.sub(model.forward(ids)).abs().max().item<float>() > 0.1f);
    }

    [Theory]
    [InlineData("llama3_bf16_sharded", LlamaFamily.Llama, false, true)]
    [InlineData("qwen2_bias_f32", LlamaFamily.Qwen2, true, false)]
    [InlineData("tied_f16", LlamaFamily.Llama, false, false)]
    public void Fixture_configs_are_read_as_their_families(string fixtureCase, LlamaFamily family, bool bias, bool scaled)
    {
        using var checkpoint = Checkpoint.Open(RepositoryPaths.Fixture("llama", fixtureCase, "model"));
        var config = LlamaConfig.From(checkpoint.Config!);
        Assert.Equal(family, config.Family);
        Assert.Equal(bias, config.AttentionBias);
        Assert.False(config.OutputProjectionBias);
        Assert.Equal(scaled, config.RopeScaling is { Kind: RopeScalingKind.Llama3 });
        checkpoint.ValidateAgainstConfig();
    }

    private void AssertClose(Tensor expected, Tensor actual, string what)
    {
        Assert.Equal(expected.shape, actual.shape);
        Assert.Equal(ScalarType.Float32, actual.dtype);
        float[] want = Tensors.Floats(expected), got = Tensors.Floats(actual);
        var mismatches = new List<string>();
        float worst = 0;
        for (int i = 0; i < want.Length; i++)
        {
            float error = Math.Abs(want[i] - got[i]);
            worst = float.IsNaN(error) ? float.NaN : Math.Max(worst, error);
            if (!(error <= Tolerance) && mismatches.Count < 10)
            {
                long vocab = expected.shape[^1], seq = expected.shape[1];
                mismatches.Add($"[{i / vocab / seq}, {i / vocab % seq}, {i % vocab}]: ours {got[i]:R}, reference {want[i]:R}, |Δ| {error:E2}");
            }
        }
        output.WriteLine($"{what}: max abs error {worst:E2} over {want.Length} logits (bound {Tolerance:E0})");
        foreach (string line in mismatches) output.WriteLine(line);
        Assert.True(mismatches.Count == 0 && !float.IsNaN(worst),
            $"{what}: max abs error {worst:E2} exceeds {Tolerance:E0}; first mismatches:\n{string.Join("\n", mismatches)}");
    }
}
