// Runs the `spectrum` command line in-process on a test console, and finds the repository the tests were built from.
using System.Reflection;
using Spectre.Console.Testing;

namespace Spectrum.Cli.Tests;

internal static class CliRunner
{
    public static string RepositoryRoot { get; } = typeof(CliRunner).Assembly
        .GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "RepositoryRoot").Value!;

    /// <summary>Exit code and everything written; <paramref name="interactive"/> makes the console a terminal (prompts, live bars).</summary>
    public static (int ExitCode, string Output) Run(bool interactive, params string[] args)
    {
        var console = new TestConsole().Width(200);
        if (interactive)
            console.Interactive();
        int code = SpectrumApp.Create(console).Run(args);
        return (code, console.Output);
    }

    /// <summary>As <see cref="Run"/>, non-interactive, with a token the test cancels as Ctrl-C would.</summary>
    public static async Task<(int ExitCode, string Output)> RunAsync(CancellationToken cancellationToken, params string[] args)
    {
        var console = new TestConsole().Width(200);
        int code = await SpectrumApp.Create(console).RunAsync(args, cancellationToken);
        return (code, console.Output);
    }
}
