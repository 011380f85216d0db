// The next-token loss against a hand computation: shift by one, −100 ignored, summed in float32.
using TorchSharp;
using static TorchSharp.torch;

namespace Spectrum.Training.Tests;

public sealed class CausalLmLossTests
{
    [Fact]
    public void SumsNegativeLogLikelihoodOfTheNextTokenSkippingIgnoredLabels()
    {
        // batch 1, seq 3, vocab 4.
        float[,] logits = { { 0f, 1f, 2f, 3f }, { 1f, 0f, -1f, 0.5f }, { 9f, 9f, 9f, 9f } };
        long[] labels = [2, 3, CausalLmLoss.IgnoreIndex];
        using var logitTensor = torch.tensor(logits.Cast<float>().ToArray()).view(1, 3, 4);
        using var labelTensor = torch.tensor(labels).view(1, 3);
        // Position 0 predicts label[1] = 3 from logits row 0; position 1 predicts label[2] = −100 (ignored); the last row predicts nothing.
        double expected = -(3 - Math.Log(Math.Exp(0) + Math.Exp(1) + Math.Exp(2) + Math.Exp(3)));
        using var loss = CausalLmLoss.SumOverTargets(logitTensor, labelTensor);
        Assert.Equal(expected, loss.item<float>(), 5);
        Assert.Equal(1, CausalLmLoss.CountTargets(labelTensor));
    }

    [Fact]
    public void LabelAtPositionZeroNeverCounts()
    {
        using var labels = torch.tensor(new long[] { 5, CausalLmLoss.IgnoreIndex, 1, 2 }).view(2, 2);
        Assert.Equal(1, CausalLmLoss.CountTargets(labels));   // only labels[1, 1]
    }

    [Fact]
    public void MismatchedShapesAreRejected()
    {
        using var logits = torch.zeros(2, 3, 5);
        using var labels = torch.zeros(new long[] { 2, 4 }, ScalarType.Int64);
        Assert.Throws<ArgumentException>(() => CausalLmLoss.SumOverTargets(logits, labels));
        using var floatLabels = torch.zeros(2, 3);
        Assert.Throws<ArgumentException>(() => CausalLmLoss.SumOverTargets(logits, floatLabels));
    }

    [Fact]
    public void SelectedTargetsGiveTheSameLossAndGradientAsTheFullLogits()
    {
        torch.random.manual_seed(5);
        using var logits = torch.randn(3, 6, 11).requires_grad_(true);
        var raw = torch.randint(0, 11, [3, 6], dtype: ScalarType.Int64);
        // Ignore about half, including whole rows' prefixes, as response-only masking does.
        using var labels = raw.masked_fill(torch.rand(3, 6).lt(0.5), CausalLmLoss.IgnoreIndex);
        var (positions, targets) = CausalLmLoss.Targets(labels);
        Assert.Equal(CausalLmLoss.CountTargets(labels), positions.numel());
        // Flat position b·seq + t predicts labels[b, t+1].
        var flatLabels = labels.reshape(-1);
        for (long i = 0; i < positions.numel(); i++)
        {
            long position = positions[i].item<long>();
            Assert.NotEqual(5, position % 6);
            Assert.Equal(flatLabels[position + 1].item<long>(), targets[i].item<long>());
        }

        using var full = CausalLmLoss.SumOverTargets(logits, labels);
        full.backward();
        using var fullGradient = logits.grad!.clone();
        logits.grad = null;
        using var selected = CausalLmLoss.SumOverSelected(logits.reshape(-1, 11).index_select(0, positions), targets);
        selected.backward();
        Assert.Equal(full.item<float>(), selected.item<float>(), 5);
        Assert.True((fullGradient - logits.grad!).abs().max().item<float>() < 1e-6);
    }

    [Fact]
    public void NoTargetsGiveEmptySelectionsAndZeroLoss()
    {
        using var labels = torch.full(2, 4, CausalLmLoss.IgnoreIndex, ScalarType.Int64);
        var (positions, targets) = CausalLmLoss.Targets(labels);
        Assert.Equal(0, positions.numel());
        Assert.Equal(0, targets.numel());
        using var loss = CausalLmLoss.SumOverSelected(torch.zeros(0, 7), targets);
        Assert.Equal(0f, loss.item<float>());
    }
}
