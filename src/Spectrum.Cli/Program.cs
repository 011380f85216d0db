// Entry point of the `spectrum` command line.
using Spectre.Console;
using Spectrum.Cli;

return SpectrumApp.Create(AnsiConsole.Console).Run(args);
