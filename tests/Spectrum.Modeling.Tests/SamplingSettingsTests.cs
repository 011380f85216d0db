// Sampling's next-token distribution equals transformers' warpers (independent Python reference), and seeded draws follow it.
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace Spectrum.Modeling.Tests;

public sealed class SamplingSettingsTests
{
    /// <summary>Float32 softmax against the float64 reference over at most 40 tokens.</summary>
    private const double Tolerance = 1e-6;

    public static TheoryData<string> ReferenceCases()
    {
        var data = new TheoryData<string>();
        foreach (var item in Reference().RootElement.GetProperty("cases").EnumerateArray())
            data.Add(item.GetProperty("name").GetString()!);
        return data;
    }

    [Theory]
    [MemberData(nameof(ReferenceCases))]
    public void ProbabilitiesMatchTheReference(string name)
    {
        var item = Reference().RootElement.GetProperty("cases").EnumerateArray().Single(c => c.GetProperty("name").GetString() == name);
        float[] logits = item.GetProperty("logits").EnumerateArray().Select(v => v.GetSingle()).ToArray();
        double[] expected = item.GetProperty("probabilities").EnumerateArray().Select(v => v.GetDouble()).ToArray();
        var settings = new SamplingSettings(item.GetProperty("temperature").GetDouble(), item.GetProperty("top_k").GetInt32(), item.GetProperty("top_p").GetDouble());

        using var scope = torch.NewDisposeScope();
        float[] actual = settings.Probabilities(torch.tensor(logits)).data<float>().ToArray();

        for (int i = 0; i < expected.Length; i++)
        {
            Assert.True(Math.Abs(actual[i] - expected[i]) <= Tolerance, $"{name}: token {i} has probability {actual[i]:R}, reference {expected[i]:R}");
            // A removed token must be exactly impossible, not merely unlikely.
            Assert.Equal(expected[i] == 0, actual[i] == 0);
        }
    }

    [Fact]
    public void RowsOfABatchAreWarpedIndependently()
    {
        using var scope = torch.NewDisposeScope();
        var settings = new SamplingSettings(Temperature: 0.8, TopK: 4, TopP: 0.7);
        var rows = torch.randn([3, 30], generator: new Generator(2));

        var together = settings.Probabilities(rows);

        for (int row = 0; row < 3; row++)
            Assert.Equal(0, together[row].sub(settings.Probabilities(rows[row])).abs().max().item<float>());
    }

    /// <summary>
    /// 20,000 seeded draws through the generator's own draw (multinomial) land on each token with the warped
    /// probability: within 5 standard errors per token (a fixed seed, so the test cannot flake), and never on a removed one.
    /// </summary>
    [Fact]
    public void DrawsFollowTheWarpedDistribution()
    {
        using var scope = torch.NewDisposeScope();
        var settings = new SamplingSettings(Temperature: 1.2, TopK: 6, TopP: 0.9);
        var probabilities = settings.Probabilities(torch.randn([25], generator: new Generator(11)).mul(2));
        const int draws = 20_000;

        var counts = torch.bincount(torch.multinomial(probabilities, draws, replacement: true, generator: new Generator(3)), minlength: 25);

        float[] p = probabilities.data<float>().ToArray();
        long[] n = counts.data<long>().ToArray();
        for (int token = 0; token < p.Length; token++)
        {
            double standardError = Math.Sqrt(p[token] * (1 - p[token]) / draws);
            double share = n[token] / (double)draws;
            Assert.True(Math.Abs(share - p[token]) <= 5 * standardError + 1e-12,
                $"token {token}: drawn {share:P2} of the time, probability {p[token]:P2}");
        }
    }

    [Theory]
    [InlineData(0.0, 0, 1.0, "temperature")]
    [InlineData(-1.0, 0, 1.0, "temperature")]
    [InlineData(double.NaN, 0, 1.0, "temperature")]
    [InlineData(double.PositiveInfinity, 0, 1.0, "temperature")]
    [InlineData(1.0, -2, 1.0, "top-k")]
    [InlineData(1.0, 0, 0.0, "top-p")]
    [InlineData(1.0, 0, 1.5, "top-p")]
    public void SettingsThatCannotSampleAreNamed(double temperature, int topK, double topP, string named)
    {
        var settings = new SamplingSettings(temperature, topK, topP);

        Assert.StartsWith(named, settings.Problem());
        using var scope = torch.NewDisposeScope();
        Assert.Throws<ArgumentException>(() => settings.Probabilities(torch.zeros(5)));
    }

    private static JsonDocument Reference() =>
        JsonDocument.Parse(File.ReadAllText(RepositoryPaths.Fixture("sampling", "warpers.json")));
}
