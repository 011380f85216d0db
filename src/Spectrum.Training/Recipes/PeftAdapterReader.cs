// Merges a PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors) into a loaded base model: W += scaling · B·A for each adapted projection.
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Spectrum.Checkpoints;
using Spectrum.Modeling;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Spectrum.Training.Recipes;

/// <summary>
/// Reads what <see cref="PeftAdapterWriter"/> (or PEFT's save_pretrained) writes for a plain LoRA adapter on the seven
/// projections. Everything is checked before the first weight changes, so a refused adapter leaves the model as loaded.
/// </summary>
public static class PeftAdapterReader
{
    private const string ASuffix = ".lora_A.weight", BSuffix = ".lora_B.weight";

    /// <summary>Adds every adapter's product into its base projection; returns the merged module names.</summary>
    /// <exception cref="CheckpointException">The folder lacks a file, its config is malformed, or a tensor does not fit the model.</exception>
    /// <exception cref="NotSupportedException">A PEFT feature this merge does not implement (DoRA, per-module ranks, modules_to_save, …).</exception>
    public static IReadOnlyList<string> MergeInto(LlamaForCausalLM model, string adapterFolder)
    {
        ArgumentNullException.ThrowIfNull(model);
        string configPath = Path.GetFullPath(Path.Combine(adapterFolder, PeftAdapterWriter.ConfigFileName));
        string weightsPath = Path.GetFullPath(Path.Combine(adapterFolder, PeftAdapterWriter.WeightsFileName));
        foreach (string path in new[] { configPath, weightsPath })
        {
            if (!File.Exists(path))
                throw new CheckpointException(CheckpointError.FileNotReadable, path, null,
                    $"{path}: not found. A PEFT adapter folder holds {PeftAdapterWriter.ConfigFileName} and {PeftAdapterWriter.WeightsFileName} " +
                    "(as `spectrum train --adapter-only` writes); pass that folder.");
        }
        double scaling = ReadScaling(configPath);

        var tensors = TensorFiles.Read(weightsPath);
        try
        {
            var pairs = Pair(tensors, model, weightsPath);
            using var noGrad = torch.no_grad();
            foreach (var (module, weight, a, b) in pairs)
            {
                using var scope = torch.NewDisposeScope();
                // Summed in float32 whatever the weights are stored in, so a bf16 weight is rounded once, not twice.
                var delta = b.to(ScalarType.Float32).mm(a.to(ScalarType.Float32)).mul_(scaling);
                weight.copy_(weight.to(ScalarType.Float32).add_(delta).to(weight.dtype));
            }
            return pairs.Select(p => p.Module).ToList();
        }
        finally
        {
            foreach (var tensor in tensors.Values)
                tensor.Dispose();
        }
    }

    /// <summary>lora_alpha / r, or lora_alpha / √r with use_rslora; refuses what a plain merge would get wrong.</summary>
    private static double ReadScaling(string configPath)
    {
        JsonObject config;
        try
        {
            config = JsonNode.Parse(File.ReadAllText(configPath)) as JsonObject
                ?? throw new JsonException("the file is not a JSON object");
        }
        catch (JsonException error)
        {
            throw new CheckpointException(CheckpointError.ConfigInvalid, configPath, null,
                $"{configPath}: not a valid adapter config ({error.Message}). Re-save the adapter.", error);
        }
        string peftType = config["peft_type"]?.GetValueKind() == JsonValueKind.String ? config["peft_type"]!.GetValue<string>() : "";
        if (peftType != "LORA")
            throw new NotSupportedException($"{configPath}: peft_type is \"{peftType}\"; only LoRA adapters (\"LORA\") can be merged.");
        foreach (string unsupported in new[] { "use_dora", "fan_in_fan_out" })
        {
            if (config[unsupported]?.GetValueKind() == JsonValueKind.True)
                throw new NotSupportedException($"{configPath}: {unsupported} is true, which this merge does not implement; merge the adapter with PEFT (merge_and_unload) instead.");
        }
        foreach (string unsupported in new[] { "rank_pattern", "alpha_pattern", "modules_to_save" })
        {
            if (config[unsupported] is JsonObject { Count: > 0 } or JsonArray { Count: > 0 })
                throw new NotSupportedException($"{configPath}: {unsupported} is set, which this merge does not implement; merge the adapter with PEFT (merge_and_unload) instead.");
        }
        double rank = Number(config, "r", configPath), alpha = Number(config, "lora_alpha", configPath);
        if (!(rank >= 1) || !(alpha > 0))
            throw new CheckpointException(CheckpointError.ConfigInvalid, configPath, null,
                $"{configPath}: r must be at least 1 and lora_alpha positive; found r {rank.ToString(CultureInfo.InvariantCulture)}, lora_alpha {alpha.ToString(CultureInfo.InvariantCulture)}. Re-save the adapter.");
        bool rsLora = config["use_rslora"]?.GetValueKind() == JsonValueKind.True;
        return rsLora ? alpha / Math.Sqrt(rank) : alpha / rank;
    }

