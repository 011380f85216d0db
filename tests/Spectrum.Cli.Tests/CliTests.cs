// Runs the `spectrum` command line in-process and checks exit codes, messages and the files it writes.

namespace Spectrum.Cli.Tests;

public sealed class CliTests : IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), $"spectrum-cli-{Guid.NewGuid():N}");

    public CliTests() => Directory.CreateDirectory(_folder);

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static string RepositoryRoot => CliRunner.RepositoryRoot;

    private static string FixtureModel => Path.Combine(RepositoryRoot, "tests", "reference", "fixtures", "scan", "model");

    private static (int ExitCode, string Output) Run(params string[] args) => CliRunner.Run(false, args);

    [Fact]
    public void Demo_pretrains_scans_fine_tunes_and_compares_the_methods()
    {
        string output = Path.Combine(_folder, "demo-out");
        string work = Path.Combine(_folder, "demo-work");
        var (code, text) = Run("demo", "--quick", "--keep", work, "--out", output);

        Assert.True(code == ExitCodes.Success, text);
        Assert.Contains("mlp.down_proj", text);
        Assert.Contains("Trainable parameters", text);
        Assert.True(File.Exists(Path.Combine(output, "unfrozen_parameters.yaml")));
        Assert.True(File.Exists(Path.Combine(output, "snr_results.json")));
        Assert.True(File.Exists(Path.Combine(output, "snr_results_sorted.json")));
        // The scan ran on the pretrained model, and both fine-tunes reached the comparison table.
        Assert.True(File.Exists(Path.Combine(work, "pretrain", "model", "config.json")));
        Assert.Contains("before", text);
        Assert.Contains("Grads + AdamW", text);
        Assert.Contains("Spectrum-25", text);
        Assert.Equal(2, Directory.GetFiles(work, "metrics.jsonl", SearchOption.AllDirectories).Count(f => f.Contains("finetune-", StringComparison.Ordinal)));
    }

    [Fact]
    public void Demo_refuses_a_keep_folder_that_is_not_empty_and_leaves_it_alone()
    {
        string work = Path.Combine(_folder, "not-empty");
        Directory.CreateDirectory(work);
        string mine = Path.Combine(work, "notes.txt");
        File.WriteAllText(mine, "mine");

        var (code, text) = Run("demo", "--quick", "--keep", work);

        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains("--keep", text);
        Assert.Contains("not empty", text);
        Assert.Equal([mine], Directory.GetFileSystemEntries(work));
    }

    [Fact]
    public async Task An_interrupted_scan_exits_130_and_writes_no_result_files()
    {
        string output = Path.Combine(_folder, "interrupted-scan");
        using var interrupt = new CancellationTokenSource();
        interrupt.Cancel();

        var (code, text) = await CliRunner.RunAsync(interrupt.Token, "scan", FixtureModel, "--out", output);

        Assert.True(code == ExitCodes.Interrupted, text);
        Assert.Contains("Interrupted", text);
        Assert.DoesNotContain("Unexpected", text);
        Assert.False(Directory.Exists(output) && Directory.EnumerateFileSystemEntries(output).Any());
    }

    [Fact]
    public void Demo_out_of_range_percent_is_a_usage_error()
    {
        var (code, text) = Run("demo", "--quick", "--top-percent", "0");

        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains("--top-percent", text);
    }

    [Fact]
    public void Scan_of_a_model_folder_is_non_interactive_without_a_terminal()
    {
        string output = Path.Combine(_folder, "scan-out");
        var (code, text) = Run("scan", FixtureModel, "--top-percent", "50", "--out", output);

        Assert.True(code == ExitCodes.Success, text);
        Assert.Contains("Top 50% per module type", text);
        string yaml = File.ReadAllText(Path.Combine(output, "unfrozen_parameters.yaml"));
        Assert.StartsWith("unfrozen_parameters:", yaml);
        Assert.Contains("# mlp.down_proj layers", yaml);
    }

    [Fact]
    public void Scan_with_explicit_types_scores_only_those()
    {
        string output = Path.Combine(_folder, "types-out");
        var (code, text) = Run("scan", FixtureModel, "--types", "mlp.down_proj,self_attn.v_proj", "--out", output);

        Assert.True(code == ExitCodes.Success, text);
        string json = File.ReadAllText(Path.Combine(output, "snr_results.json"));
        Assert.Contains("mlp.down_proj", json);
        Assert.DoesNotContain("q_proj", json);
    }

    [Fact]
    public void Scan_of_a_missing_folder_fails_with_the_checkpoint_exit_code_and_names_the_path()
    {
        string missing = Path.Combine(_folder, "no-such-model");
        var (code, text) = Run("scan", missing);

        Assert.Equal(ExitCodes.BadCheckpoint, code);
        Assert.Contains("no-such-model", text);
    }

    [Fact]
    public void Scan_of_a_corrupt_file_fails_cleanly()
    {
        string corrupt = Path.Combine(_folder, "model.safetensors");
        File.WriteAllBytes(corrupt, [1, 2, 3]);
        var (code, text) = Run("scan", corrupt);

        Assert.Equal(ExitCodes.BadCheckpoint, code);
        Assert.Contains("model.safetensors", text);
        Assert.Equal(new byte[] { 1, 2, 3 }, File.ReadAllBytes(corrupt));
    }

    [Fact]
    public void Unknown_type_fails_and_lists_the_types_found()
    {
        var (code, text) = Run("scan", FixtureModel, "--types", "mlp.down", "--out", Path.Combine(_folder, "x"));

        Assert.Equal(ExitCodes.ScanFailed, code);
        Assert.Contains("mlp.down_proj", text);
    }

    [Theory]
    [InlineData("0")]
    [InlineData("101")]
    [InlineData("-5")]
    public void Out_of_range_percent_is_a_usage_error(string percent)
    {
        var (code, text) = Run("scan", FixtureModel, "--top-percent", percent);

        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains("--top-percent", text);
    }

    [Fact]
    public void Unknown_option_is_a_usage_error()
    {
        var (code, _) = Run("scan", FixtureModel, "--bogus");
        Assert.Equal(ExitCodes.Usage, code);
    }

    [Fact]
    public void Select_reproduces_a_published_llama3_selection()
    {
        string published = Path.Combine(RepositoryRoot, "tests", "reference", "fixtures", "published-scans", "snr_results_meta-llama-Meta-Llama-3-8B.json");
        string output = Path.Combine(_folder, "select-out");
        var (code, text) = Run("select", published, "--top-percent", "50", "--out", output);

        Assert.True(code == ExitCodes.Success, text);
        var lines = File.ReadAllLines(Path.Combine(output, "unfrozen_parameters.yaml"));
        Assert.Contains("- ^lm_head.weight$", lines);
        Assert.Equal(16, lines.Count(l => l.StartsWith("- model.layers.", StringComparison.Ordinal) && l.EndsWith(".mlp.down_proj", StringComparison.Ordinal)));
    }

    [Fact]
    public void Select_with_a_malformed_file_fails_with_the_scan_results_exit_code()
    {
        string bad = Path.Combine(_folder, "bad.json");
        File.WriteAllText(bad, "{\"model.layers.0.mlp.up_proj\": {\"snr\": \"high\"}}");
        var (code, text) = Run("select", bad);

        Assert.Equal(ExitCodes.BadScanResults, code);
        Assert.Contains("bad.json", text);
    }

    [Fact]
    public void Help_lists_the_commands()
    {
        var (code, text) = Run("--help");

        Assert.Equal(0, code);
        Assert.Contains("scan", text);
        Assert.Contains("select", text);
        Assert.Contains("demo", text);
    }
}
