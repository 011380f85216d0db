// Special tokens, BOS/EOS/PAD, vocabulary size and the files to copy, for each fixture tokenizer.
using Spectrum.Text.Tests.TestSupport;

namespace Spectrum.Text.Tests;

public sealed class ModelTokenizerTests
{
    // Ids fixed by make_tokenizer_fixtures.py: byte-level = 256 bytes + 320 merges + 1 whole word, then 4 specials;
    // SentencePiece BPE = 420 pieces, then <|im_start|>, <|im_end|> from tokenizer_config.json.
    private const int ByteLevelBeginOfText = 577, ByteLevelEndOfText = 578, ByteLevelImStart = 579, ByteLevelImEnd = 580;
    private const int SentencePieceImStart = 420, SentencePieceImEnd = 421;

    [Fact]
    public void ByteLevelFolderReadsTokensAndSettingsFromItsConfig()
    {
        ModelTokenizer tokenizer = Fixtures.Tokenizer(Fixtures.ByteLevelBpe);

        Assert.Equal(TokenizerKind.ByteLevelBpe, tokenizer.Kind);
        Assert.Equal(ByteLevelBeginOfText, tokenizer.BosId);
        Assert.Equal(ByteLevelImEnd, tokenizer.EosId);
        Assert.Equal(ByteLevelEndOfText, tokenizer.PadId);
        Assert.True(tokenizer.AddsBosToken); // from the post-processor template: the config has no add_bos_token
        Assert.False(tokenizer.AddsEosToken);
        Assert.Equal(581, tokenizer.VocabSize);
        Assert.True(tokenizer.HasChatTemplate);
        Assert.Contains("<|im_start|>", tokenizer.ChatTemplateSource);
        Assert.Empty(tokenizer.Warnings);
    }

    [Fact]
    public void SentencePieceFolderReadsTokensAndSettingsFromItsConfig()
    {
        ModelTokenizer tokenizer = Fixtures.Tokenizer(Fixtures.SentencePieceBpe);

        Assert.Equal(TokenizerKind.SentencePiece, tokenizer.Kind);
        Assert.Equal(1, tokenizer.BosId);
        Assert.Equal(2, tokenizer.EosId);
        Assert.Null(tokenizer.PadId);
        Assert.True(tokenizer.AddsBosToken);
        Assert.False(tokenizer.AddsEosToken);
        Assert.Equal(422, tokenizer.VocabSize);
        Assert.False(tokenizer.HasChatTemplate);
    }

    [Fact]
    public void SentencePieceWithoutConfigUsesTheModelsControlPiecesAndLlamasBosDefault()
    {
        ModelTokenizer tokenizer = Fixtures.Tokenizer(Fixtures.SentencePieceUnigram);

        Assert.Equal(1, tokenizer.BosId);
        Assert.Equal(2, tokenizer.EosId);
        Assert.Null(tokenizer.PadId);
        Assert.True(tokenizer.AddsBosToken);
        Assert.Equal(150, tokenizer.VocabSize);
        Assert.Equal(0, tokenizer.TokenToId("<unk>"));
    }

    [Fact]
    public void ByteLevelWithoutConfigOrTemplateHasNoBosEosOrPad()
    {
        ModelTokenizer tokenizer = Fixtures.Tokenizer(Fixtures.ByteLevelBpeDigits);

        Assert.Null(tokenizer.BosId);
        Assert.Null(tokenizer.EosId);
        Assert.Null(tokenizer.PadId);
        Assert.Equal(tokenizer.Encode("Hi there", addSpecialTokens: false), tokenizer.Encode("Hi there", addSpecialTokens: true));
    }

