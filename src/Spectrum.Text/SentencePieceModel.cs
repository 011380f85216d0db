// SentencePiece (tokenizer.model, as Llama 2 / Mistral / TinyLlama ship) for ModelTokenizer, via Microsoft.ML.Tokenizers.
using Microsoft.ML.Tokenizers;

namespace Spectrum.Text;

/// <summary>
/// Wraps <see cref="SentencePieceTokenizer"/> without its BOS/EOS handling, which ModelTokenizer owns. Each stretch of
/// text between added tokens is encoded on its own and so gets SentencePiece's dummy-prefix space, as Hugging Face's
/// "legacy" Llama tokenizer does.
/// </summary>
internal sealed class SentencePieceModel : ITokenModel
{
    public const string FileName = "tokenizer.model";
    private readonly SentencePieceTokenizer _tokenizer;

    private SentencePieceModel(SentencePieceTokenizer tokenizer)
    {
        _tokenizer = tokenizer;
        MaxId = tokenizer.Vocabulary.Values.Max();
    }

    public int MaxId { get; }

    public IReadOnlyList<string> Warnings => [];

    /// <summary>The model's own control pieces (unk, bos, eos), which count as added tokens when found in text.</summary>
    public IEnumerable<AddedToken> ControlTokens =>
    [
        new(_tokenizer.UnknownToken, _tokenizer.UnknownId, IsSpecial: true),
        new(_tokenizer.BeginningOfSentenceToken, _tokenizer.BeginningOfSentenceId, IsSpecial: true),
        new(_tokenizer.EndOfSentenceToken, _tokenizer.EndOfSentenceId, IsSpecial: true),
    ];

    public string BosToken => _tokenizer.BeginningOfSentenceToken;

    public string EosToken => _tokenizer.EndOfSentenceToken;

    public static SentencePieceModel Read(string path)
    {
        const string WhatToDo = "Use the tokenizer.model that came with the model (a SentencePiece model file).";
        SentencePieceTokenizer tokenizer;
        try
        {
            using FileStream stream = File.OpenRead(path);
            tokenizer = SentencePieceTokenizer.Create(stream, addBeginningOfSentence: false, addEndOfSentence: false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DataFormatException(path, null, null, "a readable file", e.Message, WhatToDo, e);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Protobuf parse errors and unsupported model kinds surface as assorted exception types.
            throw new DataFormatException(path, null, null, "a SentencePiece BPE or unigram model (protobuf)",
                $"a file Microsoft.ML.Tokenizers cannot read ({e.GetType().Name}: {e.Message})", WhatToDo, e);
        }

        // Microsoft.ML.Tokenizers 2.0.1's unigram model keeps byte pieces out of its vocabulary, so it cannot find
        // <0x00> and offsets every byte-fallback id by 255: such ids would silently be other tokens.
        if (tokenizer.ByteFallback && !tokenizer.Vocabulary.ContainsKey("<0x00>"))
        {
            throw new DataFormatException(path, null, "trainer_spec.byte_fallback",
                "a BPE model, or a unigram model without byte fallback",
                "a unigram model with byte fallback, whose byte ids Microsoft.ML.Tokenizers 2.0.1 shifts by 255",
                "Use the model's tokenizer.json if it is byte-level BPE, or a Microsoft.ML.Tokenizers release that fixes unigram byte fallback.");
        }
        return new SentencePieceModel(tokenizer);
    }

    public void Encode(string text, List<int> ids)
    {
        // SentencePiece emits one <unk> for a run of unknown characters; Microsoft.ML.Tokenizers emits one per
        // character, so runs are folded here to give SentencePiece's ids (a no-op with byte fallback, which has no <unk>).
        int unknown = _tokenizer.UnknownId;
        bool previousWasUnknown = false;
        foreach (int id in _tokenizer.EncodeToIds(text, addBeginningOfSentence: false, addEndOfSentence: false))
        {
            if (id != unknown || !previousWasUnknown)
            {
                ids.Add(id);
            }
            previousWasUnknown = id == unknown;
        }
    }

    public string Decode(IReadOnlyList<int> ids) => _tokenizer.Decode(ids) ?? "";

    public bool TryGetId(string token, out int id) => _tokenizer.Vocabulary.TryGetValue(token, out id);

    // The unigram model's vocabulary leaves out byte pieces, which still lie inside the id range.
    public bool IsKnownId(int id) => id >= 0 && id <= MaxId;
}
