// Hugging Face's pre-tokenizer pipeline (Sequence of Split/ByteLevel/Digits) as ordered regex splits of the text.
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
