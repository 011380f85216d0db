// A tiny causal LM whose parameter names follow Hugging Face Llama keys, with a ReplaceModule hook like the real model's.
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Spectrum.Training.Tests.TestSupport;

/// <summary>
/// ids (batch, seq) → embed (H) → layers of x + dropout(down_proj(gelu(up_proj(x)))) → norm → lm_head → logits
/// (batch, seq, vocab). Names: model.embed_tokens.weight, model.layers.N.mlp.{up,down}_proj.{weight,bias},
/// model.norm.{weight,bias}, lm_head.weight. No attention: the tests exercise training machinery, not modelling.
/// </summary>
internal sealed class TinyCausalLm : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // Field names are the state-dict keys.
    private readonly TinyBackbone model;
    private nn.Module<Tensor, Tensor> lm_head;
#pragma warning restore IDE1006

    public TinyCausalLm(int vocab = 13, int hidden = 8, int layers = 2, double dropout = 0.0, long seed = 1) : base(nameof(TinyCausalLm))
    {
        torch.random.manual_seed(seed);
        Vocab = vocab;
        model = new TinyBackbone(vocab, hidden, layers, dropout);
        lm_head = nn.Linear(hidden, vocab, hasBias: false);
        RegisterComponents();
    }

    public int Vocab { get; }

    public override Tensor forward(Tensor ids)
    {
        using var scope = torch.NewDisposeScope();
        return lm_head.call(model.call(ids)).MoveToOuterDisposeScope();   // (b, s, vocab)
    }

    /// <summary>Swaps a module by its dotted name, as Spectrum.Modeling's model will.</summary>
    public void ReplaceModule(string dottedName, nn.Module<Tensor, Tensor> replacement)
    {
        if (dottedName == "lm_head")
        {
            lm_head = replacement;
            _internal_submodules["lm_head"] = replacement;
            return;
        }
        var parts = dottedName.Split('.');
        if (parts.Length == 5 && parts[0] == "model" && parts[1] == "layers" && parts[3] == "mlp")
        {
            model.Block(int.Parse(parts[2])).Mlp.Replace(parts[4], replacement);
            return;
        }
        throw new ArgumentException($"TinyCausalLm cannot replace \"{dottedName}\".");
    }

    public Dictionary<string, Tensor> SnapshotParameters() =>
        named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());

    private sealed class TinyBackbone : nn.Module<Tensor, Tensor>
    {
#pragma warning disable IDE1006
        private readonly Embedding embed_tokens;
        private readonly ModuleList<TinyBlock> layers;
        private readonly LayerNorm norm;
#pragma warning restore IDE1006

        public TinyBackbone(int vocab, int hidden, int layerCount, double dropout) : base(nameof(TinyBackbone))
        {
            embed_tokens = nn.Embedding(vocab, hidden);
            layers = new ModuleList<TinyBlock>(Enumerable.Range(0, layerCount).Select(_ => new TinyBlock(hidden, dropout)).ToArray());
            norm = nn.LayerNorm(hidden);
            RegisterComponents();
        }

        public TinyBlock Block(int index) => layers[index];

        public override Tensor forward(Tensor ids)
        {
            using var scope = torch.NewDisposeScope();
            var x = embed_tokens.call(ids);   // (b, s, h)
            foreach (var layer in layers)
                x = layer.call(x);
            return norm.call(x).MoveToOuterDisposeScope();
        }
    }

    internal sealed class TinyBlock : nn.Module<Tensor, Tensor>
    {
#pragma warning disable IDE1006
        private readonly TinyMlp mlp;
        private readonly Dropout dropout;
#pragma warning restore IDE1006

        public TinyBlock(int hidden, double p) : base(nameof(TinyBlock))
        {
            mlp = new TinyMlp(hidden);
            dropout = nn.Dropout(p);
            RegisterComponents();
        }

        public TinyMlp Mlp => mlp;

        public override Tensor forward(Tensor x)
        {
            using var scope = torch.NewDisposeScope();
            return (x + dropout.call(mlp.call(x))).MoveToOuterDisposeScope();
        }
    }

    internal sealed class TinyMlp : nn.Module<Tensor, Tensor>
    {
#pragma warning disable IDE1006
        private nn.Module<Tensor, Tensor> up_proj;
        private nn.Module<Tensor, Tensor> down_proj;
#pragma warning restore IDE1006

        public TinyMlp(int hidden) : base(nameof(TinyMlp))
        {
            up_proj = nn.Linear(hidden, 2 * hidden);
            down_proj = nn.Linear(2 * hidden, hidden);
            RegisterComponents();
        }

        public void Replace(string field, nn.Module<Tensor, Tensor> replacement)
        {
            switch (field)
            {
                case "up_proj": up_proj = replacement; break;
                case "down_proj": down_proj = replacement; break;
                default: throw new ArgumentException($"TinyMlp has no \"{field}\".");
            }
            _internal_submodules[field] = replacement;
        }

        public override Tensor forward(Tensor x)
        {
            using var scope = torch.NewDisposeScope();
            return down_proj.call(nn.functional.gelu(up_proj.call(x))).MoveToOuterDisposeScope();
        }
    }
}
