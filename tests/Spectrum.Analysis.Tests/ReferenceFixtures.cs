// Loads the committed PyTorch reference fixtures (tests/reference/fixtures/snr, made by make_snr_fixtures.py).
using System.Text.Json;
using System.Text.Json.Serialization;
using static TorchSharp.torch;

namespace Spectrum.Analysis.Tests;

/// <summary>The published method's intermediates as the Python transcription computed them.</summary>
public sealed record ReferenceScore(
    double Q25, double Q75, double Sigma, double Threshold, double Signal, double Noise,
    [property: JsonPropertyName("signal_count")] int SignalCount, double Snr, double Score);

/// <summary>One fixture matrix and its expected spectra and scores.</summary>
public sealed record ReferenceFixture(
    string Name, string File, int Rows, int Cols, string Description,
    [property: JsonPropertyName("svdvals_float32")] double[] SvdvalsFloat32,
    [property: JsonPropertyName("svdvals_float64")] double[] SvdvalsFloat64,
    [property: JsonPropertyName("from_float32")] ReferenceScore FromFloat32,
    [property: JsonPropertyName("from_float64")] ReferenceScore FromFloat64)
{
    public override string ToString() => Name;
}

internal static class ReferenceFixtures
{
    private sealed record Document(int Format, ReferenceFixture[] Fixtures);

    /// <summary>The fixtures are copied beside the test assembly by the .csproj.</summary>
    public static string Folder { get; } = Path.Combine(AppContext.BaseDirectory, "fixtures", "snr");

    private static readonly Lazy<ReferenceFixture[]> All = new(Load);

    public static IReadOnlyList<ReferenceFixture> Fixtures => All.Value;

    public static IEnumerable<object[]> Names() => Fixtures.Select(f => new object[] { f.Name });

    public static ReferenceFixture Get(string name) => Fixtures.Single(f => f.Name == name);

    /// <summary>The fixture's matrix as a (rows, cols) float32 tensor.</summary>
    public static Tensor Matrix(ReferenceFixture fixture)
    {
        string path = Path.Combine(Folder, fixture.File);
        byte[] bytes = System.IO.File.ReadAllBytes(path);
        if (bytes.Length != 4L * fixture.Rows * fixture.Cols)
            throw new InvalidDataException($"{path}: {bytes.Length} bytes, expected {4L * fixture.Rows * fixture.Cols} for a " +
                                           $"{fixture.Rows}×{fixture.Cols} float32 matrix; regenerate with tests/reference/make_snr_fixtures.py.");
        var w = empty(fixture.Rows, fixture.Cols, ScalarType.Float32);
        bytes.CopyTo(w.bytes); // little-endian float32 on a little-endian host
        return w;
    }

    private static ReferenceFixture[] Load()
    {
        string path = Path.Combine(Folder, "expected.json");
        if (!System.IO.File.Exists(path))
            throw new FileNotFoundException(
                $"{path} is missing: run /usr/bin/python3 tests/reference/make_snr_fixtures.py, then rebuild the tests.", path);
        var options = new JsonSerializerOptions
        {
            PropertyNameCaseInsensitive = true,
            NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals, // "NaN", "Infinity"
        };
        var document = JsonSerializer.Deserialize<Document>(System.IO.File.ReadAllText(path), options)
                       ?? throw new InvalidDataException($"{path} is empty.");
        if (document.Format != 1)
            throw new InvalidDataException($"{path} has format {document.Format}; this test code reads format 1.");
        return document.Fixtures;
    }
}
