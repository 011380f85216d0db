// Chat formats: ChatML and the other built-in formats render what the models' published templates render (expected strings written from those templates), which pieces are trained, and what each format refuses.
using Spectrum.Text.Tests.TestSupport;

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

    private static readonly ChatMessage[] TwoExchanges =
    [
        new(ChatRole.User, "Hi"),
        new(ChatRole.Assistant, "Hello"),
        new(ChatRole.User, "Again"),
        new(ChatRole.Assistant, "Sure"),
    ];

    // What each model's own template renders for TwoExchanges (after its BOS, which the tokenizer adds here), without
    // the separator after the last turn.
    [Theory]
    [InlineData("chatml", "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello<|im_end|>\n<|im_start|>user\nAgain<|im_end|>\n<|im_start|>assistant\nSure<|im_end|>")]
    [InlineData("llama3", "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello<|eot_id|>" +
                          "<|start_header_id|>user<|end_header_id|>\n\nAgain<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nSure<|eot_id|>")]
    [InlineData("mistral", " [INST] Hi [/INST] Hello</s> [INST] Again [/INST] Sure</s>")]
    [InlineData("gemma", "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nHello<end_of_turn>\n<start_of_turn>user\nAgain<end_of_turn>\n<start_of_turn>model\nSure<end_of_turn>")]
    [InlineData("phi3", "<|user|>\nHi<|end|>\n<|assistant|>\nHello<|end|>\n<|user|>\nAgain<|end|>\n<|assistant|>\nSure<|end|>")]
    public void BuiltInFormatsRenderTheirModelsTemplates(string name, string expected)
    {
        Assert.Equal(expected, ChatTemplate.Named(name).RenderText(TwoExchanges));
    }

    [Theory]
    [InlineData("chatml", "Hello<|im_end|>Sure<|im_end|>")]
    [InlineData("llama3", "Hello<|eot_id|>Sure<|eot_id|>")]
    [InlineData("mistral", "Hello</s>Sure</s>")]
    [InlineData("gemma", "Hello<end_of_turn>Sure<end_of_turn>")]
    [InlineData("phi3", "Hello<|end|>Sure<|end|>")]
    public void EachFormatTrainsTheAnswersAndTheirEndOfTurnOnly(string name, string trained)
    {
        var pieces = ChatTemplate.Named(name).Render(TwoExchanges, trainOnInputs: false);

        Assert.Equal(trained, string.Concat(pieces.Where(p => p.IsTrained).Select(p => p.Text)));
    }

    [Theory]
    [InlineData("chatml", "<|im_start|>assistant\n")]
    [InlineData("llama3", "<|start_header_id|>assistant<|end_header_id|>\n\n")]
    [InlineData("gemma", "<start_of_turn>model\n")]
    [InlineData("phi3", "<|assistant|>\n")]
    public void GenerationPromptsEndInTheFormatsOpenAssistantTurn(string name, string opening)
    {
        var template = ChatTemplate.Named(name);

        Assert.Equal(template.RenderText(TwoExchanges[..1]) + template.TurnSeparator + opening, template.RenderGenerationPrompt(TwoExchanges[..1]));
    }

    [Fact]
    public void Llama3AndGemmaTrimMessagesAsTheirTemplatesDo()
    {
        ChatMessage[] padded = [new(ChatRole.User, "  Hi\n"), new(ChatRole.Assistant, "\tHello ")];

        Assert.Contains("\n\nHi<|eot_id|>", ChatTemplate.Llama3.RenderText(padded));
        Assert.Contains("model\nHello<end_of_turn>", ChatTemplate.Gemma.RenderText(padded));
        Assert.Contains("user\n  Hi\n<|im_end|>", ChatTemplate.ChatMl.RenderText(padded));
    }

    [Theory]
    [InlineData("mistral")]
    [InlineData("gemma")]
    public void FormatsWithoutASystemRoleRefuseSystemMessages(string name)
    {
        var template = ChatTemplate.Named(name);

        Assert.Contains("system message", template.Incompatibility(Conversation));
        Assert.Throws<ArgumentException>(() => template.Render(Conversation, trainOnInputs: false));
        Assert.Null(ChatTemplate.Llama3.Incompatibility(Conversation));
    }

    [Fact]
    public void AlternatingFormatsRefuseTurnsOutOfOrder()
    {
        ChatMessage[] twoUsers = [new(ChatRole.User, "a"), new(ChatRole.User, "b"), new(ChatRole.Assistant, "c")];

        Assert.Contains("message 1 from user", ChatTemplate.Mistral.Incompatibility(twoUsers));
        Assert.Null(ChatTemplate.ChatMl.Incompatibility(twoUsers));
    }

    [Fact]
    public void AutoResolvesToTheModelsOwnFormatOrChatMl()
    {
        Assert.Same(ChatTemplate.Gemma, ChatTemplate.Resolve("AUTO", "{{ '<start_of_turn>' + m['role'] }}"));
        Assert.Same(ChatTemplate.ChatMl, ChatTemplate.Resolve("auto", null));
        Assert.Same(ChatTemplate.Phi3, ChatTemplate.Resolve("phi3", "{{ '<|im_start|>' }}"));   // a name wins over the model's own
        Assert.True(ChatTemplate.IsName("Auto"));
        Assert.False(ChatTemplate.IsName("vicuna"));
        Assert.Throws<ArgumentException>(() => ChatTemplate.Resolve("vicuna", null));
    }

    [Fact]
    public void UnknownNamesListTheBuiltInFormats()
    {
        var error = Assert.Throws<ArgumentException>(() => ChatTemplate.Named("vicuna"));

        Assert.Contains("chatml, llama3, mistral, gemma, phi3", error.Message);
        Assert.Same(ChatTemplate.Llama3, ChatTemplate.Named("LLAMA3"));
    }

    [Theory]
    [InlineData("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}", "chatml")]
    [InlineData("{{ bos_token }}{% for m in messages %}{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>\n\n' + m['content'] | trim + '<|eot_id|>' }}{% endfor %}", "llama3")]
    [InlineData("{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}{{ '[INST] ' + m['content'] + ' [/INST]' }}{% endif %}{% endfor %}", "mistral")]
    [InlineData("{{ bos_token }}{% for m in messages %}{{ '<start_of_turn>' + m['role'] + '\n' }}{% endfor %}", "gemma")]
    [InlineData("{% for m in messages %}{{ '<|user|>\n' + m['content'] + '<|end|>\n' }}{% endfor %}", "phi3")]
    [InlineData("{% for m in messages %}{{ m['role'] + ': ' + m['content'] }}{% endfor %}", null)]
    [InlineData(null, null)]
    public void AModelsOwnTemplateIsRecognisedByItsMarkers(string? jinja, string? expected)
    {
        Assert.Equal(expected, ChatTemplate.Recognise(jinja)?.Name);
    }

    /// <summary>
    /// The Jinja template written into exported models renders, in transformers' environment (python3-jinja2, as
    /// apply_chat_template compiles it), exactly the text trained on: conversations with and without a generation
    /// prompt, BOS or not, and the same refusals.
    /// </summary>
    [PythonJinjaTheory]
    [InlineData("chatml", true)]
    [InlineData("chatml", false)]
    [InlineData("llama3", true)]
    [InlineData("mistral", true)]
    [InlineData("gemma", true)]
    [InlineData("phi3", false)]
    public void TheExportedJinjaTemplateRendersWhatTrainingRendered(string name, bool bos)
    {
        var template = ChatTemplate.Named(name);
        ChatMessage[] withSystem = [new(ChatRole.System, "Be brief. It's \"fine\"\\ ok"), .. TwoExchanges];
        ChatMessage[] padded = [new(ChatRole.User, "  spaced \n"), new(ChatRole.Assistant, "\tout ")];
        ChatMessage[] twoUsers = [new(ChatRole.User, "a"), new(ChatRole.User, "b")];
        var conversations = new List<ChatMessage[]> { TwoExchanges, TwoExchanges[..1], padded, withSystem, twoUsers };
        var cases = conversations.SelectMany(c => new[] { ((IReadOnlyList<ChatMessage>)c, false), (c, true) }).ToList();
        const string bosToken = "<bos>";

        var rendered = PythonJinja.Render(template.ToJinja(bos), bosToken, cases);

        for (int i = 0; i < cases.Count; i++)
        {
            var (messages, generationPrompt) = cases[i];
            string label = $"{name}, case {i / 2} {(generationPrompt ? "with" : "without")} generation prompt";
            if (template.Incompatibility(messages) is not null)
            {
                Assert.True(rendered[i].Error is not null, $"{label}: the template should refuse, as Render does; rendered {rendered[i].Text}");
                continue;
            }
            string expected = (bos ? bosToken : "") + (generationPrompt ? template.RenderGenerationPrompt(messages) : template.RenderText(messages));
            Assert.True(rendered[i].Error is null, $"{label}: {rendered[i].Error}");
            Assert.Equal(expected, rendered[i].Text);
        }
    }
}
