// Training comparison benchmark: full, Spectrum-50, Spectrum-25, LoRA, QLoRA and Spectrum-25+QLoRA on one generated model, same data and steps.
//   dotnet run --project benchmarks/Spectrum.TrainingBenchmarks -c Release -- [--shape tiny|smollm|llama3-8b] [--steps 20] [--runs 1]
//       [--precision fp32,bf16] [--methods full,Spectrum-25,...] [--scan snr_results.json] [--keep-freed-memory] [--out DIR]
//   quick check: --shape tiny --steps 3 · README figures: --shape smollm --steps 20 --runs 3
//   8B on a 24 GB machine: --shape llama3-8b --methods QLoRA,Spectrum-25+QLoRA --precision bf16 --steps 3
//       --scan <the published snr_results_meta-llama-Meta-Llama-3-8B.json> (scanning the generated 8B takes ~10 min)
//   generation speed, KV cache against a full forward per token: generation [--shape smollm] [--prompt 64] [--new 64] [--runs 3]
// Writes DIR/results.md (a table per precision, paper figures beside ours), DIR/chart-<precision>.png and DIR/results.json. Not a test.
// Each method runs in a fresh child process (`measure <request.json>`), so its peak resident memory (VmHWM) is its
// own: model load, quantisation, optimizer state and activations of that method alone, as "peak memory per GPU" is.
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Spectrum.Checkpoints;
using Spectrum.Scanning;
using Spectrum.Text;
using Spectrum.Training;
using Spectrum.Training.Recipes;
using Spectrum.BenchmarkSupport;
using Spectrum.TrainingBenchmarks;

if (args.Length == 2 && args[0] == "measure") return Child.Run(args[1]);
if (args.Length > 0 && args[0] == "generation") return GenerationBenchmark.Run(args[1..]);
return Driver.Run(args);

namespace Spectrum.TrainingBenchmarks
{
    /// <summary>One method as the benchmark runs it; Percent is the Spectrum selection's share of each module type.</summary>
    internal sealed record MethodCase(string Label, FineTuneMethod Method, double? Percent);

    /// <summary>What the driver hands a child: everything <see cref="FineTuneOptions"/> needs for one run.</summary>
    internal sealed record MeasureRequest(MethodCase Case, TrainingPrecision Precision, string ModelFolder, string DataPath, string ScanResults,
        string OutputFolder, int Steps, int SequenceLength, int Seed, bool KeepFreedMemory);

    /// <param name="StepSeconds">Every step's time, first included; the median excludes it.</param>
    /// <param name="RuntimeResidentBytes">RSS before the model loads, with the .NET runtime and LibTorch already in memory.</param>
    /// <param name="Phases">Each step's forward/backward/optimizer split, first included.</param>
    /// <param name="MatmulWork">Matrix-product work of a step relative to full fine-tuning (full and Spectrum only); see <see cref="Child.MatmulWork"/>.</param>
    internal sealed record Measurement(string Label, long TrainableParameters, long TotalParameters, long PeakResidentBytes,
        long RuntimeResidentBytes, IReadOnlyList<double> StepSeconds, IReadOnlyList<StepPhases> Phases, double? MatmulWork,
        double FinalLoss, double? ValidationLoss)
    {
        public long AddedBytes => PeakResidentBytes - RuntimeResidentBytes;

        public double MedianStepSeconds => Stats.Median(StepSeconds.Count > 1 ? StepSeconds.Skip(1) : StepSeconds);

        /// <summary>Median of each phase separately, first step excluded.</summary>
        public StepPhases MedianPhases => MedianOf(Phases.Count > 1 ? Phases.Skip(1) : Phases);

        public static StepPhases MedianOf(IEnumerable<StepPhases> phases)
        {
            var list = phases.ToList();
            return new StepPhases(Stats.Median(list.Select(p => p.ForwardSeconds)), Stats.Median(list.Select(p => p.BackwardSeconds)),
                Stats.Median(list.Select(p => p.OptimizerSeconds)));
        }
    }

