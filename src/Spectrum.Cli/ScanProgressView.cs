// Shows a running scan as a progress bar whose ETA follows the compute still to do, not the tensor count.
using Spectre.Console;
using Spectrum.Scanning;

namespace Spectrum.Cli;

internal static class ScanProgressView
{
    public static T Run<T>(IAnsiConsole console, Func<IProgress<ScanProgress>, T> scan)
    {
        if (!console.Profile.Capabilities.Interactive)
        {
            // Logs and pipes get one line per tenth of the work instead of a redrawn bar.
            int lastTenth = -1;
            return scan(new InlineProgress(p =>
            {
                int tenth = (int)(10 * p.WorkDone / Math.Max(1, p.WorkTotal));
                if (tenth == lastTenth) return;
                lastTenth = tenth;
                var eta = p.EstimatedRemaining is { } remaining ? $", about {remaining:hh\\:mm\\:ss} left" : "";
                console.MarkupLine($"[grey]{p.Done}/{p.Total} matrices, {100.0 * p.WorkDone / Math.Max(1, p.WorkTotal):F0}% of the work{eta}[/]");
            }));
        }

        T result = default!;
        console.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(context =>
            {
                var task = context.AddTask("Scanning", maxValue: 1);
                result = scan(new InlineProgress(p =>
                {
                    task.MaxValue = Math.Max(1, p.WorkTotal);
                    task.Value = p.WorkDone;
                    task.Description = $"{p.Done}/{p.Total} {Markup.Escape(p.LastModule ?? "")}";
                }));
                task.Value = task.MaxValue;
            });
        return result;
    }

    /// <summary>Reports synchronously on the scanning thread; Progress&lt;T&gt; would post to a thread pool and reorder updates.</summary>
    private sealed class InlineProgress(Action<ScanProgress> report) : IProgress<ScanProgress>
    {
        public void Report(ScanProgress value) => report(value);
    }
}
