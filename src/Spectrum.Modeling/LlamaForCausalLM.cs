// A Llama-family causal language model whose parameter names are the Hugging Face checkpoint keys: training forward, and cached next-token logits for generation.
using System.Globalization;
using Spectrum.Checkpoints;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Spectrum.Modeling;

/// <summary>
/// Input ids (batch, seq) int64 → logits (batch, seq, vocab) float32. <c>named_parameters()</c> yields exactly the
/// checkpoint keys (<see cref="LlamaConfig.ExpectedTensors"/>); with tied embeddings there is no lm_head module and
/// the head reuses <c>model.embed_tokens.weight</c>. The seven projections of each layer can be swapped for adapters
/// with <see cref="ReplaceModule"/>.
/// </summary>
public sealed class LlamaForCausalLM : nn.Module<Tensor, Tensor>, ISelectiveLogits
{
    private const string LayerPrefix = "model.layers.";

    // Field names are the checkpoint keys ("model.…", "lm_head.weight").
    private readonly LlamaModel model;
    private readonly Linear? lm_head;

    /// <summary>Builds a model with Hugging Face's initialisation: normal(0, initializer_range) weights, zero biases, unit norms.</summary>
    /// <param name="dtype">Parameter dtype: Float32, BFloat16, Float16 or Float64. Logits are always float32.</param>
    /// <param name="device">Where parameters live; torch.META builds shapes only (listings of large presets).</param>
    /// <param name="generator">Random source for the initial weights; the same seed gives bit-identical weights.</param>
    public LlamaForCausalLM(LlamaConfig config, ScalarType dtype = ScalarType.Float32, Device? device = null,
        Generator? generator = null)
        : this(config, dtype, device, initialize: true, generator)
    {
    }

