// Finds the repository root (the folder with Spectrum.slnx) and the shared data beside it, wherever the build output lives.
using System.Runtime.CompilerServices;

namespace Spectrum.Selection.Tests.Support;

internal static class RepositoryPaths
{
    public static string Root { get; } = FindRoot();

    /// <summary>The reference's published scans, committed as test data.</summary>
    public static string PublishedScans => Path.Combine(Root, "tests", "reference", "fixtures", "published-scans");

    public static string PublishedScan(string fileName) => Path.Combine(PublishedScans, fileName);

    public static string TestData(string fileName) => Path.Combine(Root, "tests", "Spectrum.Selection.Tests", "TestData", fileName);

    // Build output may sit outside the clone (--artifacts-path /tmp/...), so start from this source file's
    // compile-time path first, then from the output and working folders.
    private static string FindRoot([CallerFilePath] string sourceFile = "")
    {
        foreach (string? start in new[] { Path.GetDirectoryName(sourceFile), AppContext.BaseDirectory, Directory.GetCurrentDirectory() })
        {
            for (var folder = string.IsNullOrEmpty(start) ? null : new DirectoryInfo(start); folder is not null; folder = folder.Parent)
            {
                if (File.Exists(Path.Combine(folder.FullName, "Spectrum.slnx")))
                    return folder.FullName;
            }
        }
        throw new InvalidOperationException(
            $"Could not find Spectrum.slnx above \"{sourceFile}\", \"{AppContext.BaseDirectory}\" or \"{Directory.GetCurrentDirectory()}\". " +
            "Run the tests from inside the repository clone.");
    }
}
