// Turns training records into TokenizedExamples: chat template, BOS/EOS, and which tokens the loss covers.
namespace Spectrum.Text;

/// <summary>
/// BOS and EOS: BOS first when the tokenizer adds one (tokenizer_config.json's add_bos_token), never trained since
/// nothing precedes it. Every example ends with EOS so packed examples stay separated: text records train it (the
/// model learns where documents end); conversations end with the template's end-of-turn token, and EOS is appended
/// after it unless it already is EOS (ChatML models whose eos_token is &lt;|im_end|&gt;), trained when the last turn is.
/// Loss: text records train every token but BOS; conversations and instructions train the assistant turns only, or
/// everything but BOS with trainOnInputs.
/// </summary>
public sealed class ExampleTokenizer
{
    private readonly ModelTokenizer _tokenizer;
    private readonly ChatTemplate _template;
    private readonly bool _trainOnInputs;
    private readonly int _eosId;

    public ExampleTokenizer(ModelTokenizer tokenizer, ChatTemplate template, bool trainOnInputs = false)
    {
        _tokenizer = tokenizer;
        _template = template;
        _trainOnInputs = trainOnInputs;
        _eosId = tokenizer.EosId ?? throw new DataFormatException(tokenizer.ModelFolder, null, "eos_token",
            "an end-of-sequence token (examples end with it so packed examples stay apart)", "none defined",
            "Set eos_token in tokenizer_config.json.");
    }

    public bool TrainOnInputs => _trainOnInputs;

    public TokenizedExample Tokenize(TrainingRecord record)
    {
        var ids = new List<int>();
        var trained = new List<bool>();
        if (_tokenizer.AddsBosToken && _tokenizer.BosId is { } bos)
        {
            ids.Add(bos);
            trained.Add(false);
        }
        switch (record)
        {
            case TextRecord text:
                foreach (int id in _tokenizer.Encode(text.Text, addSpecialTokens: false))
                {
                    ids.Add(id);
                    trained.Add(true);
                }
                ids.Add(_eosId);
                trained.Add(true);
                break;
            case InstructionRecord instruction:
                AddConversation(ChatTemplate.ToMessages(instruction), record, ids, trained);
                break;
            case ConversationRecord conversation:
                AddConversation(conversation.Messages, record, ids, trained);
                break;
            default:
                throw new ArgumentException($"Unknown record type {record.GetType().Name}.", nameof(record));
        }
        return new TokenizedExample([.. ids], [.. trained]);
    }

    public IReadOnlyList<TokenizedExample> TokenizeAll(IEnumerable<TrainingRecord> records) => records.Select(Tokenize).ToList();

    private void AddConversation(IReadOnlyList<ChatMessage> messages, TrainingRecord record, List<int> ids, List<bool> trained)
    {
        if (_template.Incompatibility(messages) is { } reason)
            throw new DataFormatException(record.FilePath, record.LineNumber, "messages",
                $"a conversation the {_template.Name} chat template can render", reason,
                _template.HasSystemRole
                    ? "Reorder the turns, or choose another --chat-template."
                    : "Drop the system message (or fold it into the first user turn), or choose a --chat-template with a system role, such as chatml.");
        IReadOnlyList<TemplatePiece> pieces = _template.Render(messages, _trainOnInputs);
        _tokenizer.EncodeFlagged(pieces.Select(p => (p.Text, p.IsTrained)).ToList(), ids, trained);
        if (ids[^1] != _eosId)
        {
            ids.Add(_eosId);
            trained.Add(_trainOnInputs || messages[^1].Role == ChatRole.Assistant);
        }
    }
}
