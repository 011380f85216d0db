// Generation speed: TokenGenerator's KV cache against the obvious loop (one full forward over everything so far per new token), same model, prompt and tokens.
//   dotnet run --project benchmarks/Spectrum.TrainingBenchmarks -c Release -- generation [--shape smollm] [--prompt 64] [--new 64] [--runs 3] [--out DIR]
// Writes DIR/generation.md. Both loops are greedy and must produce the same ids in float32 (checked), so the ratio compares equal work products.
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Spectrum.BenchmarkSupport;
using Spectrum.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace Spectrum.TrainingBenchmarks;

internal static class GenerationBenchmark
{
    public static int Run(string[] args)
    {
        string shapeKey = Cli.Option(args, "--shape") ?? "smollm";
        if (!Driver.Shapes.TryGetValue(shapeKey, out var chosen) || shapeKey == "llama3-8b")
        {
            Console.Error.WriteLine($"--shape must be tiny or smollm (the uncached baseline is far too slow at 8B); got '{shapeKey}'.");
            return 2;
        }
        int promptLength = int.Parse(Cli.Option(args, "--prompt") ?? "64", CultureInfo.InvariantCulture);
        int newTokens = int.Parse(Cli.Option(args, "--new") ?? "64", CultureInfo.InvariantCulture);
        int runs = int.Parse(Cli.Option(args, "--runs") ?? "3", CultureInfo.InvariantCulture);
        string output = Path.GetFullPath(Cli.Option(args, "--out") ?? Path.Combine("benchmark-results", $"generation-{shapeKey}"));
        string model = Path.Combine(output, "work", "model");
        Driver.Prepare(chosen.Shape, chosen.SequenceLength, steps: 1, model, Path.Combine(output, "work", "data.jsonl"), seed: 42);

        var table = new StringBuilder();
        table.AppendLine($"Greedy generation on the generated {chosen.Shape.Name} checkpoint: {promptLength} prompt tokens, {newTokens} new; " +
                         $"median of {runs} runs, {Environment.ProcessorCount} cores, one process.").AppendLine();
        table.AppendLine("| precision | KV cache: tokens/s | full forward per token: tokens/s | speed-up | same ids |");
        table.AppendLine("|---|---:|---:|---:|---|");
        foreach (var dtype in new[] { ScalarType.Float32, ScalarType.BFloat16 })
        {
            using var loaded = LlamaForCausalLM.FromPretrained(model, dtype);
            loaded.eval();
            var prompt = Enumerable.Range(0, promptLength).Select(i => (i * 37 + 11) % loaded.Config.VocabSize).ToArray();
            var cachedSeconds = new List<double>();
            var fullSeconds = new List<double>();
            IReadOnlyList<int> cachedIds = [], fullIds = [];
            for (int run = 0; run < runs; run++)
            {
                var clock = Stopwatch.StartNew();
                cachedIds = TokenGenerator.Generate(loaded, prompt, new GenerationSettings { MaxNewTokens = newTokens }).ToList();
                cachedSeconds.Add(clock.Elapsed.TotalSeconds);
                clock.Restart();
                fullIds = FullForwardPerToken(loaded, prompt, newTokens);
                fullSeconds.Add(clock.Elapsed.TotalSeconds);
                Console.WriteLine($"  {dtype} run {run + 1}: cached {cachedSeconds[^1]:F2} s, full forward per token {fullSeconds[^1]:F2} s");
            }
            double cached = newTokens / Stats.Median(cachedSeconds), full = newTokens / Stats.Median(fullSeconds);
            // bf16 rounds the two paths differently, so near-ties may flip there; float32 must agree.
            string same = cachedIds.SequenceEqual(fullIds) ? "yes" : $"no (first differs at {cachedIds.Zip(fullIds).TakeWhile(p => p.First == p.Second).Count()})";
            table.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| {(dtype == ScalarType.Float32 ? "fp32" : "bf16")} | {cached:F1} | {full:F1} | {cached / full:F1}× | {same} |"));
        }
        Directory.CreateDirectory(output);
        File.WriteAllText(Path.Combine(output, "generation.md"), table.ToString());
        Console.WriteLine();
        Console.Write(table);
        return 0;
    }

    /// <summary>The baseline: each new token is the argmax of the last row of a forward over prompt and generated so far.</summary>
    private static List<int> FullForwardPerToken(LlamaForCausalLM model, IReadOnlyList<int> prompt, int newTokens)
    {
        var sequence = prompt.Select(id => (long)id).ToList();
        var generated = new List<int>();
        using var noGrad = torch.no_grad();
        for (int i = 0; i < newTokens; i++)
        {
            using var scope = NewDisposeScope();
            var logits = model.forward(torch.tensor(sequence.ToArray()).unsqueeze(0));
            int next = (int)logits[0, -1].argmax().item<long>();
            generated.Add(next);
            sequence.Add(next);
        }
        return generated;
    }
}
