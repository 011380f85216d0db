// Generation from a model folder: loads model, tokenizer and generation_config.json, builds the prompt (plain text or a chat turn) and streams the reply as text.
using System.Diagnostics;
using Spectrum.Checkpoints;
using Spectrum.Modeling;
using Spectrum.Text;
using static TorchSharp.torch;

namespace Spectrum.Training.Recipes;

/// <summary>What `spectrum generate` was asked for; null options fall back to the model's generation_config.json.</summary>
public sealed record GenerateOptions
{
    public const int DefaultMaxNewTokens = 256;

    public required string ModelFolder { get; init; }

    public required string Prompt { get; init; }

    /// <summary>A PEFT LoRA adapter folder merged into the model's weights after loading.</summary>
    public string? AdapterFolder { get; init; }

    /// <summary>Send the prompt as a user message in the model's chat format and generate the assistant's reply.</summary>
    public bool Chat { get; init; }

    /// <summary>A system message before the prompt (chat only).</summary>
    public string? SystemPrompt { get; init; }

    /// <summary>A built-in format name, or "auto": the format of the model's own chat template (ChatML when none).</summary>
    public string ChatTemplateName { get; init; } = ChatTemplate.AutoName;

    /// <summary>Null: generation_config's max_new_tokens, else <see cref="DefaultMaxNewTokens"/>.</summary>
    public int? MaxNewTokens { get; init; }

    /// <summary>True: sample; false: greedy; null: as generation_config's do_sample.</summary>
    public bool? Sample { get; init; }

    public double? Temperature { get; init; }

    public int? TopK { get; init; }

    public double? TopP { get; init; }

    public long Seed { get; init; }

    /// <summary>Null: bf16 for a checkpoint stored in bf16 (half the memory; an 8B model then fits 24 GB), else fp32.</summary>
    public TrainingPrecision? Precision { get; init; }
}

/// <summary>What will be run, resolved from the options, the model folder and its generation_config.json.</summary>
public sealed record GenerationPlan(
    int MaxNewTokens,
    SamplingSettings? Sampling,
    IReadOnlyList<int> StopTokenIds,
    string? ChatTemplate,
    TrainingPrecision Precision,
    IReadOnlyList<string> Notes);

/// <summary>How a finished (or stopped) generation went.</summary>
public sealed record GenerationResult(int GeneratedTokens, bool EndedOnStopToken, double PromptSeconds, double GenerationSeconds)
{
    /// <summary>New tokens per second after the first (which also paid for the prompt).</summary>
    public double TokensPerSecond => GeneratedTokens > 1 ? (GeneratedTokens - 1) / GenerationSeconds : double.NaN;
}

public sealed class TextGeneration : IDisposable
{
    private readonly LlamaForCausalLM _model;
    private readonly ModelTokenizer _tokenizer;
    private readonly IReadOnlyList<int> _promptIds;

    private TextGeneration(LlamaForCausalLM model, ModelTokenizer tokenizer, IReadOnlyList<int> promptIds, GenerationPlan plan)
    {
        _model = model;
        _tokenizer = tokenizer;
        _promptIds = promptIds;
        Plan = plan;
    }

    public GenerationPlan Plan { get; }

    /// <summary>The prompt as the model sees it.</summary>
    public IReadOnlyList<int> PromptIds => _promptIds;

    /// <summary>Set once <see cref="Stream"/> has been read to its end (or stopped).</summary>
    public GenerationResult? Result { get; private set; }

