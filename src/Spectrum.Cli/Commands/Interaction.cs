// Decides whether a command may ask questions: only in a real terminal, never when scripted or told not to.
using Spectre.Console;

namespace Spectrum.Cli.Commands;

internal static class Interaction
{
    public static bool CanPrompt(IAnsiConsole console, bool nonInteractive) =>
        !nonInteractive
        && console.Profile.Capabilities.Interactive
        && !Console.IsInputRedirected
        && Environment.GetEnvironmentVariable("CI") is null;
}
