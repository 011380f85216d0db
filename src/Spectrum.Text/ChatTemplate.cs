// Turns records into the text a chat model is trained on, marking which parts the loss covers; the built-in formats are named as Axolotl names them.
namespace Spectrum.Text;

/// <summary>One stretch of rendered text and whether its tokens are trained (count in the loss).</summary>
public readonly record struct TemplatePiece(string Text, bool IsTrained);

/// <summary>How one role's turn is written: <c>{Prefix}{content}{Suffix}</c>.</summary>
public sealed record TurnFormat(string Prefix, string Suffix);

/// <summary>
/// A turn-based chat format: each turn is its role's <see cref="TurnFormat"/> around the content, turns joined by a
/// separator. ChatML, the default, renders <c>&lt;|im_start|&gt;{role}\n{content}&lt;|im_end|&gt;\n</c>. Trained by
/// default: each assistant turn's content and its suffix (the end-of-turn token), so the model learns both the answer
/// and when to stop; prefixes, separators and other roles are prompt. The separator after the last turn is left out:
/// generation ends at the end-of-turn token, so nothing after it is ever predicted. BOS is not part of a template: the
/// tokenizer adds it where its configuration says so (<see cref="ExampleTokenizer"/>), as the models' own templates do.
/// The built-in formats (<see cref="BuiltIn"/>) render what the models' published chat templates render.
/// </summary>
public sealed class ChatTemplate
{
    private const string RolePlaceholder = "{role}";

    private readonly TurnFormat _user;
    private readonly TurnFormat _assistant;
    private readonly TurnFormat? _system;

    /// <summary>A custom format whose turns all read <c>{turnHeader with the role}{content}{endOfTurn}</c>.</summary>
    public ChatTemplate(string turnHeader, string endOfTurn, string turnSeparator)
        : this("custom", RoleTurn(turnHeader, endOfTurn, "user"), RoleTurn(turnHeader, endOfTurn, "assistant"),
            RoleTurn(turnHeader, endOfTurn, "system"), turnSeparator, markers: [])
    {
    }

