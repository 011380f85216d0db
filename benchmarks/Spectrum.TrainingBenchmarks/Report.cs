// Turns the training benchmark's measurements into the README table (paper figures beside ours) and a ScottPlot bar chart.
using System.Globalization;
using System.Text;
using ScottPlot;
using Spectrum.Scanning;
using Spectrum.Training;
using Spectrum.Training.Recipes;
using Spectrum.BenchmarkSupport;

namespace Spectrum.TrainingBenchmarks;

internal static class Report
{
    // Issue 3's anchor, measured on the development machine with PyTorch 1.13 (CPU, OpenBLAS), SmolLM-135M shape,
    // sequence 256, batch 1, AdamW; and the targets set against it.
    private const double PyTorchFullSecondsPerStep = 9.45;
    private const double TargetSpectrum25Memory = 0.65;
    private const double TargetSpectrum25Time = 0.60;

    public static string Markdown(LlamaShape shape, int sequenceLength, int steps, int runs, TrainingPrecision precision,
        IReadOnlyList<Measurement> rows, IReadOnlyDictionary<string, PaperFigure> paper)
    {
        // Without a full fine-tuning row (methods filtered, e.g. at 8B) the ratio columns are left empty.
        var full = rows.SingleOrDefault(r => r.Label == "full");
        var paperFull = paper["full"];
        string precisionText = precision == TrainingPrecision.BFloat16
            ? "bf16 weights and activations with float32 master copies of the trained weights (`--precision bf16`)"
            : "float32 (`--precision fp32`)";
        var text = new StringBuilder()
            .AppendLine($"### {FineTuneOptions.CliName(precision)}")
            .AppendLine()
            .AppendLine($"Generated {shape.Name}-shaped model (hidden {shape.HiddenSize}, MLP {shape.IntermediateSize}, {shape.Layers} layers, " +
                        $"{shape.Heads} heads / {shape.KeyValueHeads} KV, vocab {shape.VocabSize}, tied {shape.TieEmbeddings}), {precisionText} on CPU, " +
                        $"sequence {sequenceLength}, batch 1, AdamW, {steps} steps, {runs} run(s) per method, {Environment.ProcessorCount} cores. " +
                        "Peak RSS: VmHWM of the method's own process (load, quantisation, training); above runtime: that minus the RSS of the " +
                        ".NET runtime with LibTorch loaded, before the model, which dominates for small shapes. Step time: median, first step excluded; " +
                        "forward / backward / optimizer: medians of each phase. Matmul work: the step's matrix-product work relative to full " +
                        "(every weight's forward and input-gradient products, weight-gradient products for trainable weights only, the output head's " +
                        "only over positions with a target) — the step-time ratio if matrix products were all the work. " +
                        "Paper: Llama-3-8B, peak memory per GPU and training time on 8×L40S, as ratios to its full fine-tuning.")
            .AppendLine()
            .AppendLine("| method | trainable parameters | peak RSS | × full | above runtime | × full | median step | × full | forward / backward / optimizer | matmul work × full | final train loss | validation loss | paper peak memory / GPU × full | paper training time × full |")
            .AppendLine("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        foreach (var row in rows)
        {
            string paperMemory = paper.TryGetValue(row.Label, out var p) ? $"{p.PeakGbPerGpu / paperFull.PeakGbPerGpu:F2}× ({p.PeakGbPerGpu:F2} GB)" : "not run";
            string paperTime = p is null ? "not run" : $"{p.TrainingSeconds / paperFull.TrainingSeconds:F2}× ({TimeSpan.FromSeconds(p.TrainingSeconds):h\\:mm\\:ss})";
            text.AppendLine(
                $"| {row.Label} | {row.TrainableParameters:N0} ({(double)row.TrainableParameters / row.TotalParameters:P1}) | {Stats.Gb(row.PeakResidentBytes)} | " +
                $"{Ratio(row.PeakResidentBytes, full?.PeakResidentBytes)} | {Stats.Gb(row.AddedBytes)} | {Ratio(row.AddedBytes, full?.AddedBytes)} | {row.MedianStepSeconds:F3} s | {Ratio(row.MedianStepSeconds, full?.MedianStepSeconds)} | " +
                $"{row.MedianPhases.ForwardSeconds:F3} / {row.MedianPhases.BackwardSeconds:F3} / {row.MedianPhases.OptimizerSeconds:F3} s | " +
                $"{(row.MatmulWork is { } work ? work.ToString("F2", CultureInfo.InvariantCulture) + "×" : "–")} | " +
                $"{row.FinalLoss:F4} | {(row.ValidationLoss is { } v ? v.ToString("F4", CultureInfo.InvariantCulture) : "–")} | {paperMemory} | {paperTime} |");
        }

        var s25 = rows.SingleOrDefault(r => r.Label == "Spectrum-25");
        if (full is null || s25 is null)
            return text.ToString();
        double memoryRatio = (double)s25.PeakResidentBytes / full.PeakResidentBytes, timeRatio = s25.MedianStepSeconds / full.MedianStepSeconds;
        text.AppendLine()
            .AppendLine($"Spectrum-25 vs full: peak memory {memoryRatio:F2}× (target ≤ {TargetSpectrum25Memory:F2}×: {Verdict(memoryRatio <= TargetSpectrum25Memory)}), " +
                        $"step time {timeRatio:F2}× (target ≤ {TargetSpectrum25Time:F2}×: {Verdict(timeRatio <= TargetSpectrum25Time)}; its matmul work is " +
                        $"{s25.MatmulWork:F2}× full's).");
        if (shape == LlamaShape.SmolLM135M && sequenceLength == 256 && precision == TrainingPrecision.Float32)
            text.AppendLine($"Full fine-tuning {full.MedianStepSeconds:F2} s/step vs PyTorch 1.13 on the same shape and machine {PyTorchFullSecondsPerStep:F2} s/step " +
                            $"(target: no slower: {Verdict(full.MedianStepSeconds <= PyTorchFullSecondsPerStep)}).");
        return text.ToString();
    }

    private static string Verdict(bool met) => met ? "met" : "NOT met";

    private static string Ratio(double value, double? full) => full is { } f ? $"{value / f:F2}×" : "–";

    /// <summary>Per method: our peak memory and step time, and the paper's memory and time, each relative to full fine-tuning.</summary>
    public static void Chart(string path, LlamaShape shape, TrainingPrecision precision, IReadOnlyList<Measurement> rows, IReadOnlyDictionary<string, PaperFigure> paper)
    {
        // Bars are ratios to full fine-tuning; without it there is nothing to draw.
        if (rows.SingleOrDefault(r => r.Label == "full") is not { } full)
            return;
        var paperFull = paper["full"];
        var palette = new ScottPlot.Palettes.Category10();
        (string Name, Color Color)[] series =
        [
            ("ours: peak memory", palette.GetColor(0)), ("ours: step time", palette.GetColor(1)),
            ("paper (Llama-3-8B): peak memory / GPU", palette.GetColor(0).WithAlpha(0.4)),
            ("paper (Llama-3-8B): training time", palette.GetColor(1).WithAlpha(0.4)),
        ];
        var plot = new Plot();
        var bars = new List<Bar>();
        for (int i = 0; i < rows.Count; i++)
        {
            var row = rows[i];
            paper.TryGetValue(row.Label, out var p);
            double?[] values =
            [
                (double)row.PeakResidentBytes / full.PeakResidentBytes, row.MedianStepSeconds / full.MedianStepSeconds,
                p is null ? null : p.PeakGbPerGpu / paperFull.PeakGbPerGpu, p is null ? null : p.TrainingSeconds / paperFull.TrainingSeconds,
            ];
            for (int s = 0; s < values.Length; s++)
            {
                if (values[s] is not { } value) continue;   // the paper ran no plain LoRA: no bar rather than a zero
                bars.Add(new Bar { Position = i * 5 + s, Value = value, FillColor = series[s].Color, Label = value.ToString("F2", CultureInfo.InvariantCulture) });
            }
        }
        plot.Add.Bars(bars);
        var line = plot.Add.HorizontalLine(1);
        line.LinePattern = LinePattern.Dashed;
        line.Color = Colors.Gray;
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
            rows.Select((_, i) => i * 5 + 1.5).ToArray(), rows.Select(r => r.Label).ToArray());
        // Head room above the tallest bar keeps the legend clear of the bars.
        plot.Axes.SetLimitsY(0, bars.Max(b => b.Value) * 1.45);
        plot.YLabel("relative to full fine-tuning");
        plot.Title($"{shape.Name} shape on CPU ({FineTuneOptions.CliName(precision)}) vs the paper's Llama-3-8B runs (bf16)");
        plot.ShowLegend(series.Select(s => new LegendItem { LabelText = s.Name, FillColor = s.Color }), Alignment.UpperRight);
        plot.SavePng(path, 1100, 550);
    }
}
