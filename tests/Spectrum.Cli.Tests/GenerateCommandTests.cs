// Runs `spectrum generate` in-process on a tiny generated model: streamed text and summary, prompt sources, and exit codes of bad input.
using Spectrum.Checkpoints;
using Spectrum.Modeling;
using TorchSharp;

namespace Spectrum.Cli.Tests;

public sealed class GenerateCommandTests : IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), $"spectrum-cli-generate-{Guid.NewGuid():N}");
    private readonly string _model;

    public GenerateCommandTests()
    {
        Directory.CreateDirectory(_folder);
        _model = Path.Combine(_folder, "model");
        var config = LlamaConfig.Tiny(hiddenSize: 32, intermediateSize: 64, vocabSize: 584);
        using var generator = new torch.Generator(5);
        using var model = new LlamaForCausalLM(config, torch.ScalarType.Float32, generator: generator);
        string tokenizer = Path.Combine(CliRunner.RepositoryRoot, "tests", "reference", "fixtures", "tokenizers", "byte-level-bpe");
        HuggingFaceExporter.Save(model, config, _model, SafetensorsDType.F32,
            extraFilesToCopy: [Path.Combine(tokenizer, "tokenizer.json"), Path.Combine(tokenizer, "tokenizer_config.json")]);
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public void PrintsTheContinuationThenWhatWasRun()
    {
        var (code, output) = CliRunner.Run(false, "generate", _model, "--prompt", "Add 3 and 4.", "-n", "8");

        Assert.Equal(ExitCodes.Success, code);
        string[] lines = output.TrimEnd().Split('\n');
        Assert.Matches(@"^\d+ prompt tokens in [\d.]+ s; [1-8] new tokens \((ended by the model|reached --max-new-tokens 8)\)", lines[^1]);
        Assert.Contains("greedy", lines[^1]);
        Assert.Contains("fp32", lines[^1]);
    }

    [Fact]
    public void QuietPrintsOnlyTheTextAndAPromptFileGivesTheSameText()
    {
        string promptFile = Path.Combine(_folder, "prompt.txt");
        File.WriteAllText(promptFile, "Add 3 and 4.");

        var (code, quiet) = CliRunner.Run(false, "generate", _model, "--prompt", "Add 3 and 4.", "-n", "8", "--quiet");
        var (fileCode, fromFile) = CliRunner.Run(false, "generate", _model, "--prompt-file", promptFile, "-n", "8", "-q");

        Assert.Equal((ExitCodes.Success, ExitCodes.Success), (code, fileCode));
        Assert.DoesNotContain("prompt tokens", quiet);
        Assert.Equal(quiet, fromFile);
    }

    [Fact]
    public void SampledTextRepeatsWithItsSeed()
    {
        string[] args = ["generate", _model, "--prompt", "Add", "-n", "12", "--sample", "--temperature", "1.5", "--seed", "9", "-q"];

        Assert.Equal(CliRunner.Run(false, args), CliRunner.Run(false, args));
        Assert.Contains("seed 9", CliRunner.Run(false, args[..^1]).Output);
    }

    [Theory]
    [InlineData("one of --prompt TEXT or --prompt-file FILE")]
    [InlineData("one of --prompt TEXT or --prompt-file FILE", "--prompt", "a", "--prompt-file", "b")]
    [InlineData("--sample and --greedy contradict", "--prompt", "a", "--sample", "--greedy")]
    [InlineData("--precision must be auto, fp32 or bf16", "--prompt", "a", "--precision", "fp8")]
    [InlineData("--top-p only changes sampling", "--prompt", "a", "--top-p", "0.5")]
    [InlineData("--system applies to chat prompts only", "--prompt", "a", "--system", "Be brief.")]
    public void ContradictoryOptionsAreUsageErrors(string expected, params string[] options)
    {
        var (code, output) = CliRunner.Run(false, ["generate", _model, .. options]);

        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains(expected, output.Replace("\n", " "));
    }

    [Fact]
    public void AMalformedGenerationConfigIsACheckpointErrorNamingTheKey()
    {
        File.WriteAllText(Path.Combine(_model, GenerationConfig.FileName), """{"top_p": 2}""");

        var (code, output) = CliRunner.Run(false, "generate", _model, "--prompt", "a");

        Assert.Equal(ExitCodes.BadCheckpoint, code);
        Assert.Contains("\"top_p\" must be a number in (0, 1]", output.Replace("\n", ""));
        Assert.DoesNotContain("   at ", output);
    }

    [Fact]
    public void AMissingPromptFileIsAFileError()
    {
        var (code, output) = CliRunner.Run(false, "generate", _model, "--prompt-file", Path.Combine(_folder, "absent.txt"));

        Assert.Equal(ExitCodes.Io, code);
        Assert.Contains("absent.txt", output);
    }

    [Fact]
    public async Task CtrlCStopsGenerationWithTheInterruptExitCode()
    {
        using var stop = new CancellationTokenSource();
        stop.Cancel();

        var (code, _) = await CliRunner.RunAsync(stop.Token, "generate", _model, "--prompt", "Add 3 and 4.", "-n", "50");

        Assert.Equal(ExitCodes.Interrupted, code);
    }

    /// <summary>The whole loop a user runs: train a model, then talk to what train wrote.</summary>
    [Fact]
    public void GeneratesFromWhatTrainWrote()
    {
        string data = Path.Combine(_folder, "data.jsonl");
        File.WriteAllLines(data, Enumerable.Range(0, 12).Select(i => $$"""{"instruction": "Double {{i}}.", "output": "{{2 * i}}"}"""));
        string run = Path.Combine(_folder, "run");
        Assert.Equal(ExitCodes.Success, CliRunner.Run(false, "train", _model, "--data", data, "--method", "full", "--steps", "2", "--seq-len", "32", "--out", run).ExitCode);

        var (code, output) = CliRunner.Run(false, "generate", Path.Combine(run, "model"), "--chat", "--prompt", "Double 4.", "-n", "6");

        Assert.Equal(ExitCodes.Success, code);
        Assert.Contains("chatml chat format", output);
    }
}