    /// <param name="system">Null: the format has no system role, and a conversation with a system message is refused.</param>
    /// <param name="trimsContent">Strip surrounding whitespace from each message, as the Llama 3 and Gemma templates do.</param>
    /// <param name="requiresAlternation">Refuse conversations that are not user, assistant, user, … (Mistral and Gemma templates raise on them).</param>
    /// <param name="markers">The special tokens the format is written with; each should be one token of the model's tokenizer.</param>
    public ChatTemplate(string name, TurnFormat user, TurnFormat assistant, TurnFormat? system, string turnSeparator,
        IReadOnlyList<string> markers, bool trimsContent = false, bool requiresAlternation = false)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(user);
        ArgumentNullException.ThrowIfNull(assistant);
        ArgumentNullException.ThrowIfNull(turnSeparator);
        ArgumentNullException.ThrowIfNull(markers);
        if (assistant.Suffix.Length == 0)
            throw new ArgumentException("The assistant turn needs a suffix (its end-of-turn token): it is what teaches the model to stop.", nameof(assistant));
        Name = name;
        _user = user;
        _assistant = assistant;
        _system = system;
        TurnSeparator = turnSeparator;
        Markers = markers;
        TrimsContent = trimsContent;
        RequiresAlternation = requiresAlternation;
    }

    public static ChatTemplate ChatMl { get; } = new("chatml",
        new("<|im_start|>user\n", "<|im_end|>"), new("<|im_start|>assistant\n", "<|im_end|>"), new("<|im_start|>system\n", "<|im_end|>"),
        "\n", ["<|im_start|>", "<|im_end|>"]);

    /// <summary>Llama 3 / 3.1 Instruct: header tokens around the role, a blank line, content trimmed, <c>&lt;|eot_id|&gt;</c>.</summary>
    public static ChatTemplate Llama3 { get; } = new("llama3",
        Header3("user"), Header3("assistant"), Header3("system"), "", ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
        trimsContent: true);

    /// <summary>Mistral Instruct v0.1 (Axolotl's mistral_v1): <c> [INST] {user} [/INST] {assistant}&lt;/s&gt;</c>; no system role.</summary>
    public static ChatTemplate Mistral { get; } = new("mistral",
        new(" [INST] ", " [/INST]"), new(" ", "</s>"), system: null, "", ["</s>"], requiresAlternation: true);

    /// <summary>Gemma: <c>&lt;start_of_turn&gt;{user|model}\n{content}&lt;end_of_turn&gt;\n</c>, content trimmed; no system role.</summary>
    public static ChatTemplate Gemma { get; } = new("gemma",
        new("<start_of_turn>user\n", "<end_of_turn>"), new("<start_of_turn>model\n", "<end_of_turn>"), system: null, "\n",
        ["<start_of_turn>", "<end_of_turn>"], trimsContent: true, requiresAlternation: true);

    /// <summary>Phi-3: <c>&lt;|{role}|&gt;\n{content}&lt;|end|&gt;\n</c>.</summary>
    public static ChatTemplate Phi3 { get; } = new("phi3",
        new("<|user|>\n", "<|end|>"), new("<|assistant|>\n", "<|end|>"), new("<|system|>\n", "<|end|>"), "\n",
        ["<|user|>", "<|assistant|>", "<|end|>"]);

    /// <summary>The formats <see cref="Named"/> knows, ChatML (the default) first.</summary>
    public static IReadOnlyList<ChatTemplate> BuiltIn { get; } = [ChatMl, Llama3, Mistral, Gemma, Phi3];

    /// <summary>The name that picks the format of the model's own chat template (<see cref="Resolve"/>).</summary>
    public const string AutoName = "auto";

    /// <summary>True for a built-in format's name or <see cref="AutoName"/>, in any case.</summary>
    public static bool IsName(string name) =>
        string.Equals(name, AutoName, StringComparison.OrdinalIgnoreCase) || BuiltIn.Any(t => string.Equals(t.Name, name, StringComparison.OrdinalIgnoreCase));

    /// <summary>The built-in format <paramref name="name"/>, or for <see cref="AutoName"/> the one <paramref name="modelChatTemplate"/> is in (ChatML when none).</summary>
    /// <exception cref="ArgumentException">Neither a built-in format's name nor <see cref="AutoName"/>.</exception>
    public static ChatTemplate Resolve(string name, string? modelChatTemplate) =>
        string.Equals(name, AutoName, StringComparison.OrdinalIgnoreCase) ? Recognise(modelChatTemplate) ?? ChatMl : Named(name);

    /// <exception cref="ArgumentException">No built-in format has that name; the message lists them.</exception>
    public static ChatTemplate Named(string name) =>
        BuiltIn.FirstOrDefault(t => string.Equals(t.Name, name, StringComparison.OrdinalIgnoreCase))
        ?? throw new ArgumentException($"There is no chat template \"{name}\"; built in: {string.Join(", ", BuiltIn.Select(t => t.Name))}.", nameof(name));

    /// <summary>
    /// The built-in format a model's own Jinja chat template (tokenizer_config.json's chat_template) is written in,
    /// recognised by the markers it uses; null when none of them matches. Jinja is not executed.
    /// </summary>
    public static ChatTemplate? Recognise(string? modelChatTemplate)
    {
        if (string.IsNullOrEmpty(modelChatTemplate))
            return null;
        // Unambiguous special tokens first; "[INST]" last, as it is plain text that another template could mention.
        if (modelChatTemplate.Contains("<|start_header_id|>", StringComparison.Ordinal)) return Llama3;
        if (modelChatTemplate.Contains("<|im_start|>", StringComparison.Ordinal)) return ChatMl;
        if (modelChatTemplate.Contains("<start_of_turn>", StringComparison.Ordinal)) return Gemma;
        if (modelChatTemplate.Contains("<|user|>", StringComparison.Ordinal) && modelChatTemplate.Contains("<|end|>", StringComparison.Ordinal)) return Phi3;
        if (modelChatTemplate.Contains("[INST]", StringComparison.Ordinal)) return Mistral;
        return null;
    }

    public string Name { get; }

    public string TurnSeparator { get; }

    /// <summary>The special tokens the format is written with (empty for a custom one).</summary>
    public IReadOnlyList<string> Markers { get; }

    public bool TrimsContent { get; }

    public bool RequiresAlternation { get; }

    public bool HasSystemRole => _system is not null;

    /// <summary>What ends an assistant reply (e.g. <c>&lt;|im_end|&gt;</c>): a model trained in this format stops there.</summary>
    public string AssistantTurnEnd => _assistant.Suffix;

    /// <summary>Instruction records become a user turn (instruction, then a blank line and the input if any) and an assistant turn.</summary>
    public static IReadOnlyList<ChatMessage> ToMessages(InstructionRecord record) =>
    [
        new(ChatRole.User, string.IsNullOrEmpty(record.Input) ? record.Instruction : $"{record.Instruction}\n\n{record.Input}"),
        new(ChatRole.Assistant, record.Output),
    ];

    /// <summary>Why this format cannot render <paramref name="messages"/> (a system message it has no role for, turns out of order), or null when it can.</summary>
    public string? Incompatibility(IReadOnlyList<ChatMessage> messages)
    {
        ArgumentNullException.ThrowIfNull(messages);
        if (_system is null && messages.FirstOrDefault(m => m.Role == ChatRole.System) is not null)
            return $"a system message, which the {Name} format has no role for";
        if (RequiresAlternation)
        {
            for (int i = 0; i < messages.Count; i++)
            {
                var expected = i % 2 == 0 ? ChatRole.User : ChatRole.Assistant;
                if (messages[i].Role != expected)
                    return $"message {i} from {messages[i].Role.ToString().ToLowerInvariant()} where the {Name} format needs " +
                           $"{expected.ToString().ToLowerInvariant()} (turns must alternate user, assistant, user, …)";
            }
        }
        return null;
    }

    /// <param name="trainOnInputs">Train every piece, prompts included (the "train on inputs" option).</param>
    /// <exception cref="ArgumentException">The format cannot render these messages (<see cref="Incompatibility"/>).</exception>
    public IReadOnlyList<TemplatePiece> Render(IReadOnlyList<ChatMessage> messages, bool trainOnInputs)
    {
        if (Incompatibility(messages) is { } reason)
            throw new ArgumentException($"The {Name} chat template cannot render this conversation: {reason}.", nameof(messages));
        var pieces = new List<TemplatePiece>();
        for (int i = 0; i < messages.Count; i++)
        {
            ChatMessage message = messages[i];
            bool trained = trainOnInputs || message.Role == ChatRole.Assistant;
            var turn = TurnOf(message.Role);
            if (i > 0)
                pieces.Add(new TemplatePiece(TurnSeparator, trainOnInputs));
            pieces.Add(new TemplatePiece(turn.Prefix, trainOnInputs));
            pieces.Add(new TemplatePiece(TrimsContent ? message.Content.Trim() : message.Content, trained));
            pieces.Add(new TemplatePiece(turn.Suffix, trained));
        }
        return pieces;
    }

    public string RenderText(IReadOnlyList<ChatMessage> messages) =>
        string.Concat(Render(messages, trainOnInputs: false).Select(p => p.Text));

    /// <summary>The prompt for generating the next assistant turn: the conversation so far and an open assistant turn.</summary>
    public string RenderGenerationPrompt(IReadOnlyList<ChatMessage> conversationSoFar) =>
        conversationSoFar.Count == 0
            ? _assistant.Prefix
            : RenderText(conversationSoFar) + TurnSeparator + _assistant.Prefix;

    /// <summary>
    /// This format as a Hugging Face chat template (Jinja, for tokenizer_config.json's <c>chat_template</c>): rendered
    /// by transformers' apply_chat_template it gives exactly <see cref="RenderText"/>, or with add_generation_prompt
    /// <see cref="RenderGenerationPrompt"/>, after <c>bos_token</c> when <paramref name="startWithBos"/> (the tokenizer
    /// adds BOS in training, and apply_chat_template does not). Refusals raise, as the models' own templates do.
    /// </summary>
    public string ToJinja(bool startWithBos)
    {
        var jinja = new System.Text.StringBuilder();
        if (startWithBos)
            jinja.Append("{{ bos_token }}");
        jinja.Append("{% for message in messages %}");
        if (RequiresAlternation)
            jinja.Append("{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception(")
                .Append(Literal($"The {Name} format needs turns that alternate user, assistant, user, ...")).Append(") }}{% endif %}");
        if (TurnSeparator.Length > 0)
            jinja.Append("{% if loop.index0 > 0 %}{{ ").Append(Literal(TurnSeparator)).Append(" }}{% endif %}");
        string content = TrimsContent ? "(message['content'] | trim)" : "message['content']";
        string Turn(TurnFormat turn) => $"{{{{ {Literal(turn.Prefix)} + {content} + {Literal(turn.Suffix)} }}}}";
        jinja.Append("{% if message['role'] == 'user' %}").Append(Turn(_user));
        jinja.Append("{% elif message['role'] == 'assistant' %}").Append(Turn(_assistant));
        if (_system is not null)
            jinja.Append("{% elif message['role'] == 'system' %}").Append(Turn(_system));
        jinja.Append("{% else %}{{ raise_exception(").Append(Literal($"The {Name} format has no role ")).Append(" + message['role']) }}{% endif %}");
        jinja.Append("{% endfor %}");
        jinja.Append("{% if add_generation_prompt %}");
        if (TurnSeparator.Length > 0)
            jinja.Append("{% if messages | length > 0 %}{{ ").Append(Literal(TurnSeparator)).Append(" }}{% endif %}");
        jinja.Append("{{ ").Append(Literal(_assistant.Prefix)).Append(" }}{% endif %}");
        return jinja.ToString();
    }

    /// <summary>A single-quoted Jinja string literal (Jinja decodes Python-style escapes).</summary>
    private static string Literal(string text)
    {
        var literal = new System.Text.StringBuilder("'");
        foreach (char c in text)
        {
            literal.Append(c switch
            {
                '\\' => "\\\\",
                '\'' => "\\'",
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                _ => c.ToString(),
            });
        }
        return literal.Append('\'').ToString();
    }

    private TurnFormat TurnOf(ChatRole role) => role switch
    {
        ChatRole.User => _user,
        ChatRole.Assistant => _assistant,
        _ => _system!,
    };

    private static TurnFormat Header3(string role) => new($"<|start_header_id|>{role}<|end_header_id|>\n\n", "<|eot_id|>");

    private static TurnFormat RoleTurn(string turnHeader, string endOfTurn, string role)
    {
        if (!turnHeader.Contains(RolePlaceholder, StringComparison.Ordinal))
            throw new ArgumentException($"The turn header must contain {RolePlaceholder}; got \"{turnHeader}\".", nameof(turnHeader));
        ArgumentException.ThrowIfNullOrEmpty(endOfTurn);
        return new TurnFormat(turnHeader.Replace(RolePlaceholder, role, StringComparison.Ordinal), endOfTurn);
    }
}
