// Entry point of the `spectrum` command line: Ctrl-C or SIGTERM asks the running command to stop at its next safe point (a second Ctrl-C ends it at once).
using System.Runtime.InteropServices;
using Spectre.Console;
using Spectrum.Cli;

using var stop = new CancellationTokenSource();
Console.CancelKeyPress += (_, press) =>
{
    if (stop.IsCancellationRequested)
        return; // the second press: the default handling ends the process now
    press.Cancel = true;
    Console.Error.WriteLine("Stopping at the next safe point (after the current step); Ctrl-C again stops at once.");
    stop.Cancel();
};
using var terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, signal =>
{
    signal.Cancel = true;
    stop.Cancel();
});
return await SpectrumApp.Create(AnsiConsole.Console).RunAsync(args, stop.Token);
