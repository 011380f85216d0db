// ChatML rendering of conversations and instruction records, and which pieces are trained.
namespace Spectrum.Text.Tests;

public sealed class ChatTemplateTests
{
    private static readonly ChatMessage[] Conversation =
    [
        new(ChatRole.System, "Be brief."),
        new(ChatRole.User, "Hi"),
        new(ChatRole.Assistant, "Hello"),
    ];

    [Fact]
    public void ChatMlTextMatchesTheHuggingFaceTemplateWithoutTheFinalNewline()
    {
        string text = ChatTemplate.ChatMl.RenderText(Conversation);

        Assert.Equal("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello<|im_end|>", text);
    }

    [Fact]
    public void OnlyAssistantContentAndItsEndOfTurnAreTrainedByDefault()
    {
        IReadOnlyList<TemplatePiece> pieces = ChatTemplate.ChatMl.Render(Conversation, trainOnInputs: false);

        Assert.Equal("Hello<|im_end|>", string.Concat(pieces.Where(p => p.IsTrained).Select(p => p.Text)));
    }

    [Fact]
    public void TrainOnInputsTrainsEveryPiece()
    {
        IReadOnlyList<TemplatePiece> pieces = ChatTemplate.ChatMl.Render(Conversation, trainOnInputs: true);

        Assert.All(pieces, piece => Assert.True(piece.IsTrained));
    }

    [Fact]
    public void InstructionBecomesAUserTurnAndAnAssistantTurn()
    {
        var withInput = new InstructionRecord("Add the numbers.", "2+3", "5", "f.jsonl", 1);
        var withoutInput = new InstructionRecord("Say hi.", null, "hi", "f.jsonl", 2);

        Assert.Equal([new ChatMessage(ChatRole.User, "Add the numbers.\n\n2+3"), new ChatMessage(ChatRole.Assistant, "5")],
            ChatTemplate.ToMessages(withInput));
        Assert.Equal([new ChatMessage(ChatRole.User, "Say hi."), new ChatMessage(ChatRole.Assistant, "hi")],
            ChatTemplate.ToMessages(withoutInput));
    }

    [Fact]
    public void GenerationPromptOpensAnAssistantTurn()
    {
        string prompt = ChatTemplate.ChatMl.RenderGenerationPrompt([new ChatMessage(ChatRole.User, "Hi")]);

        Assert.Equal("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", prompt);
    }

    [Fact]
    public void CustomTemplateNeedsARolePlaceholder()
    {
        var error = Assert.Throws<ArgumentException>(() => new ChatTemplate("### Turn\n", "<end>", "\n"));

        Assert.Contains("{role}", error.Message);
    }

    [Fact]
    public void CustomTemplateRendersItsOwnMarkers()
    {
        var llama3Style = new ChatTemplate("<|start_header_id|>{role}<|end_header_id|>\n\n", "<|eot_id|>", "");

        Assert.Equal("<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello<|eot_id|>",
            llama3Style.RenderText(Conversation[1..]));
    }
}
