// The Llama-family decoder stack ("model." in checkpoints): embeddings, decoder layers, final norm; no output head.
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Spectrum.Modeling;

/// <summary>Input ids (batch, seq) and position ids (batch, seq) → final hidden states (batch, seq, hidden).</summary>
public sealed class LlamaModel : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly LlamaConfig _config;
    private readonly RotaryEmbedding _rotary;
    private readonly IReadOnlyList<LlamaDecoderLayer> _layerList;

    // Field names are the checkpoint keys ("model.embed_tokens.weight", "model.layers.{i}…", "model.norm.weight").
    private readonly LlamaEmbedding embed_tokens;
    private readonly ModuleList<LlamaDecoderLayer> layers;
    private readonly LlamaRmsNorm norm;

    public LlamaModel(LlamaConfig config, ScalarType dtype, Device? device) : base(nameof(LlamaModel))
    {
        _config = config;
        _rotary = new RotaryEmbedding(config);
        embed_tokens = new LlamaEmbedding(config.VocabSize, config.HiddenSize, dtype, device);
        _layerList = Enumerable.Range(0, config.NumHiddenLayers)
            .Select(_ => new LlamaDecoderLayer(config, dtype, device)).ToArray();
        layers = new ModuleList<LlamaDecoderLayer>(_layerList.ToArray());
        norm = new LlamaRmsNorm(config.HiddenSize, config.RmsNormEps, dtype, device);
        register_module(nameof(embed_tokens), embed_tokens);
        register_module(nameof(layers), layers);
        register_module(nameof(norm), norm);
    }

    public LlamaEmbedding EmbedTokens => embed_tokens;

    public IReadOnlyList<LlamaDecoderLayer> Layers => _layerList;

    public LlamaRmsNorm Norm => norm;

    public RotaryEmbedding Rotary => _rotary;

    /// <summary>Recompute each decoder layer during backward instead of keeping its activations.</summary>
    public bool GradientCheckpointing { get; set; }

    /// <summary>inputIds and positionIds are (batch, seq) int64; returns (batch, seq, hidden). Attention is causal over each row.</summary>
    public override Tensor forward(Tensor inputIds, Tensor positionIds) => Forward(inputIds, positionIds, null);

    /// <summary>
    /// As <see cref="forward"/>, with attention limited to <paramref name="allowedPairs"/> when given: (batch, 1, seq,
    /// seq) bool, true where query i may attend key j (<see cref="PackedDocuments.AllowedPairs"/>).
    /// </summary>
    public Tensor Forward(Tensor inputIds, Tensor positionIds, Tensor? allowedPairs)
    {
        RequireWithinSlidingWindow(inputIds.shape[^1]);
        if (!positionIds.shape.SequenceEqual(inputIds.shape) || positionIds.dtype != ScalarType.Int64)
        {
            throw new ArgumentException(
                $"position ids must be an int64 tensor shaped like the input ids [{string.Join(", ", inputIds.shape)}]; " +
                $"found {positionIds.dtype} [{string.Join(", ", positionIds.shape)}].");
        }

        using var scope = torch.NewDisposeScope();
        var hidden = embed_tokens.call(inputIds);                                          // (batch, seq, hidden)
        var (cos, sin) = _rotary.Compute(positionIds, hidden.dtype);                        // (batch, seq, head_dim) each
        foreach (var layer in _layerList)
        {
            hidden = UseCheckpointing(hidden, layer)
                ? CheckpointedLayerFunction.Run(layer, hidden, cos, sin, allowedPairs)
                : layer.call(hidden, cos, sin, allowedPairs);
        }
        return norm.call(hidden).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Final hidden states (batch, new, hidden) of <paramref name="inputIds"/>, tokens that follow the
    /// <paramref name="cache"/>'s Length positions; their keys and values are added to the cache.
    /// </summary>
    internal Tensor ForwardCached(Tensor inputIds, KeyValueCache cache)
    {
        long added = inputIds.shape[^1], start = cache.Length;
        RequireWithinSlidingWindow(start + added);
        using var scope = torch.NewDisposeScope();
        var positions = torch.arange(start, start + added, dtype: ScalarType.Int64, device: inputIds.device)
            .unsqueeze(0).expand(inputIds.shape);                                          // (batch, new)
        var hidden = embed_tokens.call(inputIds);                                          // (batch, new, hidden)
        var (cos, sin) = _rotary.Compute(positions, hidden.dtype);
        for (int layer = 0; layer < _layerList.Count; layer++)
        {
            hidden = _layerList[layer].ForwardCached(hidden, cos, sin, cache, layer);
        }
        cache.Advance(added);
        return norm.call(hidden).MoveToOuterDisposeScope();
    }

    private void RequireWithinSlidingWindow(long seq)
    {
        if (_config.SlidingWindow is int window && seq > window)
        {
            throw new NotSupportedException(
                $"A sequence of {seq} tokens exceeds this {_config.ModelType} model's sliding_window of {window}. " +
                "Sliding-window attention is not implemented; full causal attention equals it only up to the window " +
                $"length, so split sequences into chunks of at most {window} tokens.");
        }
    }

    private bool UseCheckpointing(Tensor hidden, LlamaDecoderLayer layer) =>
        GradientCheckpointing && torch.is_grad_enabled()
        && (hidden.requires_grad || layer.parameters().Any(parameter => parameter.requires_grad));
}
