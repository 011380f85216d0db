// Locates committed fixtures through the repository root recorded at build time.
using System.Reflection;

namespace Spectrum.Training.Tests.TestSupport;

internal static class RepositoryPaths
{
    public static string Root { get; } = typeof(RepositoryPaths).Assembly
        .GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "RepositoryRoot").Value!;

    public static string Fixture(params string[] parts)
    {
        string path = Path.Combine([Root, "tests", "reference", "fixtures", .. parts]);
        if (!File.Exists(path))
            throw new FileNotFoundException($"{path} is missing: run /usr/bin/python3 tests/reference/make_nf4_fixture.py, then rebuild the tests.", path);
        return path;
    }
}
