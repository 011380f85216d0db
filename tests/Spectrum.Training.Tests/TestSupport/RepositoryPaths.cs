// Locates committed fixtures through the repository root recorded at build time, and decodes their float32 bit strings.
using System.Globalization;
using System.Reflection;
using System.Text.Json;

namespace Spectrum.Training.Tests.TestSupport;

internal static class RepositoryPaths
{
    public static string Root { get; } = typeof(RepositoryPaths).Assembly
        .GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "RepositoryRoot").Value!;

    public static string Fixture(params string[] parts)
    {
        string path = Path.Combine([Root, "tests", "reference", "fixtures", .. parts]);
        if (!File.Exists(path))
            throw new FileNotFoundException(
                $"{path} is missing: run the tests/reference/make_*_fixture.py script that writes it (with /usr/bin/python3), then rebuild the tests.", path);
        return path;
    }

    /// <summary>A fixture's array of float32 bit patterns ("3f800000"), as the reference scripts write them.</summary>
    public static float[] Floats(JsonElement array) =>
        array.EnumerateArray().Select(e => BitConverter.Int32BitsToSingle(int.Parse(e.GetString()!, NumberStyles.HexNumber, CultureInfo.InvariantCulture))).ToArray();
}
