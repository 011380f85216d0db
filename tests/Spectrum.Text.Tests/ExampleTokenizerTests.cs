// Records to ids and loss masks on real fixture tokenizers: what is trained, BOS/EOS, and ids equal to whole-text encoding.
using Spectrum.Text.Tests.TestSupport;

namespace Spectrum.Text.Tests;

public sealed class ExampleTokenizerTests
{
    private static readonly ChatMessage[] TwoTurns =
    [
        new(ChatRole.System, "You are terse."),
        new(ChatRole.User, "What is 2+2?"),
        new(ChatRole.Assistant, "4"),
        new(ChatRole.User, "And 3+3?"),
        new(ChatRole.Assistant, "It is 6."),
    ];

    private static ConversationRecord Conversation(params ChatMessage[] messages) =>
        new(messages, ConversationFormat.Messages, "data.jsonl", 1);

    private static string TrainedText(ModelTokenizer tokenizer, TokenizedExample example) =>
        tokenizer.Decode(example.InputIds.Where((_, i) => example.LossMask[i]));

    /// <summary>What the fixture's EOS adds after the last turn: nothing when EOS is the end-of-turn token itself.</summary>
    private static string EosSuffix(ModelTokenizer tokenizer) =>
        tokenizer.EosId == tokenizer.TokenToId("<|im_end|>") ? "" : tokenizer.Decode([tokenizer.EosId!.Value]);

    [Theory]
    [InlineData(Fixtures.ByteLevelBpe)]
    [InlineData(Fixtures.SentencePieceBpe)]
    public void ConversationIdsAreThoseOfTheWholeRenderedText(string folder)
    {
        ModelTokenizer tokenizer = Fixtures.Tokenizer(folder);
        var examples = new ExampleTokenizer(tokenizer, ChatTemplate.ChatMl);

        TokenizedExample example = examples.Tokenize(Conversation(TwoTurns));

        IReadOnlyList<int> whole = tokenizer.Encode(ChatTemplate.ChatMl.RenderText(TwoTurns), addSpecialTokens: true);
        int[] expected = EosSuffix(tokenizer).Length == 0 ? [.. whole] : [.. whole, tokenizer.EosId!.Value];
        Assert.Equal(expected, example.InputIds);
    }

    [Theory]
    [InlineData(Fixtures.ByteLevelBpe)]
    [InlineData(Fixtures.SentencePieceBpe)]
    public void ByDefaultOnlyAssistantAnswersAndTheirEndOfTurnAreTrained(string folder)
    {
        ModelTokenizer tokenizer = Fixtures.Tokenizer(folder);
        var examples = new ExampleTokenizer(tokenizer, ChatTemplate.ChatMl);

        TokenizedExample example = examples.Tokenize(Conversation(TwoTurns));

        Assert.Equal("4<|im_end|>It is 6.<|im_end|>" + EosSuffix(tokenizer), TrainedText(tokenizer, example));
        Assert.False(example.LossMask[0]);
        Assert.True(example.LossMask[^1]);
    }

    [Theory]
    [InlineData(Fixtures.ByteLevelBpe)]
    [InlineData(Fixtures.SentencePieceBpe)]
    public void TrainOnInputsTrainsEverythingButBos(string folder)
    {
        ModelTokenizer tokenizer = Fixtures.Tokenizer(folder);
        var examples = new ExampleTokenizer(tokenizer, ChatTemplate.ChatMl, trainOnInputs: true);

        TokenizedExample example = examples.Tokenize(Conversation(TwoTurns));

        Assert.Equal(tokenizer.BosId, example.InputIds[0]);
        Assert.False(example.LossMask[0]);
        Assert.All(example.LossMask.Skip(1), Assert.True);
    }

    [Theory]
    [InlineData(Fixtures.ByteLevelBpe)]
    [InlineData(Fixtures.SentencePieceBpe)]
    public void InstructionRecordTrainsLikeTheEquivalentConversation(string folder)
    {
        ModelTokenizer tokenizer = Fixtures.Tokenizer(folder);
        var examples = new ExampleTokenizer(tokenizer, ChatTemplate.ChatMl);
        var instruction = new InstructionRecord("Add the numbers.", "2+3", "5", "data.jsonl", 4);

        TokenizedExample fromInstruction = examples.Tokenize(instruction);
        TokenizedExample fromConversation = examples.Tokenize(Conversation(
            new ChatMessage(ChatRole.User, "Add the numbers.\n\n2+3"), new ChatMessage(ChatRole.Assistant, "5")));

        Assert.Equal(fromConversation.InputIds, fromInstruction.InputIds);
        Assert.Equal(fromConversation.LossMask, fromInstruction.LossMask);
        Assert.Equal("5<|im_end|>" + EosSuffix(tokenizer), TrainedText(tokenizer, fromInstruction));
    }

    [Theory]
    [InlineData(Fixtures.ByteLevelBpe)]
    [InlineData(Fixtures.SentencePieceBpe)]
    public void TextRecordTrainsEveryTokenButBosAndEndsWithEos(string folder)
    {
        ModelTokenizer tokenizer = Fixtures.Tokenizer(folder);
        var examples = new ExampleTokenizer(tokenizer, ChatTemplate.ChatMl);

        TokenizedExample example = examples.Tokenize(new TextRecord("A plain document.", "data.jsonl", 1));

        int[] expected = [.. tokenizer.Encode("A plain document.", addSpecialTokens: true), tokenizer.EosId!.Value];
        Assert.Equal(expected, example.InputIds);
        Assert.Equal([false, .. Enumerable.Repeat(true, expected.Length - 1)], example.LossMask);
    }

