// Writes trained LoRA adapters as a PEFT adapter folder (adapter_config.json + adapter_model.safetensors) that PEFT loads onto the base model.
using System.Text.Json;
using Spectrum.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Spectrum.Training.Recipes;

public static class PeftAdapterWriter
{
    public const string ConfigFileName = "adapter_config.json";
    public const string WeightsFileName = "adapter_model.safetensors";

    /// <summary>PEFT's saved names: the model's own parameter name under <c>base_model.model.</c> (the PeftModel wrapper's prefix).</summary>
    public const string NamePrefix = "base_model.model.";

    /// <summary>
    /// Saves every <c>lora_A.weight</c> (r, in) and <c>lora_B.weight</c> (out, r) of <paramref name="model"/> in its own
    /// dtype (float32) under PEFT's names, plus a LoRA adapter_config.json and the tokenizer files. The weights file is
    /// written atomically; the config last, so a folder with a config is complete.
    /// </summary>
    /// <exception cref="InvalidOperationException">The model holds no LoRA adapter.</exception>
    public static void Write(nn.Module model, LoraOptions options, string baseModel, string folder, IEnumerable<string> extraFilesToCopy)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        var adapters = model.named_parameters()
            .Where(p => LoraLinear.IsAdapterParameter(p.name))
            .Select(p => (NamePrefix + p.name, (Tensor)p.parameter.detach()))
            .ToList();
        if (adapters.Count == 0)
            throw new InvalidOperationException("The model holds no LoRA adapter (no lora_A/lora_B weights), so there is no adapter to save.");
        Directory.CreateDirectory(folder);
        // PEFT saves with the same "format": "pt" metadata as transformers, which older loaders require.
        TensorFiles.Write(Path.Combine(folder, WeightsFileName), adapters, ShardedCheckpointWriter.HuggingFaceMetadata);
        foreach (string file in extraFilesToCopy)
            File.Copy(file, Path.Combine(folder, Path.GetFileName(file)), overwrite: true);
        var config = new Dictionary<string, object?>
        {
            ["peft_type"] = "LORA",
            ["task_type"] = "CAUSAL_LM",
            ["base_model_name_or_path"] = baseModel,
            ["r"] = options.Rank,
            ["lora_alpha"] = options.Alpha,
            ["lora_dropout"] = options.Dropout,
            ["target_modules"] = options.TargetModules ?? ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
            ["bias"] = "none",
            ["fan_in_fan_out"] = false,
            ["use_rslora"] = false,
            ["inference_mode"] = true,
            ["modules_to_save"] = null,
        };
        File.WriteAllText(Path.Combine(folder, ConfigFileName), JsonSerializer.Serialize(config, new JsonSerializerOptions { WriteIndented = true }));
    }
}
