// Each way a tokenizer folder can be unusable, built from a fixture with one thing broken, and the place it names.
using System.Text.Json.Nodes;
using Spectrum.Text.Tests.TestSupport;

namespace Spectrum.Text.Tests;

public sealed class TokenizerLoadErrorTests : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    private string TokenizerJson => _folder.File("tokenizer.json");

    private string ConfigJson => _folder.File("tokenizer_config.json");

    /// <summary>Copies the byte-level fixture and lets the test change its tokenizer.json.</summary>
    private void EditByteLevelTokenizerJson(Action<JsonNode> edit)
    {
        _folder.CopyFixture(Fixtures.ByteLevelBpe);
        JsonNode root = JsonNode.Parse(File.ReadAllText(TokenizerJson))!;
        edit(root);
        _folder.WriteText("tokenizer.json", root.ToJsonString());
    }

    [Fact]
    public void MissingFolder()
    {
        string missing = _folder.File("no-such-model");

        var error = Rejection.Assert(() => ModelTokenizer.Load(missing), missing, null, null);

        Assert.Contains("no such folder", error.Message);
    }

    [Fact]
    public void FolderWithoutTokenizerFilesListsWhatItHas()
    {
        _folder.WriteText("config.json", "{}");
        _folder.WriteText("model.safetensors", "");

        var error = Rejection.Assert(() => ModelTokenizer.Load(_folder.Path), _folder.Path, null, null);

        Assert.Contains("tokenizer.json or tokenizer.model", error.Message);
        Assert.Contains("config.json, model.safetensors", error.Message);
    }

    [Fact]
    public void TokenizerJsonSyntaxErrorNamesTheLine()
    {
        _folder.WriteText("tokenizer.json", "{\n  \"version\": \"1.0\",\n  \"model\": {,\n}");

        var error = Rejection.Assert(() => ModelTokenizer.Load(_folder.Path), TokenizerJson, 3, null);

        Assert.Contains("well-formed JSON", error.Message);
    }

    [Fact]
    public void UnsupportedPreTokenizerStep()
    {
        EditByteLevelTokenizerJson(root => root["pre_tokenizer"]!["pretokenizers"]![0] = new JsonObject { ["type"] = "Whitespace" });

        var error = Rejection.Assert(() => ModelTokenizer.Load(_folder.Path), TokenizerJson, null, "pre_tokenizer.pretokenizers[0].type");

        Assert.Contains("\"Whitespace\"", error.Message);
    }

    [Fact]
    public void SplitThatRemovesMatches()
    {
        EditByteLevelTokenizerJson(root => root["pre_tokenizer"]!["pretokenizers"]![0]!["behavior"] = "Removed");

        Rejection.Assert(() => ModelTokenizer.Load(_folder.Path), TokenizerJson, null, "pre_tokenizer.pretokenizers[0].behavior");
    }

    [Fact]
    public void ByteLevelAddingAPrefixSpace()
    {
        EditByteLevelTokenizerJson(root => root["pre_tokenizer"]!["pretokenizers"]![1]!["add_prefix_space"] = true);

        Rejection.Assert(() => ModelTokenizer.Load(_folder.Path), TokenizerJson, null, "pre_tokenizer.pretokenizers[1].add_prefix_space");
    }

    [Fact]
    public void SplitPatternDotNetCannotCompile()
    {
        // Possessive quantifiers (as in o200k's pattern) are Oniguruma syntax .NET lacks.
        EditByteLevelTokenizerJson(root => root["pre_tokenizer"]!["pretokenizers"]![0]!["pattern"]!["Regex"] = @"\p{L}++");

        var error = Rejection.Assert(() => ModelTokenizer.Load(_folder.Path), TokenizerJson, null,
            "pre_tokenizer.pretokenizers[0].pattern.Regex");

        Assert.Contains(@"\\p{L}++", error.Message);
    }

    [Fact]
    public void MergeOfTokensNotInTheVocabulary()
    {
        EditByteLevelTokenizerJson(root => root["model"]!["merges"]!.AsArray().Add("zq qz"));

        var error = Rejection.Assert(() => ModelTokenizer.Load(_folder.Path), TokenizerJson, null, "model");

        Assert.Contains("zq", error.Message);
    }

    [Fact]
    public void MergeWithoutASeparatingSpace()
    {
        int index = 0;
        EditByteLevelTokenizerJson(root =>
        {
            JsonArray merges = root["model"]!["merges"]!.AsArray();
            index = merges.Count;
            merges.Add("abc");
        });

        Rejection.Assert(() => ModelTokenizer.Load(_folder.Path), TokenizerJson, null, $"model.merges[{index}]");
    }

    [Fact]
    public void ModelThatIsNotBpe()
    {
        EditByteLevelTokenizerJson(root => root["model"]!["type"] = "WordPiece");

        Rejection.Assert(() => ModelTokenizer.Load(_folder.Path), TokenizerJson, null, "model.type");
    }

    [Fact]
    public void UnsupportedNormalizer()
    {
        EditByteLevelTokenizerJson(root => root["normalizer"] = new JsonObject { ["type"] = "Lowercase" });

        Rejection.Assert(() => ModelTokenizer.Load(_folder.Path), TokenizerJson, null, "normalizer.type");
    }

    [Fact]
    public void SentencePieceStyleTokenizerJsonWithoutTokenizerModel()
    {
        EditByteLevelTokenizerJson(root => root["pre_tokenizer"] = new JsonObject
        {
            ["type"] = "Metaspace", ["replacement"] = "▁", ["prepend_scheme"] = "first",
        });

        var error = Rejection.Assert(() => ModelTokenizer.Load(_folder.Path), TokenizerJson, null, "pre_tokenizer");

        Assert.Contains("tokenizer.model", error.Message);
    }

    [Fact]
    public void SentencePieceStyleTokenizerJsonBesideTokenizerModelUsesTheModel()
    {
        _folder.CopyFixture(Fixtures.SentencePieceBpe);
        _folder.WriteText("tokenizer.json",
            "{\"added_tokens\": [{\"id\": 422, \"content\": \"<tool>\", \"special\": true}], \"pre_tokenizer\": null, \"model\": {\"type\": \"BPE\"}}");

        ModelTokenizer tokenizer = ModelTokenizer.Load(_folder.Path);

        Assert.Equal(TokenizerKind.SentencePiece, tokenizer.Kind);
        Assert.Equal([422], tokenizer.Encode("<tool>", addSpecialTokens: false));
        Assert.Equal(423, tokenizer.VocabSize);
    }

    [Fact]
    public void BosTokenTheTokenizerDoesNotHave()
    {
        _folder.CopyFixture(Fixtures.ByteLevelBpe);
        JsonNode config = JsonNode.Parse(File.ReadAllText(ConfigJson))!;
        config["bos_token"] = "<|no_such_token|>";
        _folder.WriteText("tokenizer_config.json", config.ToJsonString());

        var error = Rejection.Assert(() => ModelTokenizer.Load(_folder.Path), ConfigJson, null, "bos_token");

        Assert.Contains("<|no_such_token|>", error.Message);
    }

    [Fact]
    public void ConfigGivingAnAddedTokenAnotherId()
    {
        _folder.CopyFixture(Fixtures.ByteLevelBpe);
        JsonNode config = JsonNode.Parse(File.ReadAllText(ConfigJson))!;
        config["added_tokens_decoder"]!.AsObject().Add("7", new JsonObject { ["content"] = "<|im_end|>", ["special"] = true });
        _folder.WriteText("tokenizer_config.json", config.ToJsonString());

        var error = Rejection.Assert(() => ModelTokenizer.Load(_folder.Path), ConfigJson, null, "added token \"<|im_end|>\"");

        Assert.Contains("id 580", error.Message);
        Assert.Contains("id 7", error.Message);
    }

    [Fact]
    public void ConfigFieldOfTheWrongKind()
    {
        _folder.CopyFixture(Fixtures.SentencePieceBpe);
        string config = File.ReadAllText(ConfigJson);
        _folder.WriteText("tokenizer_config.json", config.Replace("\"add_bos_token\": true", "\"add_bos_token\": \"yes\""));

        var error = Rejection.Assert(() => ModelTokenizer.Load(_folder.Path), ConfigJson, null, "add_bos_token");

        Assert.Contains("true or false", error.Message);
    }

    [Fact]
    public void TokenizerModelThatIsNotSentencePiece()
    {
        string model = _folder.WriteBytes("tokenizer.model", "this is not a protobuf"u8.ToArray());

        Rejection.Assert(() => ModelTokenizer.Load(_folder.Path), model, null, null);
    }

    [Fact]
    public void UnigramWithByteFallbackIsRefusedRatherThanMisencoded()
    {
        string folder = Fixtures.Folder(Fixtures.SentencePieceUnigramByteFallback);

        var error = Rejection.Assert(() => ModelTokenizer.Load(folder), Path.Combine(folder, "tokenizer.model"), null,
            "trainer_spec.byte_fallback");

        Assert.Contains("shifts by 255", error.Message);
    }
}
