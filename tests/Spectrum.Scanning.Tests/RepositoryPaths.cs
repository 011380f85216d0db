// Locates the repository root and its committed reference fixtures from a test's output folder.
namespace Spectrum.Scanning.Tests;

internal static class RepositoryPaths
{
    public static string Root { get; } = FindRoot();

    public static string Fixture(params string[] parts) =>
        Path.Combine([Root, "tests", "reference", "fixtures", .. parts]);

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Spectrum.slnx"))) return dir.FullName;
        throw new InvalidOperationException($"No Spectrum.slnx above {AppContext.BaseDirectory}; run the tests from the repository.");
    }
}

/// <summary>A temporary folder deleted when the test ends.</summary>
internal sealed class TemporaryFolder : IDisposable
{
    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"spectrum-test-{Guid.NewGuid():N}");

    public TemporaryFolder() => Directory.CreateDirectory(Path);

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        if (Directory.Exists(Path)) Directory.Delete(Path, recursive: true);
    }
}
