// Registers the commands of `spectrum` and turns library errors into messages and exit codes.
using Spectre.Console;
using Spectre.Console.Cli;
using Spectrum.Checkpoints;
using Spectrum.Cli.Commands;
using Spectrum.Modeling;
using Spectrum.Scanning;
using Spectrum.Selection;
using Spectrum.Text;
using Spectrum.Training;

namespace Spectrum.Cli;

public static class ExitCodes
{
    public const int Success = 0;
    public const int Unexpected = 1;
    public const int Usage = 2;
    public const int BadCheckpoint = 3;
    public const int BadScanResults = 4;
    public const int ScanFailed = 5;
    public const int Io = 6;
    public const int BadData = 7;
    public const int TrainingFailed = 8;
    /// <summary>Stopped by Ctrl-C (128 + SIGINT, as shells report it).</summary>
    public const int Interrupted = 130;
}

public static class SpectrumApp
{
    public static CommandApp Create(IAnsiConsole console)
    {
        var app = new CommandApp();
        app.Configure(config =>
        {
            config.SetApplicationName("spectrum");
            config.Settings.Console = console;
            config.Settings.StrictParsing = true;
            config.AddCommand<ScanCommand>("scan")
                .WithDescription("Score every weight matrix of a checkpoint by SNR and select the top modules per type.")
                .WithExample("scan", "path/to/model", "--top-percent", "25", "--out", "spectrum-out");
            config.AddCommand<SelectCommand>("select")
                .WithDescription("Re-select from a saved or published scan (snr_results*.json), without the model.")
                .WithExample("select", "snr_results_meta-llama-Meta-Llama-3-8B.json", "--top-percent", "50");
            config.AddCommand<TrainCommand>("train")
                .WithDescription("Fine-tune a Llama-family model: full, Spectrum-selected modules, LoRA, QLoRA or Spectrum + QLoRA.")
                .WithExample("train", "path/to/model", "--data", "train.jsonl", "--method", "spectrum", "--selection", "spectrum-out/unfrozen_parameters.yaml", "--out", "run");
            config.AddCommand<GenerateCommand>("generate")
                .WithDescription("Continue a prompt, or reply to it as a chat message, with a model folder (a KV cache; greedy or sampled).")
                .WithExample("generate", "run/model", "--chat", "--prompt", "What is 12 + 7?");
            config.AddCommand<DemoCommand>("demo")
                .WithDescription("Pretrain a small Llama on generated tasks, scan it, fine-tune it full and Spectrum-25 on a new task, and compare them.");
            config.SetExceptionHandler((exception, _) => Report(console, exception));
        });
        return app;
    }

    private static int Report(IAnsiConsole console, Exception exception)
    {
        (string title, int code) = exception switch
        {
            OperationCanceledException => ("Interrupted", ExitCodes.Interrupted),
            CommandParseException or CommandRuntimeException => ("Usage", ExitCodes.Usage),
            TrainingConfigurationException => ("Usage", ExitCodes.Usage),
            CheckpointException or ModelLoadException => ("Checkpoint error", ExitCodes.BadCheckpoint),
            // The library raises it for model types and config options it does not implement, with the alternatives.
            NotSupportedException => ("Not supported", ExitCodes.BadCheckpoint),
            DataFormatException => ("Data error", ExitCodes.BadData),
            TrainingCheckpointException or InvalidDataException => ("Training failed", ExitCodes.TrainingFailed),
            ScanResultsException => ("Scan results error", ExitCodes.BadScanResults),
            ScanException => ("Cannot scan", ExitCodes.ScanFailed),
            IOException or UnauthorizedAccessException => ("File error", ExitCodes.Io),
            _ => ("Unexpected error", ExitCodes.Unexpected),
        };
        string message = exception is OperationCanceledException
            ? "stopped before finishing. Result files are written only once complete, so none was left half-written."
            : exception.Message;
        console.MarkupLine($"[red]{title}:[/] {Markup.Escape(message)}");
        if (code == ExitCodes.Unexpected) console.WriteLine(exception.ToString());
        return code;
    }
}