    /// <summary>The paper's Llama-3-8B runs (8×L40S, ZeRO-3): peak memory per GPU in GB and training time in seconds.</summary>
    internal sealed record PaperFigure(double PeakGbPerGpu, double TrainingSeconds);

    internal static class Driver
    {
        internal static readonly Dictionary<string, (LlamaShape Shape, int SequenceLength)> Shapes = new()
        {
            // Demo-sized: the whole comparison in about a minute on two cores.
            ["tiny"] = (new LlamaShape("tiny", 128, 352, 4, 4, 2, 1024, true), 128),
            ["smollm"] = (LlamaShape.SmolLM135M, 256),
            // Only the NF4 methods fit 24 GB at this size (full bf16 training with float32 masters needs ~130 GB).
            ["llama3-8b"] = (LlamaShape.Llama3_8B, 256),
        };

        private static readonly MethodCase[] Methods =
        [
            new("full", FineTuneMethod.Full, null),
            new("Spectrum-50", FineTuneMethod.Spectrum, 50),
            new("Spectrum-25", FineTuneMethod.Spectrum, 25),
            new("LoRA", FineTuneMethod.Lora, null),
            new("QLoRA", FineTuneMethod.QLora, null),
            new("Spectrum-25+QLoRA", FineTuneMethod.SpectrumQLora, 25),
        ];

        // spectrum-method.md, "The paper's experiments": the 8-GPU column and wall time. The paper ran no plain LoRA.
        private static readonly Dictionary<string, PaperFigure> Paper = new()
        {
            ["full"] = new(24.92, 1 * 3600 + 43 * 60 + 16),
            ["QLoRA"] = new(21.25, 1 * 3600 + 18 * 60 + 14),
            ["Spectrum-50"] = new(20.50, 1 * 3600 + 27 * 60 + 17),
            ["Spectrum-25"] = new(19.18, 1 * 3600 + 5 * 60 + 33),
            ["Spectrum-25+QLoRA"] = new(16.95, 54 * 60 + 55),
        };

