// The tokenizer our trainer uses: loads a model folder's tokenizer files and encodes/decodes with Microsoft.ML.Tokenizers.
using System.Text;

namespace Spectrum.Text;

/// <summary>Which tokenizer file a <see cref="ModelTokenizer"/> was built from.</summary>
public enum TokenizerKind
{
    /// <summary>tokenizer.json with a byte-level BPE model (Llama 3, SmolLM, Qwen2).</summary>
    ByteLevelBpe,
    /// <summary>tokenizer.model, a SentencePiece BPE or unigram model (Llama 2, Mistral, TinyLlama).</summary>
    SentencePiece,
}

/// <summary>
/// A model folder's tokenizer as Hugging Face would apply it for training: added tokens written in the text (such as
/// <c>&lt;|im_end|&gt;</c>) become their single ids, the text between them goes through the BPE or SentencePiece model,
/// and BOS/EOS are added when asked exactly as tokenizer_config.json says (add_bos_token / add_eos_token; without
/// them, byte-level files add what their post-processor template adds and SentencePiece adds BOS only, Llama's default).
/// </summary>
public sealed class ModelTokenizer
{
    private static readonly string[] TokenizerFileNames =
    [
        HuggingFaceTokenizerFile.FileName, SentencePieceModel.FileName, TokenizerConfig.FileName,
        TokenizerConfig.SpecialTokensMapFileName, "added_tokens.json", "vocab.json", "merges.txt",
        ChatTemplateFileName, "chat_template.json",
    ];

    private const string ChatTemplateFileName = "chat_template.jinja";

    private readonly ITokenModel _model;
    private readonly AddedTokens _added;

    private ModelTokenizer(string folder, TokenizerKind kind, ITokenModel model, AddedTokens added)
    {
        ModelFolder = folder;
        Kind = kind;
        _model = model;
        _added = added;
        VocabSize = Math.Max(model.MaxId, added.All.Select(t => t.Id).DefaultIfEmpty(-1).Max()) + 1;
        FilesToCopy = TokenizerFileNames.Select(name => Path.Combine(folder, name)).Where(File.Exists).ToArray();
    }

    public string ModelFolder { get; }

    public TokenizerKind Kind { get; }

    public int? BosId { get; private init; }

    public int? EosId { get; private init; }

    /// <summary>tokenizer_config.json's pad_token; null when the model defines none (the trainer then picks one).</summary>
    public int? PadId { get; private init; }

    /// <summary>Whether <see cref="Encode"/> with addSpecialTokens puts BOS first (only when <see cref="BosId"/> is known).</summary>
    public bool AddsBosToken { get; private init; }

    /// <summary>Whether <see cref="Encode"/> with addSpecialTokens puts EOS last (only when <see cref="EosId"/> is known).</summary>
    public bool AddsEosToken { get; private init; }

    /// <summary>One more than the largest id of the model or its added tokens (Hugging Face's len(tokenizer)).</summary>
    public int VocabSize { get; }

    /// <summary>The model's own chat template (Jinja source) when it ships one; not rendered here.</summary>
    public string? ChatTemplateSource { get; private init; }

    public bool HasChatTemplate => ChatTemplateSource is not null;

    /// <summary>Full paths of the tokenizer files present, for the exporter to copy into a fine-tuned model folder.</summary>
    public IReadOnlyList<string> FilesToCopy { get; }

    /// <summary>Things that did not stop loading but may change ids, for the trainer to print.</summary>
    public IReadOnlyList<string> Warnings => _model.Warnings;

