// Differential tests against Hugging Face's own tokenizers library: generated hard strings encode to the same ids, and id lists decode to the same text, for every byte-level tokenizer we load or write.
using System.Text;
using Spectrum.Text.Tests.TestSupport;

namespace Spectrum.Text.Tests;

public sealed class HuggingFaceTokenizersTests
{
    private const int TextsPerTokenizer = 400;
    private const int RandomIdListsPerTokenizer = 200;
    private const string DemoTokenizer = "demo tokenizer (ByteLevelTokenizerBuilder)";

    /// <summary>
    /// Pieces that stress a byte-level BPE's pre-tokenizer, byte mapping and added-token splitting: contractions in both
    /// cases, digit runs, every kind of whitespace, punctuation runs, scripts without spaces, combining marks,
    /// emoji with modifiers and joiners, letters and digits outside the BMP, and special tokens (whole, adjacent, and
    /// cut short).
    /// </summary>
    private static readonly string[] Pieces =
    [
        "the", "The", "THE", "model", "learns", "token", "café", "naïve", "Straße", "ÆØÅ",
        "'s", "'S", "'t", "'re", "'VE", "'m", "'ll", "'d", "n't", "'", "''",
        "0", "7", "42", "123", "2024", "1234567", "3.14", "-12", "1,000",
        " ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n ", "\u00A0", "\u3000", "\u2009", "\v", "\f",
        ".", ",", "!?", "...", "--", "()", "[]", "{}", "<>", "\"", "`", "~", "@#", "$%", "^&*", "+=", "/", "\\", "|", "_",
        "αβγ", "привет", "中文字", "ひらがな", "한국어", "مرحبا", "नमस्ते", "ภาษาไทย", "עברית",
        "e\u0301", "\u200B", "\u200D", "\uFEFF", "\u00AD",
        "🙂", "👍🏽", "👨‍👩‍👧", "🇫🇷", "∑", "≤", "€", "ℕ", "\u0085", "\u2028", "\u1680", "\u202F",
        // Outside the BMP: letters (CJK Extension B, mathematical, Deseret with case, cuneiform) and decimal digits,
        // which .NET's Regex sees as two surrogates each.
        "𝔸", "𠀀𠀁", "𝒜𝒷", "𐐷𐐏", "𒀀", "𝟎𝟏𝟐𝟑", "x𝟗9",
        "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|begin_of_text|>", "<|end_of_text|>",
        "<|im_", "|>", "<|", "<|im_end|><|im_start|>",
        "assistant\n", "user\n", "system\n",
    ];

    public static TheoryData<string> Tokenizers() =>
        [Fixtures.ByteLevelBpe, Fixtures.ByteLevelBpeDigits, DemoTokenizer];

    [HuggingFaceTokenizersTheory]
    [MemberData(nameof(Tokenizers))]
    public void GeneratedTextsEncodeToTheSameIdsWithAndWithoutSpecialTokens(string name)
    {
        using var demoFolder = new TempFolder();
        (string folder, ModelTokenizer tokenizer) = Load(name, demoFolder);
        string[] texts = GenerateTexts(seed: name.Length, TextsPerTokenizer);

        foreach (bool addSpecialTokens in new[] { false, true })
        {
            HuggingFaceTokenizerResult reference = HuggingFaceTokenizers.Run(folder, texts, addSpecialTokens, []);

            for (int i = 0; i < texts.Length; i++)
            {
                int[] ours = tokenizer.Encode(texts[i], addSpecialTokens).ToArray();
                Assert.True(reference.Encoded[i].SequenceEqual(ours),
                    $"{name}, add_special_tokens={addSpecialTokens}, text {Escape(texts[i])}:\n" +
                    $"  Hugging Face {string.Join(' ', reference.Encoded[i])}\n  ours         {string.Join(' ', ours)}");
            }
        }
    }