    /// <summary>Checks the options against the model folder, then loads the tokenizer and the model.</summary>
    /// <exception cref="TrainingConfigurationException">Options that contradict each other or the model.</exception>
    /// <exception cref="CheckpointException">The folder is not a readable checkpoint, or its generation_config.json is malformed.</exception>
    public static TextGeneration Load(GenerateOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (string.IsNullOrEmpty(options.Prompt))
            throw new TrainingConfigurationException("The prompt is empty: give --prompt TEXT, --prompt-file FILE, or text on standard input.");
        if (options.SystemPrompt is not null && !options.Chat)
            throw new TrainingConfigurationException("--system applies to chat prompts only: add --chat, or put the instruction into the prompt.");
        if (options.MaxNewTokens is < 1)
            throw new TrainingConfigurationException($"--max-new-tokens must be at least 1; found {options.MaxNewTokens}.");
        if (!ChatTemplate.IsName(options.ChatTemplateName))
            throw new TrainingConfigurationException(
                $"--chat-template \"{options.ChatTemplateName}\" is not known; use auto or one of {string.Join(", ", ChatTemplate.BuiltIn.Select(t => t.Name))}.");

        options = ResolveAdapterFolder(options);
        using var checkpoint = Checkpoint.Open(options.ModelFolder);
        var modelConfig = checkpoint.Config ?? throw new CheckpointException(CheckpointError.ConfigMissing, checkpoint.RootPath, null,
            $"{checkpoint.RootPath}: no {Checkpoint.ConfigFileName}, so the architecture is unknown; copy the model's config.json into this folder.");
        var generationConfig = GenerationConfig.Read(options.ModelFolder);
        var sampling = ResolveSampling(options, generationConfig);
        var tokenizer = ModelTokenizer.Load(options.ModelFolder);
        var notes = new List<string>(tokenizer.Warnings);

        ChatTemplate? template = options.Chat ? ChatTemplate.Resolve(options.ChatTemplateName, tokenizer.ChatTemplateSource) : null;
        var promptIds = Encode(options, tokenizer, template);
        if (template is not null && options.ChatTemplateName == ChatTemplate.AutoName && ChatTemplate.Recognise(tokenizer.ChatTemplateSource) is null)
            notes.Add(tokenizer.HasChatTemplate
                ? $"The model's chat template is not one of the built-in formats; prompting it in {template.Name}. Name its format with --chat-template if you know it."
                : $"The model has no chat template; prompting it in {template.Name} (what `spectrum train` uses by default).");

        var stops = new List<int>(generationConfig.EosTokenIds);
        if (tokenizer.EosId is { } eos && !stops.Contains(eos))
            stops.Add(eos);
        // A model fine-tuned on conversations ends its reply with the format's end-of-turn token.
        if (template is not null && tokenizer.TokenToId(template.AssistantTurnEnd) is { } replyEnd && !stops.Contains(replyEnd))
            stops.Add(replyEnd);

        int maxNewTokens = options.MaxNewTokens ?? generationConfig.MaxNewTokens ?? GenerateOptions.DefaultMaxNewTokens;
        if (modelConfig.MaxPositionEmbeddings is int contextLength)
        {
            if (promptIds.Count >= contextLength)
                throw new TrainingConfigurationException(
                    $"The prompt is {promptIds.Count} tokens, but the model's context is {contextLength} (max_position_embeddings): shorten the prompt.");
            if (promptIds.Count + maxNewTokens > contextLength)
            {
                notes.Add($"--max-new-tokens lowered from {maxNewTokens} to {contextLength - promptIds.Count}: prompt and reply must fit the model's context of {contextLength} tokens.");
                maxNewTokens = contextLength - promptIds.Count;
            }
        }

        var precision = options.Precision ?? (modelConfig.TorchDtype == "bfloat16" ? TrainingPrecision.BFloat16 : TrainingPrecision.Float32);
        var model = LlamaForCausalLM.FromPretrained(options.ModelFolder, precision == TrainingPrecision.BFloat16 ? ScalarType.BFloat16 : ScalarType.Float32);
        if (options.AdapterFolder is { } adapter)
        {
            try
            {
                var merged = PeftAdapterReader.MergeInto(model, adapter);
                notes.Add($"Merged the LoRA adapter in {adapter} into {merged.Count} projections of {options.ModelFolder}.");
            }
            catch
            {
                model.Dispose();
                throw;
            }
        }
        var plan = new GenerationPlan(maxNewTokens, sampling, stops, template?.Name, precision, notes);
        return new TextGeneration(model, tokenizer, promptIds, plan);
    }

    /// <summary>
    /// The reply as text pieces, each printable as it comes: ids are decoded together and a piece is released only
    /// when it no longer ends inside a multi-byte character. Stop tokens and other special tokens are not shown.
    /// </summary>
    public IEnumerable<string> Stream(CancellationToken cancellationToken = default)
    {
        var settings = new GenerationSettings { MaxNewTokens = Plan.MaxNewTokens, StopTokenIds = Plan.StopTokenIds, Sampling = Plan.Sampling };
        var generated = new List<int>();
        string shown = "";
        var clock = Stopwatch.StartNew();
        double promptSeconds = 0;
        bool stopped = false;
        try
        {
            foreach (int id in TokenGenerator.Generate(_model, _promptIds, settings, cancellationToken))
            {
                if (generated.Count == 0)
                {
                    promptSeconds = clock.Elapsed.TotalSeconds;
                    clock.Restart();
                }
                generated.Add(id);
                stopped = Plan.StopTokenIds.Contains(id);
                string text = _tokenizer.Decode(generated, skipSpecialTokens: true);
                // U+FFFD at the end: the last id ends part-way through a character; wait for the rest.
                if (text.Length > shown.Length && !text.EndsWith('\uFFFD') && text.StartsWith(shown, StringComparison.Ordinal))
                {
                    yield return text[shown.Length..];
                    shown = text;
                }
            }
            string final = _tokenizer.Decode(generated, skipSpecialTokens: true);
            if (final.Length > shown.Length && final.StartsWith(shown, StringComparison.Ordinal))
                yield return final[shown.Length..];
        }
        finally
        {
            Result = new GenerationResult(generated.Count, stopped, promptSeconds, clock.Elapsed.TotalSeconds);
        }
    }

