// Runs the independent Python reference scripts from tests; the facts using it skip (visibly) where python3 has no torch.
using Spectrum.Tests.Shared;

namespace Spectrum.Training.Tests.TestSupport;

internal static class PythonTorch
{
    /// <summary>Null when python3 can import torch (CI installs Debian's python3-torch), else why not.</summary>
    public static string? Unavailable { get; } = ReferencePython.CannotImport("torch", "python3-torch");

    /// <summary>Runs a script under tests/reference with arguments; returns the exit code and everything it printed.</summary>
    public static (int ExitCode, string Output) RunReferenceScript(string script, params string[] arguments) =>
        ReferencePython.Run([Path.Combine(RepositoryPaths.Root, "tests", "reference", script), .. arguments]);
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