    public static ModelTokenizer Load(string modelFolder)
    {
        if (!Directory.Exists(modelFolder))
        {
            throw new DataFormatException(modelFolder, null, null,
                "a model folder holding tokenizer.json or tokenizer.model", "no such folder", "Check the path.");
        }
        string folder = Path.GetFullPath(modelFolder);
        TokenizerConfig config = TokenizerConfig.Read(folder);
        string jsonPath = Path.Combine(folder, HuggingFaceTokenizerFile.FileName);
        string sentencePiecePath = Path.Combine(folder, SentencePieceModel.FileName);
        HuggingFaceTokenizerFile? json = File.Exists(jsonPath) ? HuggingFaceTokenizerFile.Read(jsonPath) : null;

        TokenizerKind kind;
        ITokenModel model;
        var addedTokens = new List<(AddedToken Token, string Source)>();
        string? defaultBos = null, defaultEos = null;
        bool defaultAddsBos, defaultAddsEos;
        if (json is { IsByteLevel: true })
        {
            kind = TokenizerKind.ByteLevelBpe;
            model = json.CreateByteLevelModel();
            addedTokens.AddRange(json.AddedTokens.Select(t => (t, jsonPath)));
            (defaultBos, defaultEos) = (json.TemplateBosToken, json.TemplateEosToken);
            (defaultAddsBos, defaultAddsEos) = (json.TemplateBosToken is not null, json.TemplateEosToken is not null);
        }
        else if (File.Exists(sentencePiecePath))
        {
            kind = TokenizerKind.SentencePiece;
            var sentencePiece = SentencePieceModel.Read(sentencePiecePath);
            model = sentencePiece;
            addedTokens.AddRange(sentencePiece.ControlTokens.Select(t => (t, sentencePiecePath)));
            // A SentencePiece model's tokenizer.json (Llama 2 ships both) may list tokens added after training.
            addedTokens.AddRange((json?.AddedTokens ?? []).Select(t => (t, jsonPath)));
            (defaultBos, defaultEos) = (sentencePiece.BosToken, sentencePiece.EosToken);
            (defaultAddsBos, defaultAddsEos) = (true, false);
        }
        else if (json is not null)
        {
            throw new DataFormatException(jsonPath, null, "pre_tokenizer",
                "byte-level BPE (a ByteLevel pre-tokenizer), or a tokenizer.model beside a SentencePiece-style tokenizer.json",
                $"{json.ModelDescription} without a ByteLevel pre-tokenizer, and no tokenizer.model",
                "Copy the model's tokenizer.model into the folder.");
        }
        else
        {
            string present = string.Join(", ", Directory.EnumerateFileSystemEntries(folder).Select(Path.GetFileName).Order());
            throw new DataFormatException(folder, null, null, "tokenizer.json or tokenizer.model",
                present.Length == 0 ? "an empty folder" : $"only {present}",
                "Copy the tokenizer files from the model's original folder.");
        }
        string configPath = Path.Combine(folder, TokenizerConfig.FileName);
        addedTokens.AddRange(config.AddedTokens.Select(t => (t, configPath)));

        var added = new AddedTokens(Deduplicate(addedTokens));
        string tokenSource = kind == TokenizerKind.ByteLevelBpe ? jsonPath : sentencePiecePath;
        string chatTemplatePath = Path.Combine(folder, ChatTemplateFileName);
        int? Resolve(string? token, string source, string field) => ResolveNamedToken(added, model, token, source, field);
        return new ModelTokenizer(folder, kind, model, added)
        {
            ChatTemplateSource = config.ChatTemplate ?? (File.Exists(chatTemplatePath) ? File.ReadAllText(chatTemplatePath) : null),
            BosId = Resolve(config.BosToken ?? defaultBos, config.BosSource ?? tokenSource, "bos_token"),
            EosId = Resolve(config.EosToken ?? defaultEos, config.EosSource ?? tokenSource, "eos_token"),
            PadId = Resolve(config.PadToken, config.PadSource ?? configPath, "pad_token"),
            AddsBosToken = config.AddBosToken ?? defaultAddsBos,
            AddsEosToken = config.AddEosToken ?? defaultAddsEos,
        };
    }

    /// <param name="text">Text to encode; added tokens written in it become their ids when parseSpecialTokens is true.</param>
    /// <param name="addSpecialTokens">Put BOS first and EOS last as <see cref="AddsBosToken"/>/<see cref="AddsEosToken"/> say.</param>
    /// <param name="parseSpecialTokens">False encodes "&lt;|im_end|&gt;" as ordinary characters (for untrusted text).</param>
    public IReadOnlyList<int> Encode(string text, bool addSpecialTokens, bool parseSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>();
        if (addSpecialTokens && AddsBosToken && BosId is { } bos)
        {
            ids.Add(bos);
        }
        foreach (TextSegment segment in _added.Split(text, parseSpecialTokens))
        {
            if (segment.AddedTokenId is { } added)
            {
                ids.Add(added);
            }
            else
            {
                _model.Encode(text.Substring(segment.Start, segment.Length), ids);
            }
        }
        if (addSpecialTokens && AddsEosToken && EosId is { } eos)
        {
            ids.Add(eos);
        }
        return ids;
    }