    /// <summary>
    /// A PEFT adapter folder given as the model (as `train --adapter-only` writes it) is applied to the base model its
    /// config names, as PEFT's AutoPeftModel does, when that base is a folder here.
    /// </summary>
    private static GenerateOptions ResolveAdapterFolder(GenerateOptions options)
    {
        string adapterConfig = Path.Combine(options.ModelFolder, PeftAdapterWriter.ConfigFileName);
        if (!File.Exists(adapterConfig) || File.Exists(Path.Combine(options.ModelFolder, Checkpoint.ConfigFileName)))
            return options;
        if (options.AdapterFolder is not null)
            throw new TrainingConfigurationException($"{options.ModelFolder} is itself a LoRA adapter; give the base model folder with --adapter {options.ModelFolder}, or the adapter alone.");
        string? baseModel = null;
        try
        {
            baseModel = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(adapterConfig))?["base_model_name_or_path"]?.GetValue<string>();
        }
        catch (Exception error) when (error is System.Text.Json.JsonException or InvalidOperationException or FormatException)
        {
            // Reported below as a base model that cannot be found.
        }
        if (baseModel is null || !Directory.Exists(baseModel))
            throw new TrainingConfigurationException(
                $"{options.ModelFolder} is a LoRA adapter whose base model ({baseModel ?? "base_model_name_or_path missing"}) is not a folder here: " +
                $"give the base model folder and --adapter {options.ModelFolder}.");
        return options with { ModelFolder = baseModel, AdapterFolder = options.ModelFolder };
    }

    /// <summary>Greedy unless sampling is asked for (or generation_config.json's do_sample); knobs without sampling are refused.</summary>
    private static SamplingSettings? ResolveSampling(GenerateOptions options, GenerationConfig config)
    {
        bool sample = options.Sample ?? config.DoSample;
        if (!sample)
        {
            var knobs = new[] { ("--temperature", options.Temperature is not null), ("--top-k", options.TopK is not null), ("--top-p", options.TopP is not null) }
                .Where(k => k.Item2).Select(k => k.Item1).ToList();
            if (knobs.Count > 0)
                throw new TrainingConfigurationException(
                    $"{string.Join(", ", knobs)} only {(knobs.Count == 1 ? "changes" : "change")} sampling, and this run decodes greedily " +
                    (options.Sample == false ? "(--greedy)" : "(the model's generation_config.json does not sample)") +
                    ": add --sample, or drop them.");
            return null;
        }
        var settings = new SamplingSettings(options.Temperature ?? config.Temperature, options.TopK ?? config.TopK, options.TopP ?? config.TopP, options.Seed);
        if (settings.Problem() is { } problem)
            throw new TrainingConfigurationException($"Cannot sample: {problem}.");
        return settings;
    }

    /// <summary>Plain text as the tokenizer encodes it (with BOS where the model adds one); a chat prompt as training renders conversations.</summary>
    private static IReadOnlyList<int> Encode(GenerateOptions options, ModelTokenizer tokenizer, ChatTemplate? template)
    {
        if (template is null)
            return tokenizer.Encode(options.Prompt, addSpecialTokens: true);
        var messages = new List<ChatMessage>();
        if (options.SystemPrompt is not null)
            messages.Add(new ChatMessage(ChatRole.System, options.SystemPrompt));
        messages.Add(new ChatMessage(ChatRole.User, options.Prompt));
        if (template.Incompatibility(messages) is { } reason)
            throw new TrainingConfigurationException($"The {template.Name} chat format cannot take this prompt: {reason}. Drop --system, or choose another --chat-template.");
        var ids = new List<int>();
        if (tokenizer.AddsBosToken && tokenizer.BosId is { } bos)
            ids.Add(bos);
        ids.AddRange(tokenizer.Encode(template.RenderGenerationPrompt(messages), addSpecialTokens: false));
        return ids;
    }

    public void Dispose() => _model.Dispose();
}
