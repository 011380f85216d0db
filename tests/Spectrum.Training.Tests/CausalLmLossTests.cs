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
}
