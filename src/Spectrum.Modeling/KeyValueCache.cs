// Keys and values of every decoder layer for the tokens seen so far, so generation runs each new token through the model once.
using TorchSharp;
using static TorchSharp.torch;

namespace Spectrum.Modeling;

/// <summary>
/// Made by <see cref="LlamaForCausalLM.CreateCache"/> and filled by <see cref="LlamaForCausalLM.NextTokenLogits"/>.
/// Storage for <see cref="Capacity"/> positions is allocated up front (per layer: batch × kv_heads × capacity ×
/// head_dim twice, in the model's dtype), so a long generation does not grow and copy it token by token.
/// </summary>
public sealed class KeyValueCache : IDisposable
{
    private readonly Tensor[] _keys;
    private readonly Tensor[] _values;

    internal KeyValueCache(LlamaConfig config, long batch, long capacity, ScalarType dtype, Device device)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batch, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        Batch = batch;
        Capacity = capacity;
        _keys = new Tensor[config.NumHiddenLayers];
        _values = new Tensor[config.NumHiddenLayers];
        for (int layer = 0; layer < config.NumHiddenLayers; layer++)
        {
            // Owned by the cache, not by whatever dispose scope the caller happens to be in.
            _keys[layer] = torch.zeros(batch, config.NumKeyValueHeads, capacity, config.HeadDim, dtype: dtype, device: device).DetachFromDisposeScope();
            _values[layer] = torch.zeros(batch, config.NumKeyValueHeads, capacity, config.HeadDim, dtype: dtype, device: device).DetachFromDisposeScope();
        }
    }

    /// <summary>Rows of tokens (the batch size every call must use).</summary>
    public long Batch { get; }

    /// <summary>The most positions it can hold: prompt and generated tokens together.</summary>
    public long Capacity { get; }

    /// <summary>Positions filled so far; the next tokens get positions from here.</summary>
    public long Length { get; private set; }

    /// <summary>Bytes held by the stored keys and values.</summary>
    public long Bytes => _keys.Sum(t => t.NumberOfElements * t.ElementSize) * 2;

    /// <summary>Forgets every position (the storage is kept), to start a new prompt.</summary>
    public void Clear() => Length = 0;

    /// <summary>
    /// Writes k and v, (batch, kv_heads, new, head_dim), at positions Length.. of <paramref name="layer"/> and returns
    /// views of that layer's keys and values for positions 0 .. Length + new.
    /// </summary>
    internal (Tensor Keys, Tensor Values) Store(int layer, Tensor k, Tensor v)
    {
        long added = k.shape[2];
        _keys[layer].narrow(2, Length, added).copy_(k);
        _values[layer].narrow(2, Length, added).copy_(v);
        return (_keys[layer].narrow(2, 0, Length + added), _values[layer].narrow(2, 0, Length + added));
    }

    /// <summary>Called once every layer has stored the new tokens.</summary>
    internal void Advance(long added) => Length += added;

    public void Dispose()
    {
        foreach (var tensor in _keys.Concat(_values))
            tensor.Dispose();
    }
}