    /// <summary>Text of the ids; added tokens appear as their text unless skipSpecialTokens drops the special ones.</summary>
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var text = new StringBuilder();
        var run = new List<int>();
        void FlushRun()
        {
            if (run.Count > 0)
            {
                text.Append(_model.Decode(run));
                run.Clear();
            }
        }
        foreach (int id in ids)
        {
            if (_added.TryGetById(id, out AddedToken token))
            {
                FlushRun();
                if (!(skipSpecialTokens && token.IsSpecial))
                {
                    text.Append(token.Content);
                }
            }
            else if (_model.IsKnownId(id))
            {
                run.Add(id);
            }
            else
            {
                throw new ArgumentOutOfRangeException(nameof(ids), id,
                    $"Token id {id} is not in this tokenizer (ids run from 0 to {VocabSize - 1}, from {ModelFolder}).");
            }
        }
        FlushRun();
        return text.ToString();
    }

    /// <summary>The id of an added token or vocabulary entry, written as stored (byte-level entries use 'Ġ' for space).</summary>
    public int? TokenToId(string token) => Lookup(_added, _model, token);

    private static int? Lookup(AddedTokens added, ITokenModel model, string token) =>
        added.TryGetByContent(token, out AddedToken addedToken) ? addedToken.Id :
        model.TryGetId(token, out int id) ? id : null;

    /// <summary>
    /// Encodes pieces of one text, marking each id with its piece's flag, with the ids the whole text would get (so
    /// training sees what inference sees). Where a flag changes inside ordinary text, the ids shared with the encoding
    /// of the text up to that point keep the earlier flag and the rest take the later one, so a token spanning the
    /// change (or re-segmented by it) goes with the later piece.
    /// </summary>
    internal void EncodeFlagged(IReadOnlyList<(string Text, bool Flag)> pieces, List<int> ids, List<bool> flags)
    {
        string text = string.Concat(pieces.Select(p => p.Text));
        var flagChanges = new List<(int Position, bool Flag)>();
        int position = 0;
        foreach ((string pieceText, bool flag) in pieces)
        {
            if (pieceText.Length > 0 && (flagChanges.Count == 0 || flagChanges[^1].Flag != flag))
            {
                flagChanges.Add((position, flag));
            }
            position += pieceText.Length;
        }
        bool FlagAt(int at) => flagChanges.Last(change => change.Position <= at).Flag;

        foreach (TextSegment segment in _added.Split(text, matchAddedTokens: true))
        {
            if (segment.AddedTokenId is { } added)
            {
                ids.Add(added);
                flags.Add(FlagAt(segment.Start));
                continue;
            }
            var segmentIds = new List<int>();
            _model.Encode(text.Substring(segment.Start, segment.Length), segmentIds);
            int assigned = 0;
            bool currentFlag = FlagAt(segment.Start);
            foreach ((int changeAt, bool nextFlag) in flagChanges.Where(c => c.Position > segment.Start && c.Position < segment.End))
            {
                var prefixIds = new List<int>();
                _model.Encode(text.Substring(segment.Start, changeAt - segment.Start), prefixIds);
                int shared = 0;
                while (shared < prefixIds.Count && shared < segmentIds.Count && prefixIds[shared] == segmentIds[shared])
                {
                    shared++;
                }
                for (; assigned < shared; assigned++)
                {
                    flags.Add(currentFlag);
                }
                currentFlag = nextFlag;
            }
            for (; assigned < segmentIds.Count; assigned++)
            {
                flags.Add(currentFlag);
            }
            ids.AddRange(segmentIds);
        }
    }

    private static int? ResolveNamedToken(AddedTokens added, ITokenModel model, string? token, string source, string field)
    {
        if (token is null)
        {
            return null;
        }
        return Lookup(added, model, token) ?? throw new DataFormatException(source, null, field,
            "a token that is in the vocabulary or among the added tokens", $"\"{token}\", which is in neither",
            "Name a token the tokenizer has, or add it to added_tokens_decoder.");
    }

    private static IEnumerable<AddedToken> Deduplicate(List<(AddedToken Token, string Source)> tokens)
    {
        var byContent = new Dictionary<string, (AddedToken Token, string Source)>(StringComparer.Ordinal);
        foreach ((AddedToken token, string source) in tokens)
        {
            if (byContent.TryGetValue(token.Content, out var earlier) && earlier.Token.Id != token.Id)
            {
                throw new DataFormatException(source, null, $"added token \"{token.Content}\"",
                    $"id {earlier.Token.Id}, as {Path.GetFileName(earlier.Source)} says", $"id {token.Id}",
                    "Make the tokenizer files agree (they usually come from one save_pretrained).");
            }
            // A later file may mark an existing token special (tokenizer_config.json refines tokenizer.json).
            byContent[token.Content] = (token with { IsSpecial = token.IsSpecial || earlier.Token.IsSpecial }, source);
        }
        return byContent.Values.Select(v => v.Token);
    }
}
