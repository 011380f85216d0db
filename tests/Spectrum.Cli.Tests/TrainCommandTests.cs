// Runs `spectrum train` in-process on a tiny generated model: a Spectrum run from scan results, the progress output, and exit codes of bad input.
using System.Text.Json;
using Spectre.Console.Testing;
using Spectrum.Checkpoints;
using Spectrum.Modeling;
using Spectrum.Selection;
using TorchSharp;

namespace Spectrum.Cli.Tests;

public sealed class TrainCommandTests : IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), $"spectrum-cli-train-{Guid.NewGuid():N}");
    private readonly string _model;
    private readonly string _data;
    private readonly string _scan;

    public TrainCommandTests()
    {
        Directory.CreateDirectory(_folder);
        _model = Path.Combine(_folder, "model");
        // Vocabulary 584 covers the fixture tokenizer's ids (0..580).
        var config = LlamaConfig.Tiny(hiddenSize: 32, intermediateSize: 64, vocabSize: 584);
        using (var generator = new torch.Generator(5))
        using (var model = new LlamaForCausalLM(config, torch.ScalarType.Float32, generator: generator))
        {
            string tokenizer = Path.Combine(RepositoryRoot, "tests", "reference", "fixtures", "tokenizers", "byte-level-bpe");
            HuggingFaceExporter.Save(model, config, _model, SafetensorsDType.F32,
                extraFilesToCopy: [Path.Combine(tokenizer, "tokenizer.json"), Path.Combine(tokenizer, "tokenizer_config.json")]);
        }
        _data = Path.Combine(_folder, "data.jsonl");
        File.WriteAllLines(_data, Enumerable.Range(0, 12).Select(i => JsonSerializer.Serialize(new { instruction = $"Double {i}.", output = $"{2 * i}" })));
        _scan = Path.Combine(_folder, "scan.json");
        string[] types = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"];
        ScanResultsJson.WriteFlat(_scan, Enumerable.Range(0, 2).SelectMany(l => types.Select(t => new ModuleScore($"model.layers.{l}.{t}", t, 1.0 + l))).ToList());
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static string RepositoryRoot => CliRunner.RepositoryRoot;

    private static (int ExitCode, string Output) Run(bool interactive, params string[] args) => CliRunner.Run(interactive, args);

    [Fact]
    public void An_unsupported_model_type_is_reported_without_a_stack_trace()
    {
        string model = Path.Combine(_folder, "gpt2");
        Directory.CreateDirectory(model);
        foreach (string file in Directory.GetFiles(_model))
            File.Copy(file, Path.Combine(model, Path.GetFileName(file)));
        string config = Path.Combine(model, "config.json");
        File.WriteAllText(config, File.ReadAllText(config).Replace("\"model_type\": \"llama\"", "\"model_type\": \"gpt2\""));

        var (code, text) = Run(false, "train", model, "--data", _data, "--method", "full", "--out", Path.Combine(_folder, "gpt2-out"));

        Assert.Equal(ExitCodes.BadCheckpoint, code);
        Assert.Contains("Not supported", text);
        Assert.Contains("model_type \"gpt2\" is not supported", text);
        Assert.DoesNotContain("   at ", text);
    }

    [Fact]
    public void Resuming_a_finished_run_rewrites_the_model_and_says_nothing_was_left_to_train()
    {
        string output = Path.Combine(_folder, "finished");
        string[] command = ["train", _model, "--data", _data, "--method", "full", "--out", output, "--steps", "2", "--seq-len", "32", "--checkpoint-every", "2"];
        var (first, _) = Run(false, command);
        Assert.Equal(ExitCodes.Success, first);

        var (code, text) = Run(false, [.. command, "--resume"]);

        Assert.True(code == ExitCodes.Success, text);
        Assert.Contains("Nothing left to train", text);
        Assert.DoesNotContain("NaN", text);
    }

    [Fact]
    public void Epochs_set_the_steps_from_the_data_and_steps_with_epochs_is_a_usage_error()
    {
        string output = Path.Combine(_folder, "epochs");
        var (code, text) = Run(false, "train", _model, "--data", _data, "--method", "full", "--out", output, "--epochs", "2", "--seq-len", "32");

        Assert.True(code == ExitCodes.Success, text);
        var line = System.Text.RegularExpressions.Regex.Match(text.ReplaceLineEndings(" "), @"(\d+) steps of 1 rows: 2 epochs over the (\d+) training rows");
        Assert.True(line.Success, text);
        Assert.Equal(2 * int.Parse(line.Groups[2].Value), int.Parse(line.Groups[1].Value));

        var (both, message) = Run(false, "train", _model, "--data", _data, "--method", "full", "--out", Path.Combine(_folder, "both"), "--epochs", "2", "--steps", "3");
        Assert.Equal(ExitCodes.Usage, both);
        Assert.Contains("--steps and --epochs", message);
    }

    /// <summary>
    /// Ctrl-C (the cancelled token) stops between steps with exit code 130 and says which checkpoint to resume from;
    /// the checkpoints stay complete and no model is written.
    /// </summary>
    [Fact]
    public async Task Interrupting_a_run_names_the_checkpoint_to_resume_from()
    {
        string output = Path.Combine(_folder, "interrupted");
        using var interrupt = new CancellationTokenSource();
        using var finished = new CancellationTokenSource();
        var watcher = Task.Run(async () =>
        {
            // Interrupt once a checkpoint is complete, whenever that is on a busy machine (or stop watching if the run ended).
            while (!finished.IsCancellationRequested && (!Directory.Exists(Path.Combine(output, "checkpoints")) ||
                   !Directory.EnumerateFiles(Path.Combine(output, "checkpoints"), "checkpoint_complete.json", SearchOption.AllDirectories).Any()))
                await Task.Delay(20);
            interrupt.Cancel();
        });

        var (code, text) = await CliRunner.RunAsync(interrupt.Token, "train", _model, "--data", _data, "--method", "full", "--out", output,
            "--steps", "1000000", "--seq-len", "32", "--checkpoint-every", "1");
        finished.Cancel();
        await watcher;

        Assert.True(code == ExitCodes.Interrupted, text);
        Assert.Contains("Interrupted", text);
        Assert.Contains("after step", text);
        Assert.Contains("--resume", text);
        Assert.Matches(@"checkpoint is step \d+", text);
        Assert.False(Directory.Exists(Path.Combine(output, "model")));
    }

    [Fact]
    public async Task Interrupting_a_run_without_checkpoints_says_it_cannot_be_resumed()
    {
        string output = Path.Combine(_folder, "interrupted-no-checkpoints");
        using var interrupt = new CancellationTokenSource();
        interrupt.Cancel();

        var (code, text) = await CliRunner.RunAsync(interrupt.Token, "train", _model, "--data", _data, "--method", "full", "--out", output,
            "--steps", "5", "--seq-len", "32");

        Assert.True(code == ExitCodes.Interrupted, text);
        Assert.Contains("before the first step", text);
        Assert.Contains("--checkpoint-every", text);
    }

    [Theory]
    [InlineData(false, true)]
    [InlineData(true, false)]
    [InlineData(null, false)]
    public void The_plan_warns_when_bf16_would_be_emulated(bool? nativeBf16, bool warns)
    {
        var console = new TestConsole().Width(200);
        var plan = new Spectrum.Training.Recipes.FineTunePlan(Spectrum.Training.Recipes.FineTuneMethod.Full, Spectrum.Training.Recipes.TrainingPrecision.BFloat16,
            10, 10, new MemoryEstimate(20, 40, 60, 80), 100, ["w"], 4, 1, ResumedFromStep: null, NativeBf16: nativeBf16);
        TrainProgressView.Run(console, (onPlan, _) => { onPlan(plan); return 0; });
        Assert.Contains("Estimated memory (bf16 on CPU)", console.Output);
        Assert.Equal(warns, console.Output.Contains("no native bf16 matrix products"));
    }

    /// <summary>The switch reaches the run (recorded in run.json, which resume compares); without it packed examples are kept apart.</summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Attend_across_documents_is_recorded_for_the_run(bool attend)
    {
        string output = Path.Combine(_folder, $"attend-{attend}");
        string[] args = ["train", _model, "--data", _data, "--method", "full", "--out", output, "--steps", "1", "--seq-len", "64"];
        var (code, text) = Run(false, attend ? [.. args, "--attend-across-documents"] : args);
        Assert.True(code == ExitCodes.Success, text);
        var run = JsonSerializer.Deserialize<Dictionary<string, string>>(File.ReadAllText(Path.Combine(output, Spectrum.Training.Recipes.FineTuneOptions.RunFileName)))!;
        Assert.Equal(attend ? "true" : "false", run["--attend-across-documents"]);
        Assert.Contains(attend ? "packed examples attending to the earlier ones" : "each packed example attending only to itself", text);
    }

    /// <summary>The format reaches the run and the plan; one whose markers the tokenizer lacks is warned about; an unknown one is a usage error.</summary>
    [Theory]
    [InlineData(null, "chatml", false)]
    [InlineData("llama3", "llama3", true)]
    public void The_chat_template_is_announced_recorded_and_checked_against_the_tokenizer(string? option, string expected, bool warns)
    {
        string output = Path.Combine(_folder, $"template-{expected}");
        string[] args = ["train", _model, "--data", _data, "--method", "full", "--out", output, "--steps", "1", "--seq-len", "64"];
        var (code, text) = Run(false, option is null ? args : [.. args, "--chat-template", option]);

        Assert.True(code == ExitCodes.Success, text);
        string flowing = System.Text.RegularExpressions.Regex.Replace(text, @"\s+", " ");   // the console wraps lines
        Assert.Contains($"Conversations in the {expected} chat format", flowing);
        var run = JsonSerializer.Deserialize<Dictionary<string, string>>(File.ReadAllText(Path.Combine(output, Spectrum.Training.Recipes.FineTuneOptions.RunFileName)))!;
        Assert.Equal(expected, run["--chat-template"]);
        Assert.Equal(warns, flowing.Contains("are not tokens of this tokenizer", StringComparison.Ordinal));

        (code, text) = Run(false, [.. args, "--chat-template", "vicuna"]);
        Assert.True(code == ExitCodes.Usage, text);
        Assert.Contains("--chat-template", text);
        Assert.Contains("chatml, llama3, mistral, gemma, phi3", System.Text.RegularExpressions.Regex.Replace(text, @"\s+", " "));
    }

    [Fact]
    public void Keep_freed_memory_trains_on_glibc()
    {
        string output = Path.Combine(_folder, "keep-freed");
        var (code, text) = Run(false, "train", _model, "--data", _data, "--method", "full", "--out", output, "--steps", "1", "--seq-len", "32", "--keep-freed-memory");
        Assert.True(code == ExitCodes.Success, text);
        Assert.True(Directory.Exists(Path.Combine(output, "model")));
    }

    [Theory]
    [InlineData("bf16")]
    [InlineData("bfloat16")]
    public void Bf16_precision_is_announced_and_saves_a_bf16_model(string spelling)
    {
        string output = Path.Combine(_folder, "bf16");
        var (code, text) = Run(false, "train", _model, "--data", _data, "--method", "spectrum", "--scan", _scan, "--top-percent", "50",
            "--out", output, "--steps", "2", "--seq-len", "32", "--precision", spelling);

        Assert.True(code == ExitCodes.Success, text);
        Assert.Contains("Estimated memory (bf16 on CPU)", text);
        Assert.Contains("float32 masters", text);
        using var checkpoint = Checkpoint.Open(Path.Combine(output, "model"));
        checkpoint.ValidateAgainstConfig();
        Assert.Equal("bfloat16", checkpoint.Config!.TorchDtype);
        Assert.All(checkpoint.Tensors, t => Assert.Equal(SafetensorsDType.BF16, t.DType));

        // Our own scanner reads the trained model back.
        string scanned = Path.Combine(_folder, "bf16-scan-" + spelling);
        (code, text) = Run(false, "scan", Path.Combine(output, "model"), "--non-interactive", "--out", scanned);
        Assert.True(code == ExitCodes.Success, text);
        Assert.True(File.Exists(Path.Combine(scanned, "snr_results.json")));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Spectrum_from_scan_results_trains_and_writes_a_loadable_model(bool interactive)
    {
        string output = Path.Combine(_folder, "run");
        var (code, text) = Run(interactive, "train", _model, "--data", _data, "--method", "spectrum", "--scan", _scan, "--top-percent", "50",
            "--out", output, "--steps", "10", "--seq-len", "32", "--batch-size", "2", "--lr", "1e-3", "--validation-fraction", "0.2", "--validate-every", "5");

        Assert.True(code == ExitCodes.Success, text);
        Assert.Contains("parameters trainable", text);
        Assert.Contains("Estimated memory", text);
        Assert.Contains("Saved", text);
        if (!interactive)
        {
            // One line per tenth of the steps: 10 steps give 10 progress lines.
            Assert.Equal(10, text.Split('\n').Count(l => l.Contains("tokens/s") && l.Contains("left")));
        }
        using var checkpoint = Checkpoint.Open(Path.Combine(output, "model"));
        checkpoint.ValidateAgainstConfig();
        Assert.Equal(10, File.ReadAllLines(Path.Combine(output, "metrics.jsonl")).Count(l => l.Contains("\"train\"")));
    }

    [Theory]
    [InlineData("--method spectrum", "--selection", "--method", "spectrum")]
    [InlineData("--selection", "--method lora", "--method", "lora", "--selection", "SCAN")]
    [InlineData("--top-percent", "--scan", "--method", "full", "--top-percent", "25")]
    [InlineData("--adapter-only", "--method full", "--method", "full", "--adapter-only")]
    [InlineData("--lora-targets", "--method full", "--method", "full", "--lora-targets", "q_proj,v_proj")]
    public void Invalid_combinations_exit_2_naming_both_options(string first, string second, params string[] extra)
    {
        string output = Path.Combine(_folder, "bad");
        var args = new[] { "train", _model, "--data", _data, "--out", output }.Concat(extra.Select(a => a == "SCAN" ? _scan : a)).ToArray();
        var (code, text) = Run(false, args);

        Assert.True(code == ExitCodes.Usage, text);
        Assert.Contains(first, text);
        Assert.Contains(second, text);
        Assert.False(Directory.Exists(output));
    }

    [Fact]
    public void Unknown_method_and_bad_data_have_their_exit_codes()
    {
        var (code, text) = Run(false, "train", _model, "--data", _data, "--method", "bitfit", "--out", Path.Combine(_folder, "x"));
        Assert.True(code == ExitCodes.Usage, text);
        Assert.Contains("--method must be one of", text);

        (code, text) = Run(false, "train", _model, "--data", _data, "--method", "full", "--precision", "fp16", "--out", Path.Combine(_folder, "x"));
        Assert.True(code == ExitCodes.Usage, text);
        Assert.Contains("--precision must be one of fp32, bf16", text);

        string bad = Path.Combine(_folder, "bad.jsonl");
        File.WriteAllText(bad, "{\"prompt\": 1}\n");
        (code, text) = Run(false, "train", _model, "--data", bad, "--method", "full", "--out", Path.Combine(_folder, "y"));
        Assert.True(code == ExitCodes.BadData, text);

        (code, text) = Run(false, "train", Path.Combine(_folder, "missing"), "--data", _data, "--method", "full", "--out", Path.Combine(_folder, "z"));
        Assert.True(code == ExitCodes.BadCheckpoint, text);
    }
}