        public static int Run(string[] args)
        {
            string shapeKey = Cli.Option(args, "--shape") ?? "tiny";
            if (!Shapes.TryGetValue(shapeKey, out var chosen))
            {
                Console.Error.WriteLine($"--shape must be one of {string.Join(", ", Shapes.Keys)}; got '{shapeKey}'.");
                return 2;
            }
            int steps = int.Parse(Cli.Option(args, "--steps") ?? "20", CultureInfo.InvariantCulture);
            int runs = int.Parse(Cli.Option(args, "--runs") ?? "1", CultureInfo.InvariantCulture);
            var precisions = new List<TrainingPrecision>();
            foreach (string name in (Cli.Option(args, "--precision") ?? "fp32,bf16").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                var known = Enum.GetValues<TrainingPrecision>().Where(p => FineTuneOptions.CliName(p) == name).ToList();
                if (known.Count == 0)
                {
                    Console.Error.WriteLine($"--precision takes fp32, bf16 or both (fp32,bf16); got '{name}'.");
                    return 2;
                }
                precisions.Add(known[0]);
            }
            var methods = Methods.ToList();
            if (Cli.Option(args, "--methods") is { } methodList)
            {
                var wanted = methodList.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                var unknown = wanted.Where(w => Methods.All(m => m.Label != w)).ToList();
                if (unknown.Count > 0)
                {
                    Console.Error.WriteLine($"--methods takes labels among {string.Join(", ", Methods.Select(m => m.Label))}; unknown: {string.Join(", ", unknown)}.");
                    return 2;
                }
                methods = Methods.Where(m => wanted.Contains(m.Label)).ToList();
            }
            string? givenScan = Cli.Option(args, "--scan");
            if (givenScan is not null && !File.Exists(givenScan))
            {
                Console.Error.WriteLine($"--scan {givenScan}: no such file; pass scan results (ours or a published snr_results_*.json).");
                return 2;
            }
            if (steps < 2 || runs < 1 || precisions.Count == 0)
            {
                Console.Error.WriteLine($"--steps must be at least 2 (the first step is excluded from the median) and --runs at least 1; got {steps} and {runs}.");
                return 2;
            }
            string output = Path.GetFullPath(Cli.Option(args, "--out") ?? Path.Combine("benchmark-results", $"training-{shapeKey}"));
            bool keepFreedMemory = args.Contains("--keep-freed-memory");
            var (shape, sequenceLength) = chosen;
            const int seed = 42;

            string work = Path.Combine(output, "work");
            string model = Path.Combine(work, "model");
            string data = Path.Combine(work, "data.jsonl");
            Prepare(shape, sequenceLength, steps, model, data, seed);
            string scan = givenScan is not null ? Path.GetFullPath(givenScan) : Scan(model, Path.Combine(work, "scan"));

            // Runs interleave precisions and methods, so a slow spell of the shared machine hits all of them alike.
            var measured = precisions.ToDictionary(p => p, _ => methods.ToDictionary(m => m.Label, _ => new List<Measurement>()));
            for (int run = 0; run < runs; run++)
            {
                foreach (var precision in precisions)
                {
                    Console.WriteLine($"Run {run + 1}/{runs}, {FineTuneOptions.CliName(precision)}:");
                    foreach (var method in methods)
                    {
                        string folder = Path.Combine(work, "runs", $"{method.Label}-{FineTuneOptions.CliName(precision)}-{run}");
                        var request = new MeasureRequest(method, precision, model, data, scan, folder, steps, sequenceLength, seed, keepFreedMemory);
                        measured[precision][method.Label].Add(Spawn(request));
                        // The saved model and checkpoints are not needed, and at larger shapes they fill the disk.
                        Directory.Delete(folder, recursive: true);
                    }
                }
            }

            Directory.CreateDirectory(output);
            var markdown = new StringBuilder();
            if (keepFreedMemory)
                markdown.AppendLine("Every run with `--keep-freed-memory` (glibc keeps freed memory for reuse).").AppendLine();
            foreach (var precision in precisions)
            {
                var rows = methods.Select(m => Summarise(m.Label, measured[precision][m.Label])).ToList();
                markdown.Append(Report.Markdown(shape, sequenceLength, steps, runs, precision, rows, Paper)).AppendLine();
                Report.Chart(Path.Combine(output, $"chart-{FineTuneOptions.CliName(precision)}.png"), shape, precision, rows, Paper);
            }
            File.WriteAllText(Path.Combine(output, "results.md"), markdown.ToString());
            File.WriteAllText(Path.Combine(output, "results.json"), JsonSerializer.Serialize(
                measured.ToDictionary(p => FineTuneOptions.CliName(p.Key), p => p.Value), new JsonSerializerOptions { WriteIndented = true }));
            Console.WriteLine();
            Console.Write(markdown);
            Console.WriteLine($"Wrote {Path.Combine(output, "results.md")}, chart-*.png and results.json.");
            return 0;
        }

