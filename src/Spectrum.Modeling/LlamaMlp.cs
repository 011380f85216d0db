// The SwiGLU feed-forward block of a Llama-family decoder layer, with HF-named, replaceable gate/up/down projections.
using TorchSharp;
using static TorchSharp.torch;

namespace Spectrum.Modeling;

public sealed class LlamaMlp : nn.Module<Tensor, Tensor>
{
    public static IReadOnlyList<string> ProjectionNames { get; } = ["gate_proj", "up_proj", "down_proj"];

    // Field names are the checkpoint keys ("…mlp.gate_proj.weight").
    private nn.Module<Tensor, Tensor> gate_proj;
    private nn.Module<Tensor, Tensor> up_proj;
    private nn.Module<Tensor, Tensor> down_proj;

    public LlamaMlp(LlamaConfig config, ScalarType dtype, Device? device) : base(nameof(LlamaMlp))
    {
        gate_proj = LinearFactory.Create(config.HiddenSize, config.IntermediateSize, bias: false, dtype, device);
        up_proj = LinearFactory.Create(config.HiddenSize, config.IntermediateSize, bias: false, dtype, device);
        down_proj = LinearFactory.Create(config.IntermediateSize, config.HiddenSize, bias: false, dtype, device);
        register_module(nameof(gate_proj), gate_proj);
        register_module(nameof(up_proj), up_proj);
        register_module(nameof(down_proj), down_proj);
    }

    public nn.Module<Tensor, Tensor> GetProjection(string name) => name switch
    {
        nameof(gate_proj) => gate_proj,
        nameof(up_proj) => up_proj,
        nameof(down_proj) => down_proj,
        _ => throw UnknownProjection(name),
    };

    internal void ReplaceProjection(string name, nn.Module<Tensor, Tensor> replacement)
    {
        switch (name)
        {
            case nameof(gate_proj): gate_proj = replacement; break;
            case nameof(up_proj): up_proj = replacement; break;
            case nameof(down_proj): down_proj = replacement; break;
            default: throw UnknownProjection(name);
        }
        SubmoduleSlots.Replace(_internal_submodules, this, name, replacement);
    }

    /// <summary>x is (batch, seq, hidden): down(silu(gate(x)) · up(x)), through (batch, seq, intermediate).</summary>
    public override Tensor forward(Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        var gated = nn.functional.silu(gate_proj.call(x)).mul(up_proj.call(x));           // (batch, seq, intermediate)
        return down_proj.call(gated).MoveToOuterDisposeScope();
    }

    private static ArgumentException UnknownProjection(string name) =>
        new($"'{name}' is not an MLP projection; expected one of {string.Join(", ", ProjectionNames)}.");
}
