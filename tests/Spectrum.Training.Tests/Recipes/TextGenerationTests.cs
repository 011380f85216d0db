// Generation from a model folder: the prompt as training built it, stop ids and sampling from generation_config.json, streamed text, and refusals.
using System.Text.Json.Nodes;
using Spectrum.Checkpoints;
using Spectrum.Modeling;
using Spectrum.Text;
using Spectrum.Training.Recipes;
using Spectrum.Training.Tests.TestSupport;

namespace Spectrum.Training.Tests.Recipes;

public sealed class TextGenerationTests : IDisposable
{
    private const int BeginOfText = 577, EndOfText = 578, ImEnd = 580;
    private readonly TempFolder _temp = new();
    private readonly string _model;

    public TextGenerationTests() => _model = TinyModelFolder.Create(_temp.File("model"));

    public void Dispose() => _temp.Dispose();

    private GenerateOptions Options(string prompt = "Add 3 and 4.") => new() { ModelFolder = _model, Prompt = prompt, MaxNewTokens = 12 };

    [Fact]
    public void StreamsTheGreedyTokensOfThePromptAsText()
    {
        var tokenizer = ModelTokenizer.Load(_model);
        using var generation = TextGeneration.Load(Options());
        string streamed = string.Concat(generation.Stream());

        using var model = LlamaForCausalLM.FromPretrained(_model);
        var prompt = tokenizer.Encode("Add 3 and 4.", addSpecialTokens: true);
        var ids = TokenGenerator.Generate(model, prompt, new GenerationSettings { MaxNewTokens = 12, StopTokenIds = [ImEnd] }).ToList();

        Assert.Equal(prompt, generation.PromptIds);
        Assert.Equal(BeginOfText, generation.PromptIds[0]);
        Assert.Equal(tokenizer.Decode(ids, skipSpecialTokens: true), streamed);
        Assert.Equal(ids.Count, generation.Result!.GeneratedTokens);
        Assert.Equal(ids[^1] == ImEnd, generation.Result.EndedOnStopToken);
    }

    /// <summary>
    /// A chat prompt is exactly what a fine-tuned model was trained to answer: the training example's ids up to its
    /// first trained id (the reply), system message included.
    /// </summary>
    [Fact]
    public void AChatPromptIsTheTrainingExampleUpToItsReply()
    {
        var tokenizer = ModelTokenizer.Load(_model);
        var messages = new List<ChatMessage> { new(ChatRole.System, "Answer briefly."), new(ChatRole.User, "Add 3 and 4."), new(ChatRole.Assistant, "7") };
        var example = new ExampleTokenizer(tokenizer, ChatTemplate.ChatMl).Tokenize(new ConversationRecord(messages, ConversationFormat.Messages, "data.jsonl", 1));
        int replyStart = Array.IndexOf(example.LossMask, true);

        using var generation = TextGeneration.Load(Options() with { Chat = true, SystemPrompt = "Answer briefly." });

        Assert.Equal(example.InputIds[..replyStart], generation.PromptIds);
        Assert.Equal("chatml", generation.Plan.ChatTemplate);
    }

    [Fact]
    public void StopsAtGenerationConfigIdsTheTokenizersEosAndTheChatReplyEnd()
    {
        File.WriteAllText(Path.Combine(_model, GenerationConfig.FileName), """{"eos_token_id": [578, 3], "bos_token_id": 577}""");

        using (var plain = TextGeneration.Load(Options()))
            Assert.Equal([EndOfText, 3, ImEnd], plain.Plan.StopTokenIds);
        using (var chat = TextGeneration.Load(Options() with { Chat = true }))
            Assert.Equal([EndOfText, 3, ImEnd], chat.Plan.StopTokenIds);
    }

    [Fact]
    public void SamplesAsGenerationConfigSaysUnlessToldToBeGreedy()
    {
        File.WriteAllText(Path.Combine(_model, GenerationConfig.FileName), """{"do_sample": true, "temperature": 0.6, "top_p": 0.9}""");

        using (var sampled = TextGeneration.Load(Options() with { Seed = 4 }))
            Assert.Equal(new SamplingSettings(0.6, 50, 0.9, 4), sampled.Plan.Sampling);
        using (var overridden = TextGeneration.Load(Options() with { TopK = 0, Temperature = 1.1 }))
            Assert.Equal(new SamplingSettings(1.1, 0, 0.9, 0), overridden.Plan.Sampling);
        using (var greedy = TextGeneration.Load(Options() with { Sample = false }))
            Assert.Null(greedy.Plan.Sampling);
    }

    [Fact]
    public void TheSameSeedGivesTheSameTextAndAnotherSeedOtherText()
    {
        string Text(long seed)
        {
            using var generation = TextGeneration.Load(Options() with { Sample = true, Temperature = 1.5, TopK = 0, Seed = seed, MaxNewTokens = 24 });
            return string.Concat(generation.Stream());
        }

        Assert.Equal(Text(1), Text(1));
        Assert.NotEqual(Text(1), Text(2));
    }

    [Fact]
    public void PromptAndReplyAreKeptWithinTheModelsContext()
    {
        var configPath = Path.Combine(_model, "config.json");
        var config = JsonNode.Parse(File.ReadAllText(configPath))!.AsObject();
        config["max_position_embeddings"] = 16;
        File.WriteAllText(configPath, config.ToJsonString());

        using (var lowered = TextGeneration.Load(Options("Add 3 and 4.") with { MaxNewTokens = 100 }))
        {
            Assert.Equal(16 - lowered.PromptIds.Count, lowered.Plan.MaxNewTokens);
            Assert.Contains(lowered.Plan.Notes, note => note.Contains("--max-new-tokens lowered from 100"));
        }
        var tooLong = Assert.Throws<TrainingConfigurationException>(() => TextGeneration.Load(Options(string.Concat(Enumerable.Repeat("Add 3 and 4. ", 10)))));
        Assert.Contains("max_position_embeddings", tooLong.Message);
    }

    [Theory]
    [InlineData("", null, null, false, "The prompt is empty")]
    [InlineData("Hi", "Be brief.", null, false, "--system applies to chat prompts only")]
    [InlineData("Hi", null, 0.7, false, "--temperature only changes sampling")]
    [InlineData("Hi", null, -1.0, true, "temperature must be a positive number")]
    public void RefusesOptionsThatCannotWork(string prompt, string? system, double? temperature, bool sample, string expected)
    {
        var options = Options(prompt) with { SystemPrompt = system, Temperature = temperature, Sample = sample ? true : null };

        var error = Assert.Throws<TrainingConfigurationException>(() => TextGeneration.Load(options));

        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public void AMalformedGenerationConfigIsNamedWithItsKey()
    {
        File.WriteAllText(Path.Combine(_model, GenerationConfig.FileName), """{"eos_token_id": "end"}""");

        var error = Assert.Throws<CheckpointException>(() => TextGeneration.Load(Options()));

        Assert.Contains(GenerationConfig.FileName, error.Message);
        Assert.Contains("\"eos_token_id\" must be a token id", error.Message);
    }
}
