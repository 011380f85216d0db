// Scan benchmark driver: generates checkpoints of real shapes, measures each method in its own process, prints a table.
//   dotnet run --project benchmarks/Spectrum.Benchmarks -c Release -- [--shapes smollm,tinyllama,llama3-8b] [--runs 3] [--work DIR]
// Other subcommands: `precision` (PrecisionTable.cs) and `calibrate` (GuardCalibration.cs).
// Each measurement runs in a fresh child process so peak resident memory (VmHWM, memory-mapped pages included) is its own.
using System.Diagnostics;
using Spectrum.BenchmarkSupport;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Spectrum.Analysis;
using Spectrum.Benchmarks;
using Spectrum.Checkpoints;
using Spectrum.Scanning;
using Spectrum.Selection;
using TorchSharp;

if (args.Length >= 3 && args[0] == "measure") return Measure.Run(args[1], args[2], args.Length > 3 ? args[3] : null);
if (args.Length >= 1 && args[0] == "precision") return PrecisionTable.Run(args);
if (args.Length >= 1 && args[0] == "calibrate") return GuardCalibration.Run(args);
return Driver.Run(args);

internal sealed record Measurement(string Method, double Seconds, long PeakResidentBytes, string? ScoresFile);

internal static class Driver
{
    private static readonly Dictionary<string, LlamaShape> ShapesByKey = new()
    {
        ["demo"] = LlamaShape.Demo,
        ["smollm"] = LlamaShape.SmolLM135M,
        ["tinyllama"] = LlamaShape.TinyLlama1B,
        ["llama3-8b"] = LlamaShape.Llama3_8B,
    };

    public static int Run(string[] args)
    {
        string shapesArg = Cli.Option(args, "--shapes") ?? "smollm,tinyllama,llama3-8b";
        int runs = int.Parse(Cli.Option(args, "--runs") ?? "3", CultureInfo.InvariantCulture);
        string work = Cli.Option(args, "--work") ?? Path.Combine(Path.GetTempPath(), "spectrum-bench");
        string? markdownOut = Cli.Option(args, "--markdown");
        long publishedMemoryLimit = 16L << 30;
        bool generateOnly = args.Contains("--generate-only");

        var rows = new List<string>();
        foreach (var key in shapesArg.Split(','))
        {
            var shape = ShapesByKey[key];
            string folder = Path.Combine(work, key);
            EnsureCheckpoint(folder, shape);
            if (generateOnly) continue;
            long float32Bytes = shape.ParameterCount * 4;
            int shapeRuns = shape == LlamaShape.Llama3_8B ? 1 : runs;
            var ours = new List<Measurement>(); var floor = new List<Measurement>(); var published = new List<Measurement>();
            for (int run = 0; run < shapeRuns; run++)
            {
                ours.Add(Child("ours", folder, Path.Combine(work, $"{key}-ours.json")));
                floor.Add(Child("floor", folder, Path.Combine(work, $"{key}-ours.json")));
                if (float32Bytes <= publishedMemoryLimit)
                    published.Add(Child("published", folder, Path.Combine(work, $"{key}-published.json")));
            }
            string selectionCheck = published.Count == 0 ? "not run" : CompareSelections(
                Path.Combine(work, $"{key}-ours.json"), Path.Combine(work, $"{key}-published.json"));
            double oursSeconds = Stats.Median(ours.Select(m => m.Seconds));
            double floorSeconds = Stats.Median(floor.Select(m => m.Seconds));
            string publishedCell = published.Count == 0
                ? $"not run: needs {float32Bytes / 1e9:F0} GB in float32"
                : $"{Stats.Median(published.Select(m => m.Seconds)):F1} s, {Stats.Gb(published.Max(m => m.PeakResidentBytes))}";
            string speedup = published.Count == 0 ? "–" : $"{Stats.Median(published.Select(m => m.Seconds)) / oursSeconds:F2}×";
            rows.Add($"| {shape.Name} | {shapeRuns} | {oursSeconds:F1} s | {Stats.Gb(ours.Max(m => m.PeakResidentBytes))} | {floorSeconds:F1} s | " +
                     $"{oursSeconds / floorSeconds:F2}× | {publishedCell} | {speedup} | {selectionCheck} |");
            Console.WriteLine(rows[^1]);
        }
        var table = new StringBuilder()
            .AppendLine("| shape (bf16, sharded) | runs | our scan (median) | our peak RSS | compute floor (median) | ours / floor | published method (float32 svdvals, median; peak RSS) | speed-up vs published | same selection (25%) |")
            .AppendLine("|---|---|---|---|---|---|---|---|---|");
        foreach (var row in rows) table.AppendLine(row);
        Console.WriteLine();
        Console.Write(table);
        if (markdownOut is not null) File.WriteAllText(markdownOut, table.ToString());
        return 0;
    }

