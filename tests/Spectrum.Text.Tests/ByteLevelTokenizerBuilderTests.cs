// Tests of ByteLevelTokenizerBuilder: the files load in ModelTokenizer, round-trip, compress, and match the Python reference encoder.
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Spectrum.Text.Tests.TestSupport;

namespace Spectrum.Text.Tests;

public sealed class ByteLevelTokenizerBuilderTests : IDisposable
{
    private const int VocabularySize = 400;
    private readonly TempFolder _folder = new();
    private readonly Lazy<ModelTokenizer> _tokenizer;

    public ByteLevelTokenizerBuilderTests()
    {
        _tokenizer = new(() =>
        {
            ByteLevelTokenizerBuilder.Write(_folder.Path, Corpus, VocabularySize);
            return ModelTokenizer.Load(_folder.Path);
        });
    }

    public void Dispose() => _folder.Dispose();

    /// <summary>Repetitive English-like text with digits, punctuation, newlines and a few accented words.</summary>
    private static readonly string[] Corpus = Enumerable.Range(0, 120).Select(i =>
        $"The model {(i % 3 == 0 ? "learns" : "predicts")} the next token number {i * 37 % 1000}. " +
        $"Training data is stored as lines; café {i % 7} résumé.\n  indented line {i}").ToArray();

    [Fact]
    public void LoadsAsByteLevelBpeWithTheRequestedVocabularySizeAndNamedSpecialTokens()
    {
        ModelTokenizer tokenizer = _tokenizer.Value;

        Assert.Equal(TokenizerKind.ByteLevelBpe, tokenizer.Kind);
        Assert.Equal(VocabularySize, tokenizer.VocabSize);
        Assert.Empty(tokenizer.Warnings);
        Assert.Equal(tokenizer.TokenToId("<|endoftext|>"), tokenizer.BosId);
        Assert.Equal(tokenizer.TokenToId("<|im_end|>"), tokenizer.EosId);
        Assert.Equal(tokenizer.TokenToId("<|endoftext|>"), tokenizer.PadId);
        Assert.False(tokenizer.AddsBosToken);
        Assert.False(tokenizer.AddsEosToken);
        Assert.True(tokenizer.HasChatTemplate);
        // The specials take the last three ids, after the bytes and the merges.
        Assert.Equal([VocabularySize - 3, VocabularySize - 2, VocabularySize - 1],
            ByteLevelTokenizerBuilder.SpecialTokens.Select(t => tokenizer.TokenToId(t)!.Value));
    }

    [Fact]
    public void SpecialTokensInTextBecomeSingleIds()
    {
        ModelTokenizer tokenizer = _tokenizer.Value;
        int start = tokenizer.TokenToId("<|im_start|>")!.Value, end = tokenizer.TokenToId("<|im_end|>")!.Value;

        IReadOnlyList<int> ids = tokenizer.Encode("<|im_start|>user\nhi<|im_end|>", addSpecialTokens: true);

        Assert.Equal(start, ids[0]);
        Assert.Equal(end, ids[^1]);
        Assert.Equal(1, ids.Count(id => id == start));
        Assert.Equal("<|im_start|>user\nhi<|im_end|>", tokenizer.Decode(ids));
        Assert.Equal("user\nhi", tokenizer.Decode(ids, skipSpecialTokens: true));
    }

    [Property(MaxTest = 300)]
    public Property DecodeOfEncodeIsTheTextForAnyValidUnicode(NonNull<string> text) =>
        // Lone surrogates have no UTF-8 form (they become U+FFFD), so only well-formed UTF-16 can round-trip.
        Prop.When(IsWellFormed(text.Get), () =>
            Assert.Equal(text.Get, _tokenizer.Value.Decode(_tokenizer.Value.Encode(text.Get, addSpecialTokens: false))));

    [Fact]
    public void RoundTripsScriptsAndEmojiAbsentFromTheCorpus()
    {
        foreach (string text in new[] { "Ελληνικά и русский", "日本語のテキスト", "emoji 🦙🚀 ✓", "\t\r\n  \u0000x", "" })
        {
            Assert.Equal(text, _tokenizer.Value.Decode(_tokenizer.Value.Encode(text, addSpecialTokens: false)));
        }
    }

    [Fact]
    public void TheTrainingCorpusTakesFarFewerTokensThanBytes()
    {
        long bytes = Corpus.Sum(line => (long)Encoding.UTF8.GetByteCount(line));
        long tokens = Corpus.Sum(line => (long)_tokenizer.Value.Encode(line, addSpecialTokens: false).Count);

        Assert.True(tokens * 2 < bytes, $"{tokens} tokens for {bytes} bytes: the merges should at least halve the length");
    }

    [Fact]
    public void TheSameCorpusAndSizeWriteByteIdenticalFiles()
    {
        using var again = new TempFolder();
        _ = _tokenizer.Value;

        ByteLevelTokenizerBuilder.Write(again.Path, Corpus.ToList(), VocabularySize);

        foreach (string name in new[] { "tokenizer.json", "tokenizer_config.json" })
        {
            Assert.Equal(File.ReadAllBytes(_folder.File(name)), File.ReadAllBytes(again.File(name)));
        }
    }