    private static double Number(JsonObject config, string key, string configPath) =>
        config[key] is JsonValue value && value.TryGetValue(out double number)
            ? number
            : throw new CheckpointException(CheckpointError.ConfigInvalid, configPath, null,
                $"{configPath}: key \"{key}\" must be a number; found {config[key]?.ToJsonString() ?? "nothing"}. Re-save the adapter.");

    /// <summary>Each adapted projection with its weight and its A (r, in) and B (out, r), every name and shape checked.</summary>
    private static List<(string Module, Tensor Weight, Tensor A, Tensor B)> Pair(Dictionary<string, Tensor> tensors, LlamaForCausalLM model, string weightsPath)
    {
        CheckpointException Problem(string tensor, string message) =>
            new(CheckpointError.ConfigShapeMismatch, weightsPath, tensor, $"{weightsPath}: '{tensor}' {message}");

        var modules = new SortedDictionary<string, (Tensor? A, Tensor? B)>(StringComparer.Ordinal);
        foreach (var (name, tensor) in tensors)
        {
            string suffix = name.EndsWith(ASuffix, StringComparison.Ordinal) ? ASuffix : name.EndsWith(BSuffix, StringComparison.Ordinal) ? BSuffix : "";
            if (!name.StartsWith(PeftAdapterWriter.NamePrefix, StringComparison.Ordinal) || suffix == "")
                throw Problem(name, $"is not a LoRA weight (expected {PeftAdapterWriter.NamePrefix}<module>{ASuffix} or {BSuffix}); " +
                                    "this merge takes plain LoRA adapters on the model's projections.");
            string module = name[PeftAdapterWriter.NamePrefix.Length..^suffix.Length];
            var pair = modules.GetValueOrDefault(module);
            modules[module] = suffix == ASuffix ? (tensor, pair.B) : (pair.A, tensor);
        }
        if (modules.Count == 0)
            throw new CheckpointException(CheckpointError.ConfigShapeMismatch, weightsPath, null, $"{weightsPath}: holds no LoRA weights; is this the right folder?");

        var result = new List<(string, Tensor, Tensor, Tensor)>();
        foreach (var (module, (a, b)) in modules)
        {
            if (a is null || b is null)
                throw Problem(PeftAdapterWriter.NamePrefix + module + (a is null ? ASuffix : BSuffix), "is missing: every adapted module needs both lora_A and lora_B.");
            Linear linear;
            try
            {
                linear = model.GetProjection(module) as Linear
                    ?? throw new ArgumentException($"'{module}' is already wrapped and cannot take a merge");
            }
            catch (ArgumentException error)
            {
                throw Problem(PeftAdapterWriter.NamePrefix + module + ASuffix, $"adapts a module this model does not have as a plain projection ({error.Message}). Was the adapter trained on another model?");
            }
            long outputs = linear.weight!.shape[0], inputs = linear.weight.shape[1];
            if (a.dim() != 2 || b.dim() != 2 || a.shape[1] != inputs || b.shape[0] != outputs || a.shape[0] != b.shape[1])
                throw Problem(PeftAdapterWriter.NamePrefix + module + ASuffix,
                    $"and lora_B are shaped [{string.Join(", ", a.shape)}] and [{string.Join(", ", b.shape)}]; the projection's weight is [{outputs}, {inputs}], " +
                    $"so they must be [r, {inputs}] and [{outputs}, r]. Was the adapter trained on another model?");
            result.Add((module, linear.weight, a, b));
        }
        return result;
    }
}
