// Tests of TokenGenerator on a tiny random model: greedy tokens are argmaxes of an independent full forward; stopping, limits, seeded sampling.
using TorchSharp;
using static TorchSharp.torch;

namespace Spectrum.Modeling.Tests;

public sealed class TokenGeneratorTests
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

        List<int> generated = Greedy(model, Prompt, newTokens, null);

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
        var free = Greedy(model, Prompt, 10, null);
        // Stop on the token generated third; if it was already generated earlier, generation ends at that first time.
        int stop = free[2];
        int firstAt = free.ToList().IndexOf(stop);

        var stopped = Greedy(model, Prompt, 10, stop);

        Assert.Equal(free.Take(firstAt + 1), stopped);
        Assert.Equal(stop, stopped[^1]);
    }

    [Fact]
    public void AStopTokenNeverProducedDoesNotShortenTheOutput()
    {
        using var model = TinyModel();
        var free = Greedy(model, Prompt, 8, null);
        int neverProduced = Enumerable.Range(0, Vocab).First(id => !free.Contains(id));

        Assert.Equal(free, Greedy(model, Prompt, 8, neverProduced));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(5)]
    public void GeneratesExactlyMaxNewTokensWithoutAStop(int maxNewTokens)
    {
        using var model = TinyModel();

        Assert.Equal(maxNewTokens, Greedy(model, Prompt, maxNewTokens, null).Count);
    }

    [Fact]
    public void SameModelAndPromptGiveTheSameTokensAndAShorterRunIsAPrefix()
    {
        using var model = TinyModel();
        using var twin = TinyModel();

        var first = Greedy(model, Prompt, 9, null);

        Assert.Equal(first, Greedy(model, Prompt, 9, null));
        Assert.Equal(first, Greedy(twin, Prompt, 9, null));
        Assert.Equal(first.Take(4), Greedy(model, Prompt, 4, null));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void RestoresTheModelsTrainOrEvalMode(bool training)
    {
        using var model = TinyModel();
        model.train(training);

        Greedy(model, Prompt, 2, null);

        Assert.Equal(training, model.training);
    }

    [Fact]
    public void LeavesGradientRecordingOnAfterwards()
    {
        using var model = TinyModel();

        Greedy(model, Prompt, 2, null);

        // The no_grad guard must end with the call, or a training step after a demo sample would record nothing.
        Assert.True(torch.is_grad_enabled());
    }

    [Fact]
    public void RejectsAnEmptyPromptOutOfRangeIdsAndANegativeLimit()
    {
        using var model = TinyModel();

        Assert.Throws<ArgumentException>(() => Greedy(model, [], 3, null));
        var outside = Assert.Throws<ArgumentOutOfRangeException>(() => Greedy(model, [1, Vocab], 3, null));
        Assert.Contains($"[0, {Vocab})", outside.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => Greedy(model, [1, -1], 3, null));
        Assert.Throws<ArgumentOutOfRangeException>(() => Greedy(model, Prompt, -1, null));
    }

    [Fact]
    public void StopsOnAnyOfSeveralStopIds()
    {
        using var model = TinyModel();
        var free = Greedy(model, Prompt, 10, null);
        int firstStop = free[3], neverProduced = Enumerable.Range(0, Vocab).First(id => !free.Contains(id));

        var stopped = TokenGenerator.Generate(model, Prompt, new GenerationSettings { MaxNewTokens = 10, StopTokenIds = [neverProduced, firstStop] }).ToList();

        Assert.Equal(free.Take(free.IndexOf(firstStop) + 1), stopped);
    }

    [Fact]
    public void ArgumentsAreCheckedAtTheCallNotWhenTheTokensAreRead()
    {
        using var model = TinyModel();
        var tooCold = new GenerationSettings { Sampling = new SamplingSettings(Temperature: 0) };

        // No enumeration: a lazy check would let these through.
        Assert.Throws<ArgumentException>(() => TokenGenerator.Generate(model, [], new GenerationSettings()));
        var error = Assert.Throws<ArgumentException>(() => TokenGenerator.Generate(model, Prompt, tooCold));
        Assert.Contains("temperature must be a positive number", error.Message);
    }

    [Fact]
    public void SamplingWithOneSeedRepeatsAndAnotherSeedDiffers()
    {
        using var model = TinyModel();
        List<int> Sample(long seed) => TokenGenerator.Generate(model, Prompt,
            new GenerationSettings { MaxNewTokens = 24, Sampling = new SamplingSettings(Temperature: 1.5, Seed: seed) }).ToList();

        var first = Sample(1);

        Assert.Equal(first, Sample(1));
        Assert.NotEqual(first, Sample(2));
        Assert.NotEqual(Greedy(model, Prompt, 24, null), first);
    }

    [Fact]
    public void SamplingThatKeepsOnlyTheBestTokenIsGreedy()
    {
        using var model = TinyModel();
        var greedy = Greedy(model, Prompt, 10, null);

        foreach (var keepOne in new[] { new SamplingSettings(TopK: 1, Seed: 5), new SamplingSettings(Temperature: 0.7, TopP: 1e-6, Seed: 6) })
        {
            Assert.Equal(greedy, TokenGenerator.Generate(model, Prompt, new GenerationSettings { MaxNewTokens = 10, Sampling = keepOne }).ToList());
        }
    }

    [Fact]
    public void StopsBetweenTokensWhenCancelled()
    {
        using var model = TinyModel();
        using var cancel = new CancellationTokenSource();
        var produced = new List<int>();

        Assert.Throws<OperationCanceledException>(() =>
        {
            foreach (int id in TokenGenerator.Generate(model, Prompt, new GenerationSettings { MaxNewTokens = 10 }, cancel.Token))
            {
                produced.Add(id);
                if (produced.Count == 3) cancel.Cancel();
            }
        });
        Assert.Equal(3, produced.Count);
        Assert.True(model.training, "an abandoned generation still hands the model back in its mode");
    }

    private static List<int> Greedy(LlamaForCausalLM model, IReadOnlyList<int> prompt, int maxNewTokens, int? stop) =>
        TokenGenerator.Generate(model, prompt, new GenerationSettings
        {
            MaxNewTokens = maxNewTokens,
            StopTokenIds = stop is { } id ? [id] : [],
        }).ToList();

    private static float[,] ToMatrix(Tensor logits)
    {
        int rows = (int)logits.shape[0], columns = (int)logits.shape[1];
        float[] flat = logits.contiguous().data<float>().ToArray();
        var matrix = new float[rows, columns];
        Buffer.BlockCopy(flat, 0, matrix, 0, flat.Length * sizeof(float));
        return matrix;
    }
}
