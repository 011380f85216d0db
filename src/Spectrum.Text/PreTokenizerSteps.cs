// Hugging Face's pre-tokenizer pipeline (Sequence of Split/ByteLevel/Digits) as ordered regex splits of the text.
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Spectrum.Text;

/// <summary>
/// Each step splits every piece left by the previous step into the step's matches and the text between them (Hugging
/// Face's "Isolated" behaviour). Written here rather than taken from Microsoft.ML.Tokenizers because its
/// CompositePreTokenizer only passes the gaps between matches on to later steps, which is not Hugging Face's Sequence.
/// </summary>
internal sealed class PreTokenizerSteps(IReadOnlyList<Regex> steps)
{
    /// <summary>GPT-2's pattern, which Hugging Face's ByteLevel pre-tokenizer applies when use_regex is true.</summary>
    public const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    public IReadOnlyList<Regex> Steps => steps;

    public List<(int Start, int Length)> Split(string text)
    {
        if (text.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF') < 0)
        {
            return SplitCodeUnits(text);
        }
        (string standIn, int[] originalIndex) = CodePointStandIn(text);
        List<(int Start, int Length)> pieces = SplitCodeUnits(standIn);
        for (int i = 0; i < pieces.Count; i++)
        {
            (int start, int length) = pieces[i];
            int originalStart = originalIndex[start];
            pieces[i] = (originalStart, originalIndex[start + length] - originalStart);
        }
        return pieces;
    }

    /// <summary>
    /// Hugging Face matches its patterns against code points, .NET's Regex against UTF-16 units, in which a letter or
    /// digit outside the BMP (CJK Extension B, mathematical alphanumerics) is two surrogates and not \p{L} or \p{N}.
    /// The patterns are matched instead against a stand-in with one character per code point: each supplementary code
    /// point becomes a BMP character of the same Unicode category (so \p{..}, \s, \w and quantifiers such as \p{N}{1,3}
    /// see what Hugging Face sees). Returns it and, for each stand-in index (and its end), the index in the original.
    /// </summary>
    private static (string StandIn, int[] OriginalIndex) CodePointStandIn(string text)
    {
        var standIn = new StringBuilder(text.Length);
        var originalIndex = new List<int>(text.Length + 1);
        for (int i = 0; i < text.Length; i++)
        {
            originalIndex.Add(i);
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                UnicodeCategory category = CharUnicodeInfo.GetUnicodeCategory(char.ConvertToUtf32(text[i], text[i + 1]));
                standIn.Append(CategoryRepresentatives[(int)category]);
                i++;
            }
            else
            {
                // BMP characters, and lone surrogates (not a code point either side would accept), stay as they are.
                standIn.Append(text[i]);
            }
        }
        originalIndex.Add(text.Length);
        return (standIn.ToString(), originalIndex.ToArray());
    }

    /// <summary>
    /// For each Unicode category the first non-ASCII BMP character in it, so that no stand-in is one of the ASCII
    /// characters the patterns name literally (apostrophes, \r, \n, spaces).
    /// </summary>
    private static readonly char[] CategoryRepresentatives = FindCategoryRepresentatives();

    private static char[] FindCategoryRepresentatives()
    {
        var representatives = new char[Enum.GetValues<UnicodeCategory>().Length];
        Array.Fill(representatives, '\uFFFD');
        var found = new bool[representatives.Length];
        for (int c = 0x80; c <= 0xFFFF; c++)
        {
            if (c is >= 0xD800 and <= 0xDFFF)
                continue;
            int category = (int)CharUnicodeInfo.GetUnicodeCategory((char)c);
            if (!found[category])
            {
                (representatives[category], found[category]) = ((char)c, true);
            }
        }
        return representatives;
    }

    private List<(int Start, int Length)> SplitCodeUnits(string text)
    {
        var pieces = new List<(int Start, int Length)> { (0, text.Length) };
        foreach (Regex step in steps)
        {
            var next = new List<(int Start, int Length)>(pieces.Count * 2);
            foreach ((int start, int length) in pieces)
            {
                int position = start;
                // Match(text, start, length) treats the piece as the whole input, so look-arounds such as (?!\S) see
                // the piece's end as the end of text, as they do when Hugging Face splits a piece on its own.
                for (Match match = step.Match(text, start, length); match.Success; match = match.NextMatch())
                {
                    if (match.Length == 0)
                    {
                        continue;
                    }
                    if (match.Index > position)
                    {
                        next.Add((position, match.Index - position));
                    }
                    next.Add((match.Index, match.Length));
                    position = match.Index + match.Length;
                }
                if (position < start + length)
                {
                    next.Add((position, start + length - position));
                }
            }
            pieces = next;
        }
        return pieces;
    }
}
