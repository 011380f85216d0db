// Runs Hugging Face's own tokenizers library (tests/reference/hf-tokenizers, the Rust core of transformers' fast tokenizers) for differential tests; skips visibly where it is not installed.
using System.Text.Json;
using System.Text.Json.Nodes;
using Spectrum.Tests.Shared;

namespace Spectrum.Text.Tests.TestSupport;

internal sealed record HuggingFaceTokenizerResult(int[][] Encoded, string[] Decoded, int VocabSize);

internal static class HuggingFaceTokenizers
{
    private static string ReferenceFolder { get; } = Path.Combine(Fixtures.RepositoryRoot, "tests", "reference", "hf-tokenizers");

    /// <summary>Null when node and the pinned tokenizers package are installed (CI runs npm ci there), else why not.</summary>
    public static string? Unavailable { get; } = FindWhyUnavailable();

    private static string? FindWhyUnavailable()
    {
        if (!Directory.Exists(Path.Combine(ReferenceFolder, "node_modules", "tokenizers")))
            return $"Hugging Face tokenizers is not installed: run `npm ci` in {ReferenceFolder}, as .ci/run does";
        try
        {
            var (exitCode, output) = Run(["--version"]);
            return exitCode == 0 ? null : $"node --version failed: {output}";
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or IOException)
        {
            return $"node cannot be started: {e.Message}";
        }
    }

    /// <summary>Encodes <paramref name="texts"/> and decodes <paramref name="idLists"/> with the tokenizer files in <paramref name="folder"/>.</summary>
    public static HuggingFaceTokenizerResult Run(string folder, IReadOnlyList<string> texts, bool addSpecialTokens,
        IReadOnlyList<IReadOnlyList<int>> idLists)
    {
        using var temp = new TempFolder();
        var request = new JsonObject
        {
            ["folder"] = folder,
            ["texts"] = new JsonArray(texts.Select(t => (JsonNode)JsonValue.Create(t)).ToArray()),
            ["add_special_tokens"] = addSpecialTokens,
            ["decode"] = new JsonArray(idLists.Select(ids => (JsonNode)new JsonArray(ids.Select(id => (JsonNode)JsonValue.Create(id)).ToArray())).ToArray()),
        };
        string requestPath = temp.WriteText("request.json", request.ToJsonString());
        var (exitCode, output) = Run([Path.Combine(ReferenceFolder, "encode.js"), requestPath]);
        if (exitCode != 0)
            throw new InvalidOperationException($"encode.js failed ({exitCode}): {output}");
        using var document = JsonDocument.Parse(output);
        JsonElement root = document.RootElement;
        return new HuggingFaceTokenizerResult(
            root.GetProperty("encoded").EnumerateArray().Select(ids => ids.EnumerateArray().Select(id => id.GetInt32()).ToArray()).ToArray(),
            root.GetProperty("decoded").EnumerateArray().Select(text => text.GetString()!).ToArray(),
            root.GetProperty("vocab_size").GetInt32());
    }

    private static (int ExitCode, string Output) Run(IReadOnlyList<string> arguments) => ReferenceProcess.Run("node", arguments);
}

/// <summary>A theory that needs Hugging Face tokenizers under node; skipped, with the reason, where that is missing.</summary>
public sealed class HuggingFaceTokenizersTheoryAttribute : TheoryAttribute
{
    public HuggingFaceTokenizersTheoryAttribute()
    {
        if (HuggingFaceTokenizers.Unavailable is { } reason)
            Skip = reason;
    }
}
