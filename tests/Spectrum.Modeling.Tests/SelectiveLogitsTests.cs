// LogitsAt (logits only where the loss needs them) against the rows of the full forward, tied and untied heads, and its gradients.
using FsCheck;
using FsCheck.Xunit;
using TorchSharp;
using static TorchSharp.torch;

namespace Spectrum.Modeling.Tests;

public sealed class SelectiveLogitsTests
{
    private static readonly Lazy<LlamaForCausalLM> Tied = new(() => Build(tied: true));
    private static readonly Lazy<LlamaForCausalLM> Untied = new(() => Build(tied: false));

    private static LlamaForCausalLM Build(bool tied) =>
        new(LlamaConfig.Tiny(hiddenSize: 32, intermediateSize: 64, vocabSize: 50) with { TieWordEmbeddings = tied, InitializerRange = 0.2 },
            generator: new Generator(77));

    /// <summary>
    /// Any subset of positions, in any order, gives the same rows as the full forward. The head's product over fewer
    /// rows may block differently, so equality is to float32 rounding (measured ≤ 1e-6; bound 1e-5).
    /// </summary>
    [Property(MaxTest = 20)]
    public bool Selected_rows_equal_the_full_forwards_rows(PositiveInt seed, bool tied)
    {
        var model = (tied ? Tied : Untied).Value;
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var ids = Tensors.RandomIds(2, 9, 50, seed.Get);
        var generator = new Generator((ulong)seed.Get);
        long count = 1 + seed.Get % 18;
        var positions = torch.randperm(18, generator: generator).narrow(0, 0, count);
        var full = model.forward(ids).reshape(18, 50).index_select(0, positions);
        var selected = model.LogitsAt(ids, positions);
        return selected.dtype == ScalarType.Float32 && selected.shape.SequenceEqual(new long[] { count, 50 })
               && full.sub(selected).abs().max().item<float>() <= 1e-5f;
    }

    [Fact]
    public void Gradients_through_selected_rows_equal_those_through_the_full_logits()
    {
        using var model = Build(tied: true);
        using var ids = Tensors.RandomIds(1, 8, 50, 3);
        using var positions = torch.tensor(new long[] { 1, 4, 6 });
        using var weights = torch.randn(3, 50, generator: new Generator(4));
        using (var full = model.forward(ids).reshape(8, 50).index_select(0, positions))
            full.mul(weights).sum().backward();
        var expected = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.clone());
        model.zero_grad();
        using (var selected = model.LogitsAt(ids, positions))
            selected.mul(weights).sum().backward();
        // Float32 sums over differently blocked products: equal to 1e-5 of each gradient's largest entry.
        foreach (var (name, parameter) in model.named_parameters())
        {
            float scale = expected[name].abs().max().item<float>();
            float difference = (expected[name] - parameter.grad!).abs().max().item<float>();
            Assert.True(difference <= 1e-5f * scale, $"{name}: gradients differ by {difference} (largest entry {scale})");
        }
    }

    [Fact]
    public void Positions_must_be_a_vector_of_int64_indices()
    {
        var model = Tied.Value;
        using var ids = Tensors.RandomIds(1, 4, 50, 1);
        using var wrongType = torch.tensor(new[] { 1, 2 });
        using var wrongRank = torch.zeros(new long[] { 1, 2 }, ScalarType.Int64);
        Assert.Contains("1-D int64", Assert.Throws<ArgumentException>(() => model.LogitsAt(ids, wrongType)).Message);
        Assert.Throws<ArgumentException>(() => model.LogitsAt(ids, wrongRank));
        using var outside = torch.tensor(new long[] { 0, 4 });
        Assert.Contains("batch·seq = 4", Assert.Throws<ArgumentException>(() => model.LogitsAt(ids, outside)).Message);
        using var negative = torch.tensor(new long[] { -1 });
        Assert.Throws<ArgumentException>(() => model.LogitsAt(ids, negative));
    }
}
