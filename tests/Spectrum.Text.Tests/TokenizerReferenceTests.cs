// Ids and decoded text of every fixture tokenizer against the independent Python references (Google's SentencePiece,
// and the plain byte-level BPE encoder in make_tokenizer_fixtures.py).
using Spectrum.Text.Tests.TestSupport;

namespace Spectrum.Text.Tests;

public sealed class TokenizerReferenceTests
{
    private static readonly string[] ReferencedFolders =
        [Fixtures.SentencePieceBpe, Fixtures.SentencePieceUnigram, Fixtures.ByteLevelBpe, Fixtures.ByteLevelBpeDigits];

    public static TheoryData<string, int> EncodeCases()
    {
        var data = new TheoryData<string, int>();
        foreach (string folder in ReferencedFolders)
        {
            for (int i = 0; i < Fixtures.Cases(folder).Length; i++)
            {
                data.Add(folder, i);
            }
        }
        return data;
    }

    /// <summary>
    /// Cases whose ids contain no unknown token: SentencePiece renders &lt;unk&gt; as " ⁇ " where Hugging Face (and
    /// we) write "&lt;unk&gt;", so unknown characters cannot round-trip either way.
    /// </summary>
    public static TheoryData<string, int> DecodeCases()
    {
        var data = new TheoryData<string, int>();
        foreach (string folder in ReferencedFolders)
        {
            int? unknownId = Fixtures.Tokenizer(folder).TokenToId("<unk>");
            for (int i = 0; i < Fixtures.Cases(folder).Length; i++)
            {
                if (unknownId is null || !Fixtures.Cases(folder)[i].Ids.Contains(unknownId.Value))
                {
                    data.Add(folder, i);
                }
            }
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(EncodeCases))]
    public void EncodesLikeTheReference(string folder, int caseIndex)
    {
        ReferenceCase reference = Fixtures.Cases(folder)[caseIndex];

        IReadOnlyList<int> ids = Fixtures.Tokenizer(folder).Encode(reference.Text, addSpecialTokens: false);

        Assert.Equal(reference.Ids, ids);
    }

    [Theory]
    [MemberData(nameof(DecodeCases))]
    public void DecodesLikeTheReferenceAndRoundTrips(string folder, int caseIndex)
    {
        ReferenceCase reference = Fixtures.Cases(folder)[caseIndex];

        string decoded = Fixtures.Tokenizer(folder).Decode(reference.Ids);

        Assert.Equal(reference.Decoded, decoded);
        Assert.Equal(reference.Text, decoded);
    }

    [Fact]
    public void EveryReferencedFixtureHasCasesWithSpecialTokensDigitsAndUnicode()
    {
        // Guards the fixture itself: the cases above only mean something if the hard inputs are in them.
        foreach (string folder in ReferencedFolders)
        {
            string[] texts = Fixtures.Cases(folder).Select(c => c.Text).ToArray();
            Assert.Contains(texts, t => t.Contains("<|im_end|>"));
            Assert.Contains(texts, t => t.Any(char.IsDigit));
            Assert.Contains(texts, t => t.Any(c => c > 0x7F));
            Assert.Contains(texts, t => t.Contains("   "));
        }
    }

    [Fact]
    public void SentencePieceByteFallbackIdsAreTheModelsBytePieces()
    {
        ModelTokenizer tokenizer = Fixtures.Tokenizer(Fixtures.SentencePieceBpe);

        IReadOnlyList<int> ids = tokenizer.Encode("🦙", addSpecialTokens: false);

        // U+1F999 is F0 9F A6 99 in UTF-8; the corpus never saw it, so each byte is its own <0xNN> piece.
        Assert.Equal(new[] { "<0xF0>", "<0x9F>", "<0xA6>", "<0x99>" }.Select(p => tokenizer.TokenToId(p)), ids.TakeLast(4).Cast<int?>());
    }

    [Fact]
    public void UnigramWithoutByteFallbackEncodesUnseenCharactersAsUnknown()
    {
        ModelTokenizer tokenizer = Fixtures.Tokenizer(Fixtures.SentencePieceUnigram);

        IReadOnlyList<int> ids = tokenizer.Encode("Ω", addSpecialTokens: false);

        Assert.Contains(tokenizer.TokenToId("<unk>")!.Value, ids);
        Assert.Contains("<unk>", tokenizer.Decode(ids));
    }

    [Fact]
    public void IgnoreMergesEmitsAWholeWordThatMergesWouldNotRebuild()
    {
        // " xylophone" is a vocabulary entry no merge produces (as in vocabularies converted from tiktoken).
        ModelTokenizer withIgnoreMerges = Fixtures.Tokenizer(Fixtures.ByteLevelBpe);
        ModelTokenizer withoutIgnoreMerges = Fixtures.Tokenizer(Fixtures.ByteLevelBpeDigits);
        int wholeWord = withIgnoreMerges.TokenToId("Ġxylophone")!.Value;

        Assert.Equal([wholeWord], withIgnoreMerges.Encode(" xylophone", addSpecialTokens: false));
        Assert.DoesNotContain(wholeWord, withoutIgnoreMerges.Encode(" xylophone", addSpecialTokens: false));
    }
}