    [Fact]
    public void EosIsAppendedUntrainedWhenTheConversationEndsWithAUserTurn()
    {
        ModelTokenizer tokenizer = Fixtures.Tokenizer(Fixtures.SentencePieceBpe);
        var examples = new ExampleTokenizer(tokenizer, ChatTemplate.ChatMl);

        TokenizedExample example = examples.Tokenize(Conversation(
            new ChatMessage(ChatRole.User, "Q"), new ChatMessage(ChatRole.Assistant, "A"), new ChatMessage(ChatRole.User, "Thanks")));

        Assert.Equal(tokenizer.EosId, example.InputIds[^1]);
        Assert.False(example.LossMask[^1]);
        Assert.Equal("A<|im_end|>", TrainedText(tokenizer, example));
    }

    [Fact]
    public void AnswerStartingWithSpacesKeepsThemTrainedAndIdsUnchanged()
    {
        ModelTokenizer tokenizer = Fixtures.Tokenizer(Fixtures.ByteLevelBpe);
        var examples = new ExampleTokenizer(tokenizer, ChatTemplate.ChatMl);
        ChatMessage[] messages = [new(ChatRole.User, "Q"), new(ChatRole.Assistant, "  spaced answer")];

        TokenizedExample example = examples.Tokenize(Conversation(messages));

        Assert.Equal(tokenizer.Encode(ChatTemplate.ChatMl.RenderText(messages), addSpecialTokens: true), example.InputIds);
        Assert.Equal("  spaced answer<|im_end|>", TrainedText(tokenizer, example));
    }

    [Fact]
    public void ATokenSpanningTheStartOfAnAnswerGoesWithTheAnswer()
    {
        // A header ending inside a word: " comp" + "utes" is the single vocabulary token "Ġcomputes", which straddles
        // the boundary and so is trained with the answer rather than being split to fit the mask.
        ModelTokenizer tokenizer = Fixtures.Tokenizer(Fixtures.ByteLevelBpe);
        var template = new ChatTemplate("<|im_start|>{role}\n comp", "<|im_end|>", "\n");
        var examples = new ExampleTokenizer(tokenizer, template);
        ChatMessage[] messages = [new(ChatRole.User, "Q"), new(ChatRole.Assistant, "utes")];

        TokenizedExample example = examples.Tokenize(Conversation(messages));

        Assert.Equal(tokenizer.Encode(template.RenderText(messages), addSpecialTokens: true), example.InputIds);
        Assert.Contains(tokenizer.TokenToId("Ġcomputes")!.Value, example.InputIds);
        Assert.Equal(" computes<|im_end|>", TrainedText(tokenizer, example));
    }

    [Fact]
    public void AConversationTheFormatCannotRenderNamesItsLineAndWhatToDo()
    {
        ModelTokenizer tokenizer = Fixtures.Tokenizer(Fixtures.ByteLevelBpe);
        var examples = new ExampleTokenizer(tokenizer, ChatTemplate.Gemma);

        var error = Assert.Throws<DataFormatException>(() => examples.Tokenize(new ConversationRecord(TwoTurns, ConversationFormat.Messages, "chats.jsonl", 7)));

        Assert.Equal(7, error.LineNumber);
        Assert.StartsWith("chats.jsonl:7: messages:", error.Message);
        Assert.Contains("system message", error.Message);
        Assert.Contains("--chat-template", error.Message);
    }

    [Fact]
    public void MistralAnswersEndInTheTokenizersEosWithNoSecondOneAppended()
    {
        ModelTokenizer tokenizer = Fixtures.Tokenizer(Fixtures.SentencePieceBpe);
        Assert.Equal(tokenizer.TokenToId("</s>"), tokenizer.EosId);   // as in Mistral's and Llama 2's tokenizers
        ChatMessage[] messages = [new(ChatRole.User, "What is 2+2?"), new(ChatRole.Assistant, "4")];

        TokenizedExample example = new ExampleTokenizer(tokenizer, ChatTemplate.Mistral).Tokenize(Conversation(messages));

        Assert.Equal(tokenizer.Encode(ChatTemplate.Mistral.RenderText(messages), addSpecialTokens: true), example.InputIds);
        Assert.Equal(tokenizer.EosId, example.InputIds[^1]);
        Assert.NotEqual(tokenizer.EosId, example.InputIds[^2]);
        Assert.Equal("4</s>", TrainedText(tokenizer, example).Trim());
    }

    [Fact]
    public void TokenizerWithoutEosCannotMakeExamples()
    {
        ModelTokenizer tokenizer = Fixtures.Tokenizer(Fixtures.ByteLevelBpeDigits);

        var error = Assert.Throws<DataFormatException>(() => new ExampleTokenizer(tokenizer, ChatTemplate.ChatMl));

        Assert.Equal("eos_token", error.Field);
        Assert.Contains("Set eos_token in tokenizer_config.json", error.Message);
    }
}
