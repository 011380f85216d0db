// Writes a tiny Llama Hugging Face folder (generated weights + the committed byte-level BPE tokenizer) and a small JSONL data set for recipe tests.
using System.Text.Json;
using Spectrum.Checkpoints;
using Spectrum.Modeling;
using TorchSharp;

namespace Spectrum.Training.Tests.TestSupport;

internal static class TinyModelFolder
{
    /// <summary>The fixture tokenizer's ids run to 580 (four added tokens after 577 byte-level entries); a few spare rows as real models have.</summary>
    public const int VocabSize = 584;

    /// <summary>2 layers, hidden 32, GQA 4/2 heads, untied head; float32 so the exported folder round-trips exactly.</summary>
    /// <param name="corrupt">Called on the generated model before it is saved (e.g. to plant a NaN).</param>
    public static string Create(string folder, Action<LlamaForCausalLM>? corrupt = null)
    {
        var config = LlamaConfig.Tiny(hiddenSize: 32, intermediateSize: 64, vocabSize: VocabSize);
        using var generator = new torch.Generator(11);
        using var model = new LlamaForCausalLM(config, torch.ScalarType.Float32, generator: generator);
        corrupt?.Invoke(model);
        string tokenizer = Path.Combine(RepositoryPaths.Root, "tests", "reference", "fixtures", "tokenizers", "byte-level-bpe");
        HuggingFaceExporter.Save(model, config, folder, SafetensorsDType.F32,
            extraFilesToCopy: [Path.Combine(tokenizer, "tokenizer.json"), Path.Combine(tokenizer, "tokenizer_config.json")]);
        return folder;
    }

    /// <summary>Instruction records of a simple arithmetic task, enough for a few packed rows of 48 tokens.</summary>
    public static string WriteData(string path, int count = 16)
    {
        var lines = Enumerable.Range(0, count).Select(i => JsonSerializer.Serialize(new Dictionary<string, string>
        {
            ["instruction"] = $"Add {i} and {i % 5}.",
            ["output"] = $"The sum is {i + i % 5}.",
        }));
        File.WriteAllLines(path, lines);
        return path;
    }
}
