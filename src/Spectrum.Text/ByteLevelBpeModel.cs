// Byte-level BPE (GPT-2 / Llama 3 / Qwen2 style) for ModelTokenizer: our pre-tokenizer, Microsoft.ML.Tokenizers' BPE.
using Microsoft.ML.Tokenizers;

namespace Spectrum.Text;

/// <summary>
/// Pre-tokenization runs here (Hugging Face's pipeline, see <see cref="PreTokenizerSteps"/>); each piece is then
/// merged by <see cref="BpeTokenizer"/> with pre-tokenization turned off, so the library sees exactly the pieces the
/// reference sees. With ignore_merges (Llama 3) a piece that is itself in the vocabulary is emitted whole first, as
/// tiktoken does, because merges do not always rebuild vocabulary entries converted from tiktoken.
/// </summary>
internal sealed class ByteLevelBpeModel : ITokenModel
{
    private readonly BpeTokenizer _bpe;
    private readonly Dictionary<string, int> _idOfToken;
    private readonly HashSet<int> _ids;
    private readonly PreTokenizerSteps _preTokenizer;
    private readonly bool _ignoreMerges;
    private readonly Func<string, string> _normalize;

    public ByteLevelBpeModel(BpeTokenizer bpe, IEnumerable<KeyValuePair<string, int>> vocabulary,
        PreTokenizerSteps preTokenizer, bool ignoreMerges, Func<string, string> normalize, IReadOnlyList<string> warnings)
    {
        _bpe = bpe;
        _idOfToken = new Dictionary<string, int>(vocabulary, StringComparer.Ordinal);
        _ids = [.. _idOfToken.Values];
        _preTokenizer = preTokenizer;
        _ignoreMerges = ignoreMerges;
        _normalize = normalize;
        Warnings = warnings;
        MaxId = _ids.Max();
    }

    public int MaxId { get; }

    public IReadOnlyList<string> Warnings { get; }

    public void Encode(string text, List<int> ids)
    {
        string normalized = _normalize(text);
        foreach ((int start, int length) in _preTokenizer.Split(normalized))
        {
            string piece = normalized.Substring(start, length);
            if (_ignoreMerges && _idOfToken.TryGetValue(ByteLevelAlphabet.Map(piece), out int whole))
            {
                ids.Add(whole);
                continue;
            }
            ids.AddRange(_bpe.EncodeToIds(piece, considerPreTokenization: false, considerNormalization: false));
        }
    }

    public string Decode(IReadOnlyList<int> ids) => _bpe.Decode(ids) ?? "";

    public bool TryGetId(string token, out int id) => _idOfToken.TryGetValue(token, out id);

    public bool IsKnownId(int id) => _ids.Contains(id);
}