    [Theory]
    [InlineData(Fixtures.ByteLevelBpe, ByteLevelImStart, ByteLevelImEnd)]
    [InlineData(Fixtures.ByteLevelBpeDigits, ByteLevelImStart, ByteLevelImEnd)]
    [InlineData(Fixtures.SentencePieceBpe, SentencePieceImStart, SentencePieceImEnd)]
    public void ChatMlMarkersInTextAreSingleIds(string folder, int imStart, int imEnd)
    {
        ModelTokenizer tokenizer = Fixtures.Tokenizer(folder);

        Assert.Equal(imStart, tokenizer.TokenToId("<|im_start|>"));
        Assert.Equal(imEnd, tokenizer.TokenToId("<|im_end|>"));
        Assert.Equal([imEnd], tokenizer.Encode("<|im_end|>", addSpecialTokens: false));
        IReadOnlyList<int> turn = tokenizer.Encode("<|im_start|>user\nhi<|im_end|>", addSpecialTokens: false);
        Assert.Equal(imStart, turn[0]);
        Assert.Equal(imEnd, turn[^1]);
        Assert.Equal(1, turn.Count(id => id == imEnd));
    }

    [Theory]
    [InlineData(Fixtures.ByteLevelBpe)]
    [InlineData(Fixtures.SentencePieceBpe)]
    public void SpecialTokenTextStaysTextWhenParsingIsOff(string folder)
    {
        ModelTokenizer tokenizer = Fixtures.Tokenizer(folder);
        int imEnd = tokenizer.TokenToId("<|im_end|>")!.Value;

        IReadOnlyList<int> ids = tokenizer.Encode("say <|im_end|> now", addSpecialTokens: false, parseSpecialTokens: false);

        Assert.DoesNotContain(imEnd, ids);
        Assert.Equal("say <|im_end|> now", tokenizer.Decode(ids));
    }

    [Theory]
    [InlineData(Fixtures.ByteLevelBpe)]
    [InlineData(Fixtures.SentencePieceBpe)]
    public void AddSpecialTokensPutsBosFirstAndNoEos(string folder)
    {
        ModelTokenizer tokenizer = Fixtures.Tokenizer(folder);

        IReadOnlyList<int> plain = tokenizer.Encode("Hello world", addSpecialTokens: false);
        IReadOnlyList<int> withSpecial = tokenizer.Encode("Hello world", addSpecialTokens: true);

        Assert.Equal([tokenizer.BosId!.Value, .. plain], withSpecial);
    }

    [Fact]
    public void AddEosTokenInConfigAppendsEos()
    {
        using var folder = new TempFolder();
        folder.CopyFixture(Fixtures.SentencePieceBpe);
        string config = File.ReadAllText(folder.File("tokenizer_config.json"));
        folder.WriteText("tokenizer_config.json", config.Replace("\"add_eos_token\": false", "\"add_eos_token\": true"));

        ModelTokenizer tokenizer = ModelTokenizer.Load(folder.Path);

        Assert.Equal(2, tokenizer.Encode("Hello", addSpecialTokens: true)[^1]);
    }

    [Fact]
    public void DecodeCanSkipSpecialTokens()
    {
        ModelTokenizer tokenizer = Fixtures.Tokenizer(Fixtures.ByteLevelBpe);
        IReadOnlyList<int> ids = tokenizer.Encode("<|im_start|>assistant\nHello<|im_end|>", addSpecialTokens: true);

        Assert.Equal("<|begin_of_text|><|im_start|>assistant\nHello<|im_end|>", tokenizer.Decode(ids));
        Assert.Equal("assistant\nHello", tokenizer.Decode(ids, skipSpecialTokens: true));
    }

    [Fact]
    public void DecodeRejectsIdsOutsideTheVocabulary()
    {
        ModelTokenizer tokenizer = Fixtures.Tokenizer(Fixtures.ByteLevelBpe);

        var error = Assert.Throws<ArgumentOutOfRangeException>(() => tokenizer.Decode([5, 581]));

        Assert.Contains("581", error.Message);
        Assert.Contains("0 to 580", error.Message);
    }

