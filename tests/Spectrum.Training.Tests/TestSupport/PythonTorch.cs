// Runs the independent Python reference scripts from tests; the facts using it skip (visibly) where python3 has no torch.
using System.Diagnostics;

namespace Spectrum.Training.Tests.TestSupport;

internal static class PythonTorch
{
    public const string Interpreter = "/usr/bin/python3";

    /// <summary>Null when python3 can import torch (CI installs Debian's python3-torch), else why not.</summary>
    public static string? Unavailable { get; } = Probe();

    /// <summary>Runs a script under tests/reference with arguments; returns the exit code and everything it printed.</summary>
    public static (int ExitCode, string Output) RunReferenceScript(string script, params string[] arguments)
    {
        var start = new ProcessStartInfo(Interpreter, [Path.Combine(RepositoryPaths.Root, "tests", "reference", script), .. arguments])
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

    private static string? Probe()
    {
        if (!File.Exists(Interpreter))
            return $"{Interpreter} does not exist";
        try
        {
            using var process = Process.Start(new ProcessStartInfo(Interpreter, ["-c", "import torch"])
            {
                RedirectStandardError = true,
                UseShellExecute = false,
            })!;
            process.StandardError.ReadToEnd();
            process.WaitForExit();
            return process.ExitCode == 0 ? null : $"{Interpreter} cannot import torch (install python3-torch, as .ci/run does)";
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or IOException)
        {
            return $"{Interpreter} cannot be started: {e.Message}";
        }
    }
}

/// <summary>A theory that needs python3 with torch; skipped, with the reason, where that is missing.</summary>
public sealed class PythonTorchTheoryAttribute : TheoryAttribute
{
    public PythonTorchTheoryAttribute()
    {
        if (PythonTorch.Unavailable is { } reason)
            Skip = reason;
    }
}
