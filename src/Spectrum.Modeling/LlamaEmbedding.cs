// The token embedding table ("model.embed_tokens.weight", (vocab, hidden)); also the output head's weight when embeddings are tied.
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Spectrum.Modeling;

public sealed class LlamaEmbedding : nn.Module<Tensor, Tensor>
{
    private readonly long _vocabSize;

    // Named like the checkpoint key ("model.embed_tokens.weight").
    private readonly Parameter weight;

    public LlamaEmbedding(long vocabSize, long hiddenSize, ScalarType dtype, Device? device) : base(nameof(LlamaEmbedding))
    {
        _vocabSize = vocabSize;
        weight = new Parameter(torch.empty([vocabSize, hiddenSize], dtype: dtype, device: device), requires_grad: true);
        register_parameter(nameof(weight), weight);
    }

    public Parameter Weight => weight;

    /// <summary>inputIds is (batch, seq) int64 in [0, vocab); returns (batch, seq, hidden).</summary>
    /// <exception cref="ArgumentException">Wrong dtype or rank, or an id outside the vocabulary.</exception>
    public override Tensor forward(Tensor inputIds)
    {
        if (inputIds.dtype != ScalarType.Int64 || inputIds.dim() != 2)
        {
            throw new ArgumentException(
                $"input ids must be a (batch, seq) int64 tensor; found {inputIds.dtype} with shape " +
                $"[{string.Join(", ", inputIds.shape)}]. Convert token ids with .to(torch.int64) and add a batch dimension.");
        }
        if (inputIds.device_type != DeviceType.META && inputIds.numel() > 0)
        {
            // An out-of-range id would otherwise surface as an opaque native index error.
            var (smallest, largest) = IndexRange.Of(inputIds);
            if (smallest < 0 || largest >= _vocabSize)
            {
                throw new ArgumentException(
                    $"input ids range over [{smallest}, {largest}], but the vocabulary is [0, {_vocabSize}); the " +
                    "tokenizer does not match this model (check vocab_size in config.json).");
            }
        }
        using var scope = torch.NewDisposeScope();
        long batch = inputIds.shape[0], seq = inputIds.shape[1];
        var rows = weight.index_select(0, inputIds.reshape(-1));                          // (batch·seq, hidden)
        return rows.view(batch, seq, -1).MoveToOuterDisposeScope();
    }
}