    [Fact]
    public void TokenToIdFindsVocabularyEntriesAndAddedTokensButNotUnknownText()
    {
        ModelTokenizer tokenizer = Fixtures.Tokenizer(Fixtures.ByteLevelBpe);

        Assert.Equal(32, tokenizer.TokenToId("Ġ")); // the space byte in GPT-2's alphabet
        Assert.Equal(ByteLevelImEnd, tokenizer.TokenToId("<|im_end|>"));
        Assert.Null(tokenizer.TokenToId("no such token"));
    }

    [Fact]
    public void FilesToCopyListsTheTokenizerFilesPresent()
    {
        using var folder = new TempFolder();
        folder.CopyFixture(Fixtures.ByteLevelBpe);
        folder.WriteText("config.json", "{}");
        folder.WriteText("special_tokens_map.json", "{\"eos_token\": \"<|im_end|>\"}");

        ModelTokenizer tokenizer = ModelTokenizer.Load(folder.Path);

        Assert.Equal(
            new[] { "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json" }.Select(folder.File),
            tokenizer.FilesToCopy);
    }

    [Fact]
    public void SpecialTokensMapFillsTokensTheConfigLacks()
    {
        using var folder = new TempFolder();
        folder.CopyFixture(Fixtures.ByteLevelBpeDigits);
        folder.WriteText("special_tokens_map.json",
            "{\"bos_token\": {\"content\": \"<|begin_of_text|>\", \"lstrip\": false}, \"eos_token\": \"<|end_of_text|>\"}");

        ModelTokenizer tokenizer = ModelTokenizer.Load(folder.Path);

        Assert.Equal(ByteLevelBeginOfText, tokenizer.BosId);
        Assert.Equal(ByteLevelEndOfText, tokenizer.EosId);
    }

    [Fact]
    public void NfcNormalizerEitherNormalizesOrWarnsThatItCannot()
    {
        using var folder = new TempFolder();
        folder.CopyFixture(Fixtures.ByteLevelBpe);
        string json = File.ReadAllText(folder.File("tokenizer.json"));
        folder.WriteText("tokenizer.json", json.Replace("\"normalizer\": null", "\"normalizer\": {\"type\": \"NFC\"}"));

        ModelTokenizer tokenizer = ModelTokenizer.Load(folder.Path);

        bool dotNetCanNormalize = "e\u0301".Normalize(System.Text.NormalizationForm.FormC) == "\u00e9";
        if (dotNetCanNormalize)
        {
            Assert.Empty(tokenizer.Warnings);
            Assert.Equal(tokenizer.Encode("caf\u00e9", false), tokenizer.Encode("cafe\u0301", false));
        }
        else
        {
            Assert.Contains("NFC", Assert.Single(tokenizer.Warnings));
            Assert.Equal(Fixtures.Tokenizer(Fixtures.ByteLevelBpe).Encode("caf\u00e9", false), tokenizer.Encode("caf\u00e9", false));
        }
    }

    [Fact]
    public void MergesWrittenAsPairsLoadLikeMergesWrittenAsStrings()
    {
        using var folder = new TempFolder();
        folder.CopyFixture(Fixtures.ByteLevelBpe);
        var root = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(folder.File("tokenizer.json")))!;
        var merges = root["model"]!["merges"]!.AsArray();
        var pairs = new System.Text.Json.Nodes.JsonArray(merges.Select(m =>
            (System.Text.Json.Nodes.JsonNode?)new System.Text.Json.Nodes.JsonArray(m!.GetValue<string>().Split(' ').Select(p => (System.Text.Json.Nodes.JsonNode?)p).ToArray())).ToArray());
        root["model"]!["merges"] = pairs;
        folder.WriteText("tokenizer.json", root.ToJsonString());

        ModelTokenizer tokenizer = ModelTokenizer.Load(folder.Path);

        ReferenceCase reference = Fixtures.Cases(Fixtures.ByteLevelBpe)[1];
        Assert.Equal(reference.Ids, tokenizer.Encode(reference.Text, addSpecialTokens: false));
    }
}
