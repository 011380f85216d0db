// Runs an external reference program (python3, node) and collects what it printed; linked into the test projects that use one.
using System.Diagnostics;

namespace Spectrum.Tests.Shared;

internal static class ReferenceProcess
{
    /// <summary>Runs <paramref name="program"/>; returns the exit code and everything it printed (stdout, then stderr).</summary>
    public static (int ExitCode, string Output) Run(string program, IReadOnlyList<string> arguments)
    {
        var start = new ProcessStartInfo(program, arguments)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        using var process = Process.Start(start)!;
        var error = process.StandardError.ReadToEndAsync();
        string output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, output + error.Result);
    }
}
