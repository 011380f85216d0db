// Tokens added on top of a tokenizer's model (special tokens such as <|im_end|>): matched in text before the model runs.
using System.Text.RegularExpressions;

namespace Spectrum.Text;

/// <summary>One added token: its text, its id, and whether decoding may skip it (Hugging Face's "special" flag).</summary>
internal readonly record struct AddedToken(string Content, int Id, bool IsSpecial);

/// <summary>A stretch of text that is either one added token or ordinary text for the model.</summary>
internal readonly record struct TextSegment(int Start, int Length, int? AddedTokenId)
{
    public int End => Start + Length;
}

/// <summary>
/// Splits text on added tokens the way Hugging Face tokenizers do: every occurrence of an added token's text becomes
/// that token, the longest one winning where several start at the same place, and the text between them is encoded
/// separately by the model.
/// </summary>
internal sealed class AddedTokens
{
    private readonly Dictionary<string, AddedToken> _byContent = new(StringComparer.Ordinal);
    private readonly Dictionary<int, AddedToken> _byId = [];
    private readonly Regex? _matcher;

    public AddedTokens(IEnumerable<AddedToken> tokens)
    {
        foreach (AddedToken token in tokens)
        {
            _byContent[token.Content] = token;
            _byId[token.Id] = token;
        }
        if (_byContent.Count > 0)
        {
            // Alternation tries branches in order, so listing longer tokens first makes the longest match win.
            string pattern = string.Join("|", _byContent.Keys.OrderByDescending(k => k.Length).ThenBy(k => k, StringComparer.Ordinal)
                .Select(Regex.Escape));
            _matcher = new Regex(pattern, RegexOptions.CultureInvariant);
        }
    }

    public IReadOnlyCollection<AddedToken> All => _byContent.Values;

    public bool TryGetByContent(string content, out AddedToken token) => _byContent.TryGetValue(content, out token);

    public bool TryGetById(int id, out AddedToken token) => _byId.TryGetValue(id, out token);

    public IEnumerable<TextSegment> Split(string text, bool matchAddedTokens)
    {
        if (text.Length == 0)
        {
            yield break;
        }
        if (!matchAddedTokens || _matcher is null)
        {
            yield return new TextSegment(0, text.Length, null);
            yield break;
        }
        int position = 0;
        for (Match match = _matcher.Match(text); match.Success; match = match.NextMatch())
        {
            if (match.Index > position)
            {
                yield return new TextSegment(position, match.Index - position, null);
            }
            yield return new TextSegment(match.Index, match.Length, _byContent[match.Value].Id);
            position = match.Index + match.Length;
        }
        if (position < text.Length)
        {
            yield return new TextSegment(position, text.Length - position, null);
        }
    }
}
