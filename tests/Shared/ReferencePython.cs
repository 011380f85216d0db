// Runs Debian's /usr/bin/python3 for the independent reference checks; linked into the test projects that use it.
namespace Spectrum.Tests.Shared;

internal static class ReferencePython
{
    public const string Interpreter = "/usr/bin/python3";

    /// <summary>Null when python3 imports <paramref name="module"/>, else why not (naming the Debian package that .ci/run installs).</summary>
    public static string? CannotImport(string module, string debianPackage)
    {
        if (!File.Exists(Interpreter))
            return $"{Interpreter} does not exist";
        try
        {
            var (exitCode, _) = Run(["-c", $"import {module}"]);
            return exitCode == 0 ? null : $"{Interpreter} cannot import {module} (install {debianPackage}, as .ci/run does)";
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or IOException)
        {
            return $"{Interpreter} cannot be started: {e.Message}";
        }
    }

    /// <summary>Runs python3 with <paramref name="arguments"/>; returns the exit code and everything it printed (stdout, then stderr).</summary>
    public static (int ExitCode, string Output) Run(IReadOnlyList<string> arguments) => ReferenceProcess.Run(Interpreter, arguments);
}
