// Paths to the committed tokenizer fixtures and the reference ids that tests/reference/make_tokenizer_fixtures.py wrote.
using System.Reflection;
using System.Text.Json;

namespace Spectrum.Text.Tests.TestSupport;

internal sealed record ReferenceCase(string Text, int[] Ids, string Decoded);

internal static class Fixtures
{
    public const string SentencePieceBpe = "sentencepiece-bpe";
    public const string SentencePieceUnigram = "sentencepiece-unigram";
    public const string SentencePieceUnigramByteFallback = "sentencepiece-unigram-byte-fallback";
    public const string ByteLevelBpe = "byte-level-bpe";
    public const string ByteLevelBpeDigits = "byte-level-bpe-digits";

    public static string RepositoryRoot { get; } = typeof(Fixtures).Assembly
        .GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "RepositoryRoot").Value!;

    public static string TokenizersFolder { get; } = Path.Combine(RepositoryRoot, "tests", "reference", "fixtures", "tokenizers");

    public static string Folder(string name) => Path.Combine(TokenizersFolder, name);

    private static readonly Lazy<Dictionary<string, ReferenceCase[]>> Expected = new(() =>
    {
        using JsonDocument document = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(TokenizersFolder, "expected_ids.json")));
        return document.RootElement.EnumerateObject().ToDictionary(
            folder => folder.Name,
            folder => folder.Value.EnumerateArray().Select(c => new ReferenceCase(
                c.GetProperty("text").GetString()!,
                c.GetProperty("ids").EnumerateArray().Select(id => id.GetInt32()).ToArray(),
                c.GetProperty("decoded").GetString()!)).ToArray());
    });

    public static ReferenceCase[] Cases(string folder) => Expected.Value[folder];

    private static readonly Dictionary<string, ModelTokenizer> Loaded = [];

    /// <summary>Tokenizers are immutable once loaded, so tests share one per fixture folder.</summary>
    public static ModelTokenizer Tokenizer(string folder)
    {
        lock (Loaded)
        {
            if (!Loaded.TryGetValue(folder, out ModelTokenizer? tokenizer))
            {
                tokenizer = ModelTokenizer.Load(Folder(folder));
                Loaded[folder] = tokenizer;
            }
            return tokenizer;
        }
    }
}