    private static void EnsureCheckpoint(string folder, LlamaShape shape)
    {
        string marker = Path.Combine(folder, ".complete");
        if (File.Exists(marker)) return;
        if (Directory.Exists(folder)) Directory.Delete(folder, true);
        Console.WriteLine($"Generating {shape.Name} ({shape.ParameterCount / 1e9:F2} B parameters, bf16) in {folder} ...");
        var watch = Stopwatch.StartNew();
        long shardBytes = Math.Min(5_000_000_000L, shape.ParameterCount * 2 / 2 + 1);
        SyntheticLlama.Write(folder, shape, SafetensorsDType.BF16, shardBytes, seed: 11);
        File.WriteAllText(marker, "");
        Console.WriteLine($"  generated in {watch.Elapsed.TotalSeconds:F0} s");
    }

    private static Measurement Child(string method, string folder, string scoresFile)
    {
        var result = ChildProcess.Measure<Measurement>(["measure", method, folder, scoresFile], $"'{method}' on {folder}");
        Console.WriteLine($"  {Path.GetFileName(folder)} {method}: {result.Seconds:F1} s, peak {Stats.Gb(result.PeakResidentBytes)}");
        return result;
    }

    private static string CompareSelections(string oursFile, string publishedFile)
    {
        var ours = TopPercentSelection.Select(ScanResultsJson.Read(oursFile), 25).SelectedModules.ToHashSet();
        var published = TopPercentSelection.Select(ScanResultsJson.Read(publishedFile), 25).SelectedModules.ToHashSet();
        var oursScores = ScanResultsJson.Read(oursFile).ToDictionary(s => s.Module, s => s.Score);
        double worst = ScanResultsJson.Read(publishedFile).Max(p => Math.Abs(oursScores[p.Module] - p.Score) / Math.Abs(p.Score));
        return $"{(ours.SetEquals(published) ? "yes" : $"no ({ours.Except(published).Count()} differ)")}; max score rel. diff {worst:E1}";
    }
}

internal static class Measure
{
    public static int Run(string method, string folder, string? scoresFile)
    {
        using var checkpoint = Checkpoint.Open(folder);
        var candidates = ModuleCatalog.Discover(checkpoint, false, true).Choose(null);
        var watch = Stopwatch.StartNew();
        switch (method)
        {
            case "ours":
            {
                var report = new SpectrumScanner(new SingularValueEngine(new ScanOptions().EngineOptions)).Scan(checkpoint, candidates);
                watch.Stop();
                ScanResultsJson.WriteFlat(scoresFile!, report.Scores);
                File.WriteAllLines(scoresFile + ".precision", report.Modules.Select(m => $"{m.Module}\t{m.Precision}\t{m.Escalated}"));
                break;
            }
            case "published":
            {
                var scores = PublishedMethod.Scan(checkpoint, candidates);
                watch.Stop();
                ScanResultsJson.WriteFlat(scoresFile!, scores);
                break;
            }
            case "floor":
            {
                // The compute alone: the engine's Gram product + float64 eigvalsh per matrix on a float32 matrix already in
                // memory, forced to the precision our scan ended with for that module (no reading, decoding or pipelining).
                var precision = File.ReadAllLines(scoresFile + ".precision").Select(l => l.Split('\t'))
                    .ToDictionary(p => p[0], p => Enum.Parse<GramPrecision>(p[1]));
                var engines = new Dictionary<GramPrecision, SingularValueEngine>
                {
                    [GramPrecision.Float32] = new(new SingularValueEngineOptions(ForcePrecision: GramPrecision.Float32)),
                    [GramPrecision.Float64] = new(new SingularValueEngineOptions(ForcePrecision: GramPrecision.Float64)),
                };
                watch.Reset();
                var generator = new torch.Generator(1);
                foreach (var candidate in candidates)
                {
                    using var scope = torch.NewDisposeScope();
                    var w = torch.randn(new[] { candidate.Rows, candidate.Cols }, torch.float32, generator: generator);
                    watch.Start();
                    engines[precision[candidate.Module]].Compute(w);
                    watch.Stop();
                }
                break;
            }
            default:
                Console.Error.WriteLine($"unknown method '{method}'");
                return 2;
        }
        var result = new Measurement(method, watch.Elapsed.TotalSeconds, PeakResidentBytes(), scoresFile);
        Console.WriteLine("RESULT " + JsonSerializer.Serialize(result));
        return 0;
    }

    /// <summary>VmHWM: the most resident memory this process ever had, mapped file pages included.</summary>
    private static long PeakResidentBytes()
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
        return -1;
    }
}
