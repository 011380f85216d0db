// Deterministic batches for trainer tests: batch i depends only on (seed, i), so the position alone is the state.
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace Spectrum.Training.Tests.TestSupport;

/// <summary>
/// Random tokens in [0, vocab); labels equal the ids except position 0 and every 5th position, set to −100. With
/// <paramref name="documentLength"/> &gt; 0 each row packs documents of that many tokens (document ids t / length).
/// </summary>
internal sealed class ToyBatchSource(int vocab, int batch, int seq, int seed, int batchesPerEpoch = 4, int documentLength = 0) : IBatchSource, IEpochAware
{
    public int Position { get; private set; }

    public double Epoch => (double)Position / batchesPerEpoch;

    public Batch Next()
    {
        var random = new Random(unchecked(seed * 1_000_003 + Position));
        Position++;
        var ids = new long[batch * seq];
        var labels = new long[batch * seq];
        for (int i = 0; i < ids.Length; i++)
        {
            ids[i] = random.Next(vocab);
            labels[i] = i % seq == 0 || i % 5 == 3 ? CausalLmLoss.IgnoreIndex : ids[i];
        }
        var documents = documentLength > 0
            ? torch.tensor(Enumerable.Range(0, batch * seq).Select(i => (long)(i % seq / documentLength)).ToArray()).view(batch, seq)
            : null;
        return new Batch(torch.tensor(ids).view(batch, seq), torch.tensor(labels).view(batch, seq), documents);
    }

    public string SaveState() => JsonSerializer.Serialize(new { position = Position });

    public void RestoreState(string state) =>
        Position = JsonDocument.Parse(state).RootElement.GetProperty("position").GetInt32();
}

/// <summary>Concatenates k consecutive batches of an inner source along the batch dimension: one batch k times larger.</summary>
internal sealed class ConcatenatingSource(IBatchSource inner, int k) : IBatchSource
{
    public Batch Next()
    {
        var parts = Enumerable.Range(0, k).Select(_ => inner.Next()).ToList();
        var batch = new Batch(torch.cat(parts.Select(p => p.InputIds).ToArray(), 0), torch.cat(parts.Select(p => p.Labels).ToArray(), 0));
        foreach (var part in parts)
            part.Dispose();
        return batch;
    }

    public string SaveState() => inner.SaveState();

    public void RestoreState(string state) => inner.RestoreState(state);
}