    [HuggingFaceTokenizersTheory]
    [InlineData(Fixtures.ByteLevelBpe)]
    [InlineData(Fixtures.ByteLevelBpeDigits)]
    public void TheCommittedReferenceIdsAreHuggingFacesIds(string folder)
    {
        // Checks the plain Python encoder in make_tokenizer_fixtures.py, which the fixtures' ids come from, against
        // the library itself.
        ReferenceCase[] cases = Fixtures.Cases(folder);

        HuggingFaceTokenizerResult reference = HuggingFaceTokenizers.Run(Fixtures.Folder(folder), cases.Select(c => c.Text).ToArray(),
            addSpecialTokens: false, cases.Select(c => (IReadOnlyList<int>)c.Ids).ToArray());

        for (int i = 0; i < cases.Length; i++)
        {
            Assert.Equal(cases[i].Ids, reference.Encoded[i]);
            Assert.Equal(cases[i].Decoded, reference.Decoded[i]);
        }
    }

    [HuggingFaceTokenizersTheory]
    [MemberData(nameof(Tokenizers))]
    public void IdListsDecodeToTheSameText(string name)
    {
        using var demoFolder = new TempFolder();
        (string folder, ModelTokenizer tokenizer) = Load(name, demoFolder);
        // Encoded texts round-trip; random id lists also cut multi-byte characters apart, which both must replace alike.
        string[] texts = GenerateTexts(seed: 100 + name.Length, 100);
        var random = new Random(200 + name.Length);
        List<IReadOnlyList<int>> idLists = texts.Select(t => (IReadOnlyList<int>)tokenizer.Encode(t, addSpecialTokens: false).ToArray()).ToList();
        for (int i = 0; i < RandomIdListsPerTokenizer; i++)
        {
            idLists.Add(Enumerable.Range(0, random.Next(1, 12)).Select(_ => random.Next(tokenizer.VocabSize)).ToArray());
        }

        HuggingFaceTokenizerResult reference = HuggingFaceTokenizers.Run(folder, [], addSpecialTokens: false, idLists);

        Assert.Equal(reference.VocabSize, tokenizer.VocabSize);
        for (int i = 0; i < idLists.Count; i++)
        {
            string ours = tokenizer.Decode(idLists[i]);
            Assert.True(reference.Decoded[i] == ours,
                $"{name}, ids {string.Join(' ', idLists[i])}:\n  Hugging Face {Escape(reference.Decoded[i])}\n  ours         {Escape(ours)}");
        }
    }

    private static (string Folder, ModelTokenizer Tokenizer) Load(string name, TempFolder demoFolder)
    {
        if (name != DemoTokenizer)
            return (Fixtures.Folder(name), Fixtures.Tokenizer(name));
        // The demo trains its tokenizer on chat-rendered synthetic tasks; this is the same construction, smaller.
        var examples = SyntheticCorpus.GenerateMixed(Enum.GetValues<SyntheticTask>(), 300, seed: 5);
        var texts = examples.Select((e, i) => ChatTemplate.ChatMl.RenderText(ChatTemplate.ToMessages(e.ToRecord("corpus.jsonl", i + 1))));
        ByteLevelTokenizerBuilder.Write(demoFolder.Path, texts, vocabularySize: 600);
        return (demoFolder.Path, ModelTokenizer.Load(demoFolder.Path));
    }

    private static string[] GenerateTexts(int seed, int count)
    {
        var random = new Random(seed);
        var texts = new string[count];
        var text = new StringBuilder();
        for (int i = 0; i < count; i++)
        {
            text.Clear();
            int pieces = random.Next(1, 14);
            for (int p = 0; p < pieces; p++)
            {
                text.Append(Pieces[random.Next(Pieces.Length)]);
                if (random.Next(3) == 0)
                    text.Append(' ');
            }
            texts[i] = text.ToString();
        }
        return texts;
    }

    private static string Escape(string text) =>
        "\"" + string.Concat(text.Select(c => c < ' ' || c is '\u00A0' or '\u200B' or '\u200D' or '\uFEFF' or '\u00AD' or '\u2009' or '\u3000'
            ? $"\\u{(int)c:X4}" : c.ToString())) + "\"";
}