        /// <summary>
        /// Float32 checkpoint with planted low-rank structure (so the scan has something to rank) and a byte-level
        /// tokenizer trained on the corpus. The tokenizer is capped at 512 ids, far below SmolLM's 49,152: a greedy BPE
        /// trainer cannot learn 49k merges from a small generated corpus, and the embedding and output head keep the
        /// model's full vocabulary either way, so the compute and memory measured are those of the real shape.
        /// </summary>
        internal static void Prepare(LlamaShape shape, int sequenceLength, int steps, string model, string data, int seed)
        {
            string marker = Path.Combine(model, ".complete");
            if (!File.Exists(marker))
            {
                if (Directory.Exists(model)) Directory.Delete(model, true);
                // Billion-parameter shapes in bf16 and 5 GB shards, as Hugging Face ships them (float32 would be 32 GB at 8B).
                bool large = shape.ParameterCount > 1_000_000_000;
                var dtype = large ? SafetensorsDType.BF16 : SafetensorsDType.F32;
                Console.WriteLine($"Generating {shape.Name} ({shape.ParameterCount / 1e6:F1} M parameters, {dtype}) in {model} ...");
                SyntheticLlama.Write(model, shape, dtype, maxShardBytes: large ? 5_000_000_000 : shape.ParameterCount * 4 + 1, seed: 11);
            }
            // Every step packs one row of sequenceLength tokens; an example is 30-60 tokens, so 1 per 16 tokens is ample,
            // and 5% more go to validation.
            int examples = Math.Max(400, steps * sequenceLength / 16);
            var corpus = SyntheticCorpus.GenerateMixed(Enum.GetValues<SyntheticTask>(), examples, seed);
            Directory.CreateDirectory(Path.GetDirectoryName(data)!);
            SyntheticCorpus.WriteJsonl(data, corpus);
            if (!File.Exists(marker))
            {
                var texts = corpus.Select((e, i) => ChatTemplate.ChatMl.RenderText(ChatTemplate.ToMessages(e.ToRecord(data, i + 1))));
                ByteLevelTokenizerBuilder.Write(model, texts, Math.Min(512, shape.VocabSize));
                File.WriteAllText(marker, "");
            }
        }

        /// <summary>Our scanner on the generated checkpoint; returns snr_results.json, from which each Spectrum run selects its percent.</summary>
        private static string Scan(string model, string folder)
        {
            using var checkpoint = Checkpoint.Open(model);
            var candidates = ModuleCatalog.Discover(checkpoint, false, true).Choose(null);
            var watch = Stopwatch.StartNew();
            ScanJob.Run(checkpoint, candidates, new ScanOptions { TopPercent = 25 }, folder);
            Console.WriteLine($"Scanned {candidates.Count} matrices in {watch.Elapsed.TotalSeconds:F1} s.");
            return Path.Combine(folder, ScanJob.ResultsFileName);
        }

        private static Measurement Spawn(MeasureRequest request)
        {
            Directory.CreateDirectory(request.OutputFolder);
            string requestFile = Path.Combine(request.OutputFolder, "request.json");
            File.WriteAllText(requestFile, JsonSerializer.Serialize(request));
            var result = ChildProcess.Measure<Measurement>(["measure", requestFile], request.Case.Label);
            var phases = result.MedianPhases;
            Console.WriteLine($"  {result.Label}: {result.TrainableParameters:N0} trainable, peak {Stats.Gb(result.PeakResidentBytes)}, " +
                              $"{result.MedianStepSeconds:F3} s/step (forward {phases.ForwardSeconds:F3}, backward {phases.BackwardSeconds:F3}, " +
                              $"optimizer {phases.OptimizerSeconds:F3}), loss {result.FinalLoss:F4}, validation {result.ValidationLoss:F4}");
            return result;
        }

        /// <summary>Medians over runs: step time and phases of each run's median, peak memory, losses (identical across runs on CPU with one seed).</summary>
        private static Measurement Summarise(string label, IReadOnlyList<Measurement> runs)
        {
            var medianPhases = Measurement.MedianOf(runs.Select(r => r.MedianPhases));
            return new(label, runs[0].TrainableParameters, runs[0].TotalParameters,
                (long)Stats.Median(runs.Select(r => (double)r.PeakResidentBytes)), (long)Stats.Median(runs.Select(r => (double)r.RuntimeResidentBytes)),
                [Stats.Median(runs.Select(r => r.MedianStepSeconds))], [medianPhases], runs[0].MatmulWork, runs[0].FinalLoss, runs[0].ValidationLoss);
        }
    }

