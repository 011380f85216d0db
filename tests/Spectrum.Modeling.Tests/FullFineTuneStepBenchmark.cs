// Measures one full fine-tuning step (forward, backward, AdamW) at the SmolLM-135M shape; a measurement to report, not a test (no timing asserts), skipped by default.
using System.Diagnostics;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Spectrum.Modeling.Tests;

/// <summary>Runs only when SPECTRUM_RUN_BENCHMARKS=1, so the unit suite stays fast and free of machine-dependent timing.</summary>
public sealed class BenchmarkFactAttribute : FactAttribute
{
    public const string Variable = "SPECTRUM_RUN_BENCHMARKS";

    public BenchmarkFactAttribute()
    {
        if (Environment.GetEnvironmentVariable(Variable) != "1")
        {
            Skip = $"Benchmark; set {Variable}=1 to run it.";
        }
    }
}

[Trait("Category", "Benchmark")]
public sealed class FullFineTuneStepBenchmark(ITestOutputHelper output)
{
    private const long Batch = 1, Sequence = 256;
    private const int WarmupSteps = 1, MeasuredSteps = 4;

    // Separate facts so each can run in its own process (peak RSS of one configuration, no leftovers of the other):
    // dotnet test … --filter "FullyQualifiedName~SmolLM135M_float32_step_without_checkpointing"
    [BenchmarkFact]
    public void SmolLM135M_float32_step_without_checkpointing() => Measure(gradientCheckpointing: false);

    [BenchmarkFact]
    public void SmolLM135M_float32_step_with_gradient_checkpointing() => Measure(gradientCheckpointing: true);

    private void Measure(bool gradientCheckpointing)
    {
        ResetPeakResidentMemory();
        var config = LlamaConfig.SmolLM135M;
        using var model = new LlamaForCausalLM(config, ScalarType.Float32, generator: new Generator(1))
        {
            GradientCheckpointing = gradientCheckpointing,
        };
        using var optimizer = torch.optim.AdamW(model.parameters(), lr: 1e-5);
        var ids = Tensors.RandomIds(Batch, Sequence, config.VocabSize, seed: 2);
        var forward = new List<double>();
        var backward = new List<double>();
        var step = new List<double>();
        var total = new List<double>();
        double peakForwardBackward = 0, peakOptimizer = 0;
        for (int i = 0; i < WarmupSteps + MeasuredSteps; i++)
        {
            using var scope = torch.NewDisposeScope();
            var clock = Stopwatch.StartNew();
            optimizer.zero_grad();
            var loss = Tensors.NextTokenLoss(model.forward(ids), ids);
            double afterForward = clock.Elapsed.TotalSeconds;
            loss.backward();
            double afterBackward = clock.Elapsed.TotalSeconds;
            peakForwardBackward = Math.Max(peakForwardBackward, ResidentMegabytes("VmHWM:"));
            ResetPeakResidentMemory();
            optimizer.step();
            double afterStep = clock.Elapsed.TotalSeconds;
            peakOptimizer = Math.Max(peakOptimizer, ResidentMegabytes("VmHWM:"));
            ResetPeakResidentMemory();
            if (i >= WarmupSteps)
            {
                forward.Add(afterForward);
                backward.Add(afterBackward - afterForward);
                step.Add(afterStep - afterBackward);
                total.Add(afterStep);
            }
            output.WriteLine($"  step {i}{(i < WarmupSteps ? " (warm-up)" : "")}: loss {loss.item<float>():F4}, " +
                $"{afterStep:F2} s, RSS now {ResidentMegabytes("VmRSS:"):N0} MB");
        }
        output.WriteLine(
            $"SmolLM-135M ({config.ParameterCount:N0} parameters), float32, batch {Batch} × {Sequence} tokens, AdamW, " +
            $"gradient checkpointing {(gradientCheckpointing ? "on" : "off")}, {torch.get_num_threads()} torch threads: " +
            $"step {total.Average():F2} s (min {total.Min():F2}) = forward {forward.Average():F2} + backward " +
            $"{backward.Average():F2} + AdamW {step.Average():F2}; peak RSS {Math.Max(peakForwardBackward, peakOptimizer):N0} MB " +
            $"(during forward+backward {peakForwardBackward:N0} MB, during AdamW {peakOptimizer:N0} MB)");
    }

    /// <summary>Linux: writing 5 to clear_refs resets VmHWM to the current RSS, so each phase reports its own peak.</summary>
    private static void ResetPeakResidentMemory()
    {
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
        }
        catch (Exception failure) when (failure is IOException or UnauthorizedAccessException)
        {
            // Not Linux or not permitted: the reported peak then covers the whole process so far.
        }
    }

    /// <summary>A /proc/self/status memory field ("VmRSS:" now, "VmHWM:" peak) in MB; NaN off Linux.</summary>
    private static double ResidentMegabytes(string field)
    {
        string? line = File.Exists("/proc/self/status")
            ? File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith(field, StringComparison.Ordinal))
            : null;
        return line is null ? double.NaN : long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) / 1024.0;
    }
}