    private LlamaForCausalLM(LlamaConfig config, ScalarType dtype, Device? device, bool initialize, Generator? generator)
        : base(nameof(LlamaForCausalLM))
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        if (dtype is not (ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float16 or ScalarType.Float64))
        {
            throw new ArgumentException(
                $"Model dtype must be Float32, BFloat16, Float16 or Float64; found {dtype}.", nameof(dtype));
        }
        Config = config;
        DType = dtype;
        model = new LlamaModel(config, dtype, device);
        register_module(nameof(model), model);
        if (!config.TieWordEmbeddings)
        {
            lm_head = LinearFactory.Create(config.HiddenSize, config.VocabSize, bias: false, dtype, device);
            register_module(nameof(lm_head), lm_head);
        }
        if (initialize && (device is null || device.type != DeviceType.META))
        {
            InitializeWeights(generator);
        }
    }

    public LlamaConfig Config { get; }

    /// <summary>The dtype the parameters were created with.</summary>
    public ScalarType DType { get; }

    public LlamaModel Model => model;

    /// <summary>The output head, or null when it is tied to <c>model.embed_tokens.weight</c>.</summary>
    public Linear? LmHead => lm_head;

    /// <summary>
    /// Recompute each decoder layer in backward instead of storing its activations (memory for ~1/3 more compute).
    /// Only takes effect while autograd is recording.
    /// </summary>
    public bool GradientCheckpointing
    {
        get => model.GradientCheckpointing;
        set => model.GradientCheckpointing = value;
    }

    /// <summary>Loads a Hugging Face folder (config.json + safetensors, single or sharded) strictly; see <see cref="CheckpointLoader"/>.</summary>
    /// <exception cref="CheckpointException">The folder is not a readable, consistent checkpoint.</exception>
    /// <exception cref="NotSupportedException">The config describes an unsupported model.</exception>
    /// <exception cref="ModelLoadException">The weights do not fit the config.</exception>
    /// <param name="diversion">Tensors to hand to a callback instead of the model (quantise while loading); see <see cref="LoadDiversion"/>.</param>
    public static LlamaForCausalLM FromPretrained(string folder, ScalarType dtype = ScalarType.Float32, LoadDiversion? diversion = null)
    {
        using var checkpoint = Checkpoint.Open(folder);
        var modelConfig = checkpoint.Config ?? throw new CheckpointException(CheckpointError.ConfigMissing,
            checkpoint.RootPath, null,
            $"{checkpoint.RootPath}: no {Checkpoint.ConfigFileName} beside the weights, so the architecture is " +
            "unknown; copy the model's config.json into this folder.");
        var config = LlamaConfig.From(modelConfig);
        var loaded = new LlamaForCausalLM(config, dtype, device: null, initialize: false, generator: null);
        try
        {
            CheckpointLoader.Load(loaded, checkpoint, diversion);
            return loaded;
        }
        catch
        {
            loaded.Dispose();
            throw;
        }
    }

    /// <summary>inputIds is (batch, seq) int64; positions 0..seq-1 in every row. Returns (batch, seq, vocab) float32.</summary>
    public override Tensor forward(Tensor inputIds)
    {
        using var scope = torch.NewDisposeScope();
        return forward(inputIds, DefaultPositions(inputIds)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// As <see cref="forward(Tensor)"/> with explicit (batch, seq) int64 positions. Positions only change the rotary
    /// embeddings: attention stays causal over the whole row, as in Hugging Face's eager/SDPA paths. To keep packed
    /// documents apart use <see cref="ForwardPacked"/>.
    /// </summary>
    public Tensor forward(Tensor inputIds, Tensor positionIds)
    {
        using var scope = torch.NewDisposeScope();
        var hidden = model.call(inputIds, positionIds);                                      // (batch, seq, hidden)
        return Head(hidden).MoveToOuterDisposeScope();                                       // (batch, seq, vocab)
    }

    /// <summary>
    /// Logits (batch, seq, vocab) float32 for rows that pack several documents: <paramref name="documentIds"/> (batch,
    /// seq) int64 marks them (<see cref="PackedDocuments"/>); each gets positions from 0 and attends only to itself.
    /// </summary>
    public Tensor ForwardPacked(Tensor inputIds, Tensor documentIds)
    {
        PackedDocuments.Validate(documentIds, inputIds);
        using var scope = torch.NewDisposeScope();
        var hidden = Hidden(inputIds, documentIds);                                          // (batch, seq, hidden)
        return Head(hidden).MoveToOuterDisposeScope();                                       // (batch, seq, vocab)
    }

    /// <inheritdoc />
    public Tensor LogitsAt(Tensor inputIds, Tensor flatPositions, Tensor? documentIds = null)
    {
        ArgumentNullException.ThrowIfNull(inputIds);
        ArgumentNullException.ThrowIfNull(flatPositions);
        if (flatPositions.dim() != 1 || flatPositions.dtype != ScalarType.Int64)
            throw new ArgumentException(
                $"flatPositions must be a 1-D int64 tensor of indices into batch·seq; found {flatPositions.dtype} [{string.Join(", ", flatPositions.shape)}].",
                nameof(flatPositions));
        long grid = inputIds.numel();
        if (flatPositions.numel() > 0)
        {
            var (smallest, largest) = IndexRange.Of(flatPositions);
            if (smallest < 0 || largest >= grid)
                throw new ArgumentException(
                    $"flatPositions range over [{smallest}, {largest}], but the input has batch·seq = {grid} positions; " +
                    "index them as b·seq + t with 0 ≤ t < seq.", nameof(flatPositions));
        }
        if (documentIds is not null)
            PackedDocuments.Validate(documentIds, inputIds);
        using var scope = torch.NewDisposeScope();
        var hidden = Hidden(inputIds, documentIds);                                          // (batch, seq, hidden)
        var rows = hidden.reshape(-1, hidden.shape[^1]).index_select(0, flatPositions);      // (n, hidden)
        return Head(rows).MoveToOuterDisposeScope();                                         // (n, vocab)
    }

    /// <summary>
    /// An empty cache for generating up to <paramref name="capacity"/> positions (prompt included) in
    /// <paramref name="batch"/> rows, in the model's dtype and on its device. The caller disposes it.
    /// </summary>
    public KeyValueCache CreateCache(long capacity, long batch = 1) =>
        new(Config, batch, capacity, DType, model.EmbedTokens.Weight.device);

    /// <summary>
    /// Logits (batch, vocab) float32 for the token after <paramref name="inputIds"/> (batch, new) int64, which continue
    /// the tokens already in <paramref name="cache"/>: the prompt on an empty cache, then each generated token. Equals
    /// the last position of <see cref="forward(Tensor)"/> over everything so far, for new-token work only. No autograd.
    /// </summary>
    /// <exception cref="ArgumentException">The ids do not fit the cache (batch, room left) or the vocabulary.</exception>
    public Tensor NextTokenLogits(Tensor inputIds, KeyValueCache cache)
    {
        ArgumentNullException.ThrowIfNull(inputIds);
        ArgumentNullException.ThrowIfNull(cache);
        if (inputIds.dim() != 2 || inputIds.dtype != ScalarType.Int64 || inputIds.shape[1] == 0 || inputIds.shape[0] != cache.Batch)
            throw new ArgumentException(
                $"input ids must be a (batch, new) int64 tensor with batch {cache.Batch} (the cache's) and at least one id; " +
                $"found {inputIds.dtype} [{string.Join(", ", inputIds.shape)}].", nameof(inputIds));
        long added = inputIds.shape[1];
        if (cache.Length + added > cache.Capacity)
            throw new ArgumentException(
                $"{added} more tokens do not fit the cache: it holds {cache.Length} of {cache.Capacity} positions. " +
                "Create the cache with room for the prompt and every token to generate.", nameof(inputIds));
        var (smallest, largest) = IndexRange.Of(inputIds);
        if (smallest < 0 || largest >= Config.VocabSize)
            throw new ArgumentException(
                $"Token ids range over [{smallest}, {largest}], outside the model's vocabulary [0, {Config.VocabSize}).", nameof(inputIds));
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        var hidden = model.ForwardCached(inputIds, cache);                                  // (batch, new, hidden)
        var last = hidden.select(1, added - 1);                                              // (batch, hidden)
        return Head(last).MoveToOuterDisposeScope();                                         // (batch, vocab)
    }

    /// <summary>Final hidden states: causal over each row, or per packed document when <paramref name="documentIds"/> is given.</summary>
    private Tensor Hidden(Tensor inputIds, Tensor? documentIds) => documentIds is null
        ? model.call(inputIds, DefaultPositions(inputIds))
        : model.Forward(inputIds, PackedDocuments.Positions(documentIds), PackedDocuments.AllowedPairs(documentIds));

    /// <summary>0..seq-1 in every row: (batch, seq) int64.</summary>
    private static Tensor DefaultPositions(Tensor inputIds) =>
        torch.arange(inputIds.shape[^1], dtype: ScalarType.Int64, device: inputIds.device).unsqueeze(0).expand(inputIds.shape);

    /// <summary>(..., hidden) → float32 (..., vocab) through lm_head, or the embedding matrix when tied.</summary>
    private Tensor Head(Tensor hidden)
    {
        var logits = lm_head is null ? TiedHead(hidden, model.EmbedTokens.Weight) : lm_head.call(hidden);
        return logits.to(ScalarType.Float32);
    }

    /// <summary>
    /// hidden · Wᵀ for the tied embedding matrix W (vocab, hidden), computed as (W · hiddenᵀ)ᵀ. Same products, but the
    /// gradient for W then comes out of backward as a fresh (vocab, hidden) tensor, into which autograd adds the
    /// embedding lookup's gradient in place; linear(hidden, W) yields it as a transposed view, which forces an
    /// out-of-place sum: one embedding-sized buffer (113 MB at SmolLM's shape in float32) more at the end of backward.
    /// </summary>
    private static Tensor TiedHead(Tensor hidden, Tensor weight)
    {
        using var scope = torch.NewDisposeScope();
        var rows = hidden.reshape(-1, hidden.shape[^1]);                                      // (n, hidden)
        var logits = torch.mm(weight, rows.t()).t().contiguous();                             // (n, vocab)
        return logits.reshape([.. hidden.shape[..^1], weight.shape[0]]).MoveToOuterDisposeScope();
    }

    // ------------------------------------------------------------------------------------------------ projections

    /// <summary>Dotted module names of all seven projections of every layer, e.g. "model.layers.0.self_attn.q_proj".</summary>
    public IEnumerable<string> ProjectionModuleNames()
    {
        for (int layer = 0; layer < Config.NumHiddenLayers; layer++)
        {
            foreach (string name in LlamaAttention.ProjectionNames)
            {
                yield return $"{LayerPrefix}{layer}.self_attn.{name}";
            }
            foreach (string name in LlamaMlp.ProjectionNames)
            {
                yield return $"{LayerPrefix}{layer}.mlp.{name}";
            }
        }
    }

    /// <summary>The projections that are still plain linear layers (not yet replaced), by dotted module name.</summary>
    public IEnumerable<(string Name, Linear Module)> Projections()
    {
        foreach (string name in ProjectionModuleNames())
        {
            if (GetProjection(name) is Linear linear)
            {
                yield return (name, linear);
            }
        }
    }

    /// <summary>The module currently at a projection's dotted name (a Linear, or whatever replaced it).</summary>
    /// <exception cref="ArgumentException">The name is not one of <see cref="ProjectionModuleNames"/>.</exception>
    public nn.Module<Tensor, Tensor> GetProjection(string dottedModuleName)
    {
        var (layer, block, projection) = ParseProjectionName(dottedModuleName);
        return block == "self_attn" ? layer.SelfAttention.GetProjection(projection) : layer.Mlp.GetProjection(projection);
    }

    /// <summary>
    /// Puts <paramref name="replacement"/> where the projection was: forward calls it, and <c>named_parameters()</c>
    /// lists its parameters under the same prefix (e.g. "model.layers.3.self_attn.q_proj.lora_A.weight"), in the
    /// same position. The previous module is not disposed (adapters usually keep it); the caller owns it.
    /// </summary>
    /// <exception cref="ArgumentException">The name is not one of <see cref="ProjectionModuleNames"/>.</exception>
    public void ReplaceModule(string dottedModuleName, nn.Module<Tensor, Tensor> replacement)
    {
        ArgumentNullException.ThrowIfNull(replacement);
        var (layer, block, projection) = ParseProjectionName(dottedModuleName);
        if (block == "self_attn")
        {
            layer.SelfAttention.ReplaceProjection(projection, replacement);
        }
        else
        {
            layer.Mlp.ReplaceProjection(projection, replacement);
        }
    }

    private (LlamaDecoderLayer Layer, string Block, string Projection) ParseProjectionName(string dottedModuleName)
    {
        ArgumentNullException.ThrowIfNull(dottedModuleName);
        ArgumentException Invalid(string why) => new(
            $"'{dottedModuleName}' is not a projection of this model ({why}); expected " +
            $"\"{LayerPrefix}{{layer}}.self_attn.{{q,k,v,o}}_proj\" or \"{LayerPrefix}{{layer}}.mlp.{{gate,up,down}}_proj\" " +
            $"with layer in 0..{Config.NumHiddenLayers - 1}.", nameof(dottedModuleName));

        if (!dottedModuleName.StartsWith(LayerPrefix, StringComparison.Ordinal))
        {
            throw Invalid($"it does not start with \"{LayerPrefix}\"");
        }
        string[] parts = dottedModuleName[LayerPrefix.Length..].Split('.');
        if (parts.Length != 3)
        {
            throw Invalid("it does not have the form layer.block.projection");
        }
        if (!int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int index)
            || index >= Config.NumHiddenLayers)
        {
            throw Invalid($"layer '{parts[0]}' does not exist");
        }
        bool known = parts[1] switch
        {
            "self_attn" => LlamaAttention.ProjectionNames.Contains(parts[2]),
            "mlp" => LlamaMlp.ProjectionNames.Contains(parts[2]),
            _ => false,
        };
        if (!known)
        {
            throw Invalid($"'{parts[1]}.{parts[2]}' is not one of the seven projections");
        }
        return (model.Layers[index], parts[1], parts[2]);
    }

    // ------------------------------------------------------------------------------------------------ initialisation

    /// <summary>Hugging Face's _init_weights, in checkpoint order so one generator seed fixes every value.</summary>
    private void InitializeWeights(Generator? generator)
    {
        using var noGrad = torch.no_grad();
        var parameters = named_parameters().ToDictionary(pair => pair.name, pair => pair.parameter, StringComparer.Ordinal);
        foreach (var (name, _) in Config.ExpectedTensors())
        {
            var parameter = parameters[name];
            if (name.EndsWith("norm.weight", StringComparison.Ordinal))
            {
                parameter.fill_(1);
            }
            else if (name.EndsWith(".bias", StringComparison.Ordinal))
            {
                parameter.zero_();
            }
            else
            {
                parameter.normal_(0, Config.InitializerRange, generator);
            }
        }
    }
}
