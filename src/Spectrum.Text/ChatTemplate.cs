// Turns records into the text a chat model is trained on, marking which parts the loss covers.
namespace Spectrum.Text;

/// <summary>One stretch of rendered text and whether its tokens are trained (count in the loss).</summary>
public readonly record struct TemplatePiece(string Text, bool IsTrained);

/// <summary>
/// A turn-based chat format: <c>{header with role}{content}{end of turn}</c>, turns joined by a separator. ChatML, the
/// default, renders <c>&lt;|im_start|&gt;{role}\n{content}&lt;|im_end|&gt;\n</c>. Trained by default: each assistant
/// turn's content and its end-of-turn token, so the model learns both the answer and when to stop; headers, separators
/// and other roles are prompt. The separator after the last turn is left out: generation ends at the end-of-turn token,
/// so nothing after it is ever predicted.
/// </summary>
public sealed class ChatTemplate
{
    private const string RolePlaceholder = "{role}";

    public ChatTemplate(string turnHeader, string endOfTurn, string turnSeparator)
    {
        if (!turnHeader.Contains(RolePlaceholder, StringComparison.Ordinal))
        {
            throw new ArgumentException($"The turn header must contain {RolePlaceholder}; got \"{turnHeader}\".", nameof(turnHeader));
        }
        ArgumentException.ThrowIfNullOrEmpty(endOfTurn);
        ArgumentNullException.ThrowIfNull(turnSeparator);
        TurnHeader = turnHeader;
        EndOfTurn = endOfTurn;
        TurnSeparator = turnSeparator;
    }

    public static ChatTemplate ChatMl { get; } = new("<|im_start|>{role}\n", "<|im_end|>", "\n");

    public string TurnHeader { get; }

    public string EndOfTurn { get; }

    public string TurnSeparator { get; }

    /// <summary>Instruction records become a user turn (instruction, then a blank line and the input if any) and an assistant turn.</summary>
    public static IReadOnlyList<ChatMessage> ToMessages(InstructionRecord record) =>
    [
        new(ChatRole.User, string.IsNullOrEmpty(record.Input) ? record.Instruction : $"{record.Instruction}\n\n{record.Input}"),
        new(ChatRole.Assistant, record.Output),
    ];

    /// <param name="trainOnInputs">Train every piece, prompts included (the "train on inputs" option).</param>
    public IReadOnlyList<TemplatePiece> Render(IReadOnlyList<ChatMessage> messages, bool trainOnInputs)
    {
        var pieces = new List<TemplatePiece>();
        for (int i = 0; i < messages.Count; i++)
        {
            ChatMessage message = messages[i];
            bool trained = trainOnInputs || message.Role == ChatRole.Assistant;
            if (i > 0)
            {
                pieces.Add(new TemplatePiece(TurnSeparator, trainOnInputs));
            }
            pieces.Add(new TemplatePiece(Header(message.Role), trainOnInputs));
            pieces.Add(new TemplatePiece(message.Content, trained));
            pieces.Add(new TemplatePiece(EndOfTurn, trained));
        }
        return pieces;
    }

    public string RenderText(IReadOnlyList<ChatMessage> messages) =>
        string.Concat(Render(messages, trainOnInputs: false).Select(p => p.Text));

    /// <summary>The prompt for generating the next assistant turn: the conversation so far and an open assistant header.</summary>
    public string RenderGenerationPrompt(IReadOnlyList<ChatMessage> conversationSoFar) =>
        conversationSoFar.Count == 0
            ? Header(ChatRole.Assistant)
            : RenderText(conversationSoFar) + TurnSeparator + Header(ChatRole.Assistant);

    private string Header(ChatRole role) =>
        TurnHeader.Replace(RolePlaceholder, role.ToString().ToLowerInvariant(), StringComparison.Ordinal);
}
