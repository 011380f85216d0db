// Shows what a fine-tuning run will train and then its steps: a bar with loss, tokens/s and ETA, or a line per tenth when not a terminal.
using Spectre.Console;
using Spectrum.Training;
using Spectrum.Training.Recipes;

namespace Spectrum.Cli;

internal static class TrainProgressView
{
    private static readonly TimeSpan LogInterval = TimeSpan.FromMinutes(1);

    public static T Run<T>(IAnsiConsole console, Func<Action<FineTunePlan>, Action<TrainingProgress>, T> train)
    {
        if (!console.Profile.Capabilities.Interactive)
        {
            // Logs and pipes get one line per tenth of the steps (and the last) instead of a redrawn bar, and at least
            // one a minute, so a long run's log shows it is alive.
            int lastTenth = -1;
            TimeSpan lastLine = TimeSpan.Zero;
            return train(plan => WritePlan(console, plan), p =>
            {
                int tenth = 10 * p.Step / Math.Max(1, p.TotalSteps);
                if (tenth == lastTenth && p.Step != p.TotalSteps && p.Elapsed - lastLine < LogInterval) return;
                (lastTenth, lastLine) = (tenth, p.Elapsed);
                console.MarkupLine($"[grey]{Describe(p)}, about {p.EstimatedRemaining:hh\\:mm\\:ss} left[/]");
            });
        }

        T result = default!;
        console.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .Start(context =>
            {
                // Lines written while the bar is live appear above it, so the plan stays on screen.
                // The run's length is known once the data is packed (--epochs), so the bar's maximum comes with the plan.
                var task = context.AddTask("Loading model and data", maxValue: 1);
                result = train(plan =>
                {
                    WritePlan(console, plan);
                    task.MaxValue = Math.Max(1, plan.TotalSteps);
                }, p =>
                {
                    task.Value = p.Step;
                    task.Description = Markup.Escape(Describe(p));
                });
                task.Value = task.MaxValue;
            });
        return result;
    }

    private static string Describe(TrainingProgress p) =>
        $"step {p.Step}/{p.TotalSteps} loss {p.Loss:F4}{(p.ValidationLoss is { } v ? $" (validation {v:F4})" : "")}, {p.TokensPerSecond:F0} tokens/s";

    private static void WritePlan(IAnsiConsole console, FineTunePlan plan)
    {
        console.MarkupLine($"Method [bold]{FineTuneOptions.CliName(plan.Method)}[/]: {plan.TrainableParameters:N0} of {plan.TotalParameters:N0} parameters trainable " +
                           $"([bold]{plan.TrainableFraction:P2}[/]) in {plan.Modules.Count} tensors/modules; {plan.TrainingSequences} training and {plan.ValidationSequences} validation sequences, " +
                           (plan.IsolatedDocuments
                               ? "each packed example attending only to itself."
                               : "packed examples attending to the earlier ones in their row (--attend-across-documents).") +
                           (plan.ChatTemplate is { } template ? $" Conversations in the [bold]{template}[/] chat format." : ""));
        if (plan.TotalSteps > 0)
            console.MarkupLine($"{plan.TotalSteps:N0} steps of {plan.RowsPerStep} rows: [bold]{plan.Epochs:0.##}[/] epochs over the {plan.TrainingSequences:N0} training rows.");
        foreach (string warning in plan.Warnings ?? [])
            console.MarkupLine($"[yellow]{Markup.Escape(warning)}[/]");
        var m = plan.Memory;
        string masters = m.MasterWeightBytes > 0 ? $" + float32 masters {Mb(m.MasterWeightBytes)}" : "";
        console.MarkupLine($"Estimated memory ({FineTuneOptions.CliName(plan.Precision)} on CPU): weights {Mb(m.WeightBytes)}{masters} + gradients {Mb(m.GradientBytes)} + AdamW {Mb(m.OptimizerBytes)} " +
                           $"= [bold]{Mb(m.TotalBytes)}[/], plus about {Mb(plan.ActivationBytes)} of activations per micro-batch. " +
                           "[grey]Temporaries and allocator overhead come on top: measured peaks of full and Spectrum fine-tuning were 1.0-1.3x this (README, Benchmarks).[/]");
        if (plan.NativeBf16 == false)
            console.MarkupLine("[yellow]This CPU has no native bf16 matrix products (AVX512-BF16, AMX or Arm BF16): torch emulates them, " +
                               "so --precision bf16 may train slower than fp32 here.[/]");
        if (plan.ResumedFromStep is { } step)
            console.MarkupLine($"Resuming from the checkpoint of step [bold]{step}[/].");
    }

    private static string Mb(long bytes) => $"{bytes / 1048576.0:F1} MiB";
}