    /// <summary>The child: one method, one run, then a RESULT line with its own peak RSS.</summary>
    internal static class Child
    {
        public static int Run(string requestFile)
        {
            var request = JsonSerializer.Deserialize<MeasureRequest>(File.ReadAllText(requestFile))!;
            var method = request.Case;
            var options = new FineTuneOptions
            {
                ModelFolder = request.ModelFolder,
                DataPath = request.DataPath,
                OutputFolder = request.OutputFolder,
                Method = method.Method,
                ScanResults = method.Percent is null ? null : request.ScanResults,
                TopPercent = method.Percent,
                Steps = request.Steps,
                SequenceLength = request.SequenceLength,
                BatchSize = 1,
                ValidationFraction = 0.05,
                ValidateEvery = request.Steps,
                Seed = request.Seed,
                Precision = request.Precision,
                KeepFreedMemory = request.KeepFreedMemory,
            };
            // One tiny tensor loads LibTorch, so the baseline holds everything but this method's model and training.
            using (TorchSharp.torch.zeros(1)) { }
            long runtime = MemoryMeter.Read().CurrentRssBytes;
            using var recipe = FineTuneRecipe.Setup(options);
            var stepSeconds = new List<double>();
            var phases = new List<StepPhases>();
            // The trainer times the step before any validation, so this excludes it.
            recipe.Trainer.Progress += p =>
            {
                stepSeconds.Add(p.StepSeconds);
                phases.Add(p.Phases);
            };
            var summary = recipe.Train();
            var memory = MemoryMeter.Read();
            var result = new Measurement(method.Label, recipe.Plan.TrainableParameters, recipe.Plan.TotalParameters, memory.PeakRssBytes, runtime,
                stepSeconds, phases, method.Method is FineTuneMethod.Full or FineTuneMethod.Spectrum ? MatmulWork(recipe.Model, TargetFraction(recipe.MetricsPath)) : null,
                summary.Losses[^1], summary.LastValidationLoss);
            Console.WriteLine("RESULT " + JsonSerializer.Serialize(result));
            return 0;
        }

        /// <summary>
        /// The step's matrix-product work relative to full fine-tuning: every projection weight costs one product
        /// forward and one for its input's gradient — needed all the way down, since the embedding trains — and a
        /// trainable one a third, for its own gradient; the output head (tied or not) the same, but only over the
        /// share of positions that have a target (<paramref name="targetFraction"/>), since logits are computed there
        /// only. This is the step-time ratio if matrix products were all the work; the optimizer, which full
        /// fine-tuning runs over every weight, is not in it.
        /// </summary>
        internal static double MatmulWork(Spectrum.Modeling.LlamaForCausalLM model, double targetFraction)
        {
            double all = 0, trained = 0;
            foreach (var (name, parameter) in model.named_parameters())
            {
                bool projection = name.EndsWith("_proj.weight", StringComparison.Ordinal);
                bool head = name == "lm_head.weight" || (name == "model.embed_tokens.weight" && model.LmHead is null);
                if (!projection && !head) continue;
                double weight = parameter.numel() * (head ? targetFraction : 1.0);
                all += weight;
                if (parameter.requires_grad) trained += weight;
            }
            return (2.0 * all + trained) / (3.0 * all);
        }

        /// <summary>Target tokens per input token over the run's training steps, from its metrics log.</summary>
        internal static double TargetFraction(string metricsPath)
        {
            double inputs = 0, targets = 0;
            foreach (string line in File.ReadLines(metricsPath))
            {
                using var entry = JsonDocument.Parse(line);
                if (entry.RootElement.GetProperty("type").GetString() != "train") continue;
                inputs += entry.RootElement.GetProperty("input_tokens").GetDouble();
                targets += entry.RootElement.GetProperty("target_tokens").GetDouble();
            }
            return inputs == 0 ? 1 : targets / inputs;
        }
    }
}
