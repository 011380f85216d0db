// Tests of GreedyGenerator on a tiny random model: each token is the argmax of an independent full forward, stopping and limits.
using TorchSharp;
using static TorchSharp.torch;

namespace Spectrum.Modeling.Tests;

public sealed class GreedyGeneratorTests
{
    private const int Vocab = 50;
    private static readonly int[] Prompt = [3, 17, 42, 8, 0];

    private static LlamaForCausalLM TinyModel(ulong seed = 7) =>
        new(LlamaConfig.Tiny(vocabSize: Vocab), generator: new Generator(seed));

    [Fact]
    public void EachTokenIsTheArgmaxOfOneForwardOverPromptAndGeneratedPrefix()
    {
        using var model = TinyModel();
        const int newTokens = 12;

        IReadOnlyList<int> generated = GreedyGenerator.Generate(model, Prompt, newTokens, stopTokenId: null);

        Assert.Equal(newTokens, generated.Count);
        // One causal forward over the whole sequence gives, at position p, the logits for the token at p + 1: an
        // independent check of the incremental loop. A tolerance of 1e-4 allows float noise between sequence lengths.
        using var scope = torch.NewDisposeScope();
        long[] all = [.. Prompt.Select(i => (long)i), .. generated.Select(i => (long)i)];
        model.eval();
        using var noGrad = torch.no_grad();
        float[,] logits = ToMatrix(model.forward(torch.tensor(all, dtype: ScalarType.Int64).unsqueeze(0))[0]); // (seq, vocab)
        for (int k = 0; k < newTokens; k++)
        {
            int row = Prompt.Length - 1 + k;
            float best = Enumerable.Range(0, Vocab).Max(v => logits[row, v]);
            Assert.True(logits[row, generated[k]] >= best - 1e-4f,
                $"token {k} is {generated[k]} with logit {logits[row, generated[k]]}, but the largest logit there is {best}");
        }
    }

    [Fact]
    public void StopsRightAfterTheStopToken()
    {
        using var model = TinyModel();
        IReadOnlyList<int> free = GreedyGenerator.Generate(model, Prompt, 10, stopTokenId: null);
        // Stop on the token generated third; if it was already generated earlier, generation ends at that first time.
        int stop = free[2];
        int firstAt = free.ToList().IndexOf(stop);

        IReadOnlyList<int> stopped = GreedyGenerator.Generate(model, Prompt, 10, stopTokenId: stop);

        Assert.Equal(free.Take(firstAt + 1), stopped);
        Assert.Equal(stop, stopped[^1]);
    }

    [Fact]
    public void AStopTokenNeverProducedDoesNotShortenTheOutput()
    {
        using var model = TinyModel();
        IReadOnlyList<int> free = GreedyGenerator.Generate(model, Prompt, 8, stopTokenId: null);
        int neverProduced = Enumerable.Range(0, Vocab).First(id => !free.Contains(id));

        Assert.Equal(free, GreedyGenerator.Generate(model, Prompt, 8, stopTokenId: neverProduced));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(5)]
    public void GeneratesExactlyMaxNewTokensWithoutAStop(int maxNewTokens)
    {
        using var model = TinyModel();

        Assert.Equal(maxNewTokens, GreedyGenerator.Generate(model, Prompt, maxNewTokens, stopTokenId: null).Count);
    }

    [Fact]
    public void SameModelAndPromptGiveTheSameTokensAndAShorterRunIsAPrefix()
    {
        using var model = TinyModel();
        using var twin = TinyModel();

        IReadOnlyList<int> first = GreedyGenerator.Generate(model, Prompt, 9, null);

        Assert.Equal(first, GreedyGenerator.Generate(model, Prompt, 9, null));
        Assert.Equal(first, GreedyGenerator.Generate(twin, Prompt, 9, null));
        Assert.Equal(first.Take(4), GreedyGenerator.Generate(model, Prompt, 4, null));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void RestoresTheModelsTrainOrEvalMode(bool training)
    {
        using var model = TinyModel();
        model.train(training);

        GreedyGenerator.Generate(model, Prompt, 2, null);

        Assert.Equal(training, model.training);
    }

    [Fact]
    public void LeavesGradientRecordingOnAfterwards()
    {
        using var model = TinyModel();

        GreedyGenerator.Generate(model, Prompt, 2, null);

        // The no_grad guard must end with the call, or a training step after a demo sample would record nothing.
        Assert.True(torch.is_grad_enabled());
    }

    [Fact]
    public void RejectsAnEmptyPromptOutOfRangeIdsAndANegativeLimit()
    {
        using var model = TinyModel();

        Assert.Throws<ArgumentException>(() => GreedyGenerator.Generate(model, [], 3, null));
        var outside = Assert.Throws<ArgumentOutOfRangeException>(() => GreedyGenerator.Generate(model, [1, Vocab], 3, null));
        Assert.Contains($"[0, {Vocab})", outside.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => GreedyGenerator.Generate(model, [1, -1], 3, null));
        Assert.Throws<ArgumentOutOfRangeException>(() => GreedyGenerator.Generate(model, Prompt, -1, null));
    }

    private static float[,] ToMatrix(Tensor logits)
    {
        int rows = (int)logits.shape[0], columns = (int)logits.shape[1];
        float[] flat = logits.contiguous().data<float>().ToArray();
        var matrix = new float[rows, columns];
        Buffer.BlockCopy(flat, 0, matrix, 0, flat.Length * sizeof(float));
        return matrix;
    }
}