    [Fact]
    public void MergesTheMostFrequentPairFirstAndBreaksTiesByTheSmallerPair()
    {
        // Pairs in "hello Ġhello Ġhello": (e,l), (l,l), (l,o) occur 3 times each, (Ġ,h) twice; (e,l) is smallest.
        using var folder = new TempFolder();
        ByteLevelTokenizerBuilder.Write(folder.Path, ["hello hello hello"], ByteLevelTokenizerBuilder.MinimumVocabularySize + 1);

        using JsonDocument json = JsonDocument.Parse(File.ReadAllBytes(folder.File("tokenizer.json")));
        JsonElement merges = json.RootElement.GetProperty("model").GetProperty("merges");
        Assert.Equal(1, merges.GetArrayLength());
        Assert.Equal(["e", "l"], merges[0].EnumerateArray().Select(part => part.GetString()!));
        ModelTokenizer tokenizer = ModelTokenizer.Load(folder.Path);
        Assert.Equal(256, tokenizer.TokenToId("el"));
        Assert.Equal([(int)'h', 256, (int)'l', (int)'o'], tokenizer.Encode("hello", addSpecialTokens: false));
    }

    [Fact]
    public void StopsEarlyWhenTheCorpusHasNoPairsLeft()
    {
        using var folder = new TempFolder();
        ByteLevelTokenizerBuilder.Write(folder.Path, ["ab ab"], 1000);

        // "ab" and "Ġab": merges (a,b) then (Ġ,ab), after which every word is one symbol.
        Assert.Equal(256 + 2 + 3, ModelTokenizer.Load(folder.Path).VocabSize);
    }

    [Fact]
    public void RefusesAVocabularyWithoutRoomForBytesAndSpecialTokens()
    {
        using var folder = new TempFolder();

        Assert.Throws<ArgumentOutOfRangeException>(() =>
            ByteLevelTokenizerBuilder.Write(folder.Path, ["text"], ByteLevelTokenizerBuilder.MinimumVocabularySize - 1));
    }

    [Fact]
    public void EncodesAsThePythonReferenceEncoderDoes()
    {
        ModelTokenizer tokenizer = _tokenizer.Value;
        // BMP-only strings: .NET's \p{L} does not match surrogate-pair letters, which Python's regex module does.
        string[] texts =
        [
            "The model learns the next token number 123.", "  leading and trailing spaces  ",
            "tabs\tand\nnew lines\r\n\r\nhere", "it's they're we've I'm you'll he'd", "café naïve résumé 2024",
            "Ελληνικά και русский текст", "emoji 🦙🚀 and ✓ marks", "<|im_start|>user\nhi<|im_end|>\n", "",
        ];
        string script = string.Join("\n",
            "import importlib.util, json, sys, types",
            "sys.modules['sentencepiece'] = types.ModuleType('sentencepiece')  # only the byte-level half is used",
            "spec = importlib.util.spec_from_file_location('ref', sys.argv[1]); ref = importlib.util.module_from_spec(spec)",
            "spec.loader.exec_module(ref)",
            "model = json.load(open(sys.argv[2], encoding='utf-8'))",
            "vocab = model['model']['vocab']",
            "ranks = {tuple(pair): rank for rank, pair in enumerate(model['model']['merges'])}",
            "specials = {t['content']: t['id'] for t in model['added_tokens']}",
            "texts = json.load(sys.stdin)",
            "print(json.dumps([ref.byte_level_encode(t, vocab, ranks, specials, ref.GPT2_REGEX.findall, False) for t in texts]))");
        string output = RunPython(script, texts, Path.Combine(Fixtures.RepositoryRoot, "tests", "reference", "make_tokenizer_fixtures.py"),
            _folder.File("tokenizer.json"));
        int[][] expected = JsonSerializer.Deserialize<int[][]>(output)!;

        for (int i = 0; i < texts.Length; i++)
        {
            Assert.Equal(expected[i], tokenizer.Encode(texts[i], addSpecialTokens: false));
        }
    }

    private static string RunPython(string script, string[] input, params string[] arguments)
    {
        var start = new ProcessStartInfo("/usr/bin/python3")
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true,
            StandardOutputEncoding = Encoding.UTF8, StandardInputEncoding = new UTF8Encoding(false),
        };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(script);
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        using Process python = Process.Start(start) ?? throw new InvalidOperationException("could not start /usr/bin/python3");
        python.StandardInput.Write(JsonSerializer.Serialize(input));
        python.StandardInput.Close();
        Task<string> error = python.StandardError.ReadToEndAsync();
        string output = python.StandardOutput.ReadToEnd();
        python.WaitForExit();
        Assert.True(python.ExitCode == 0,
            $"/usr/bin/python3 failed ({python.ExitCode}); it needs Debian's python3-regex: {error.Result}");
        return output;
    }

    /// <summary>False for strings with a lone surrogate: they have no UTF-8 form, so no tokenizer can round-trip them.</summary>
    private static bool IsWellFormed(string text)
    {
        try
        {
            new System.Text.UTF8Encoding(false, throwOnInvalidBytes: true).GetByteCount(text);
            return true;
        }
        catch (System.Text.EncoderFallbackException)
        {
            return false;
        }
    }
}
