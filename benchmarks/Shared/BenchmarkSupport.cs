// What both benchmark drivers need: options, medians, GB text, and measuring in a fresh child process of this program.
using System.Diagnostics;
using System.Text.Json;

namespace Spectrum.BenchmarkSupport;

internal static class Cli
{
    /// <summary>The value after <paramref name="name"/> in <paramref name="args"/>, or null.</summary>
    public static string? Option(string[] args, string name)
    {
        int at = Array.IndexOf(args, name);
        return at >= 0 && at + 1 < args.Length ? args[at + 1] : null;
    }
}

internal static class Stats
{
    /// <summary>NaN for no values.</summary>
    public static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        if (sorted.Length == 0) return double.NaN;
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }

    public static string Gb(long bytes) => $"{bytes / 1e9:F2} GB";
}

internal static class ChildProcess
{
    /// <summary>
    /// Runs this benchmark program again with <paramref name="arguments"/> (so the measurement's peak memory is its own)
    /// and parses the JSON after the last "RESULT " line it prints.
    /// </summary>
    public static T Measure<T>(IReadOnlyList<string> arguments, string what)
    {
        var start = Path.GetFileName(Environment.ProcessPath!) is "dotnet"
            ? new ProcessStartInfo("dotnet", [typeof(ChildProcess).Assembly.Location, .. arguments])
            : new ProcessStartInfo(Environment.ProcessPath!, arguments);
        start.RedirectStandardOutput = true;
        start.UseShellExecute = false;
        using var process = Process.Start(start)!;
        string output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        string line = output.Split('\n').LastOrDefault(l => l.StartsWith("RESULT ", StringComparison.Ordinal))
                      ?? throw new InvalidOperationException($"{what} printed no result (exit {process.ExitCode}):\n{output}");
        return JsonSerializer.Deserialize<T>(line["RESULT ".Length..])!;
    }
}
