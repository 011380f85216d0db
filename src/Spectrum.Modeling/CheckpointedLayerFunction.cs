// Gradient checkpointing for one decoder layer as a custom autograd function: forward keeps only the layer input, backward recomputes the layer.
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Spectrum.Modeling;

/// <summary>
/// The reentrant scheme of torch.utils.checkpoint: forward runs with autograd off (so none of the layer's
/// activations are kept) and saves the input; backward re-runs the layer with autograd on and differentiates that
/// recomputation with <c>torch.autograd.grad</c>. The layer's trainable parameters are passed as inputs so the
/// outer graph routes their gradients to them. Like torch.utils.checkpoint's preserve_rng_state, forward saves the
/// global generator's state and backward recomputes from it (restoring the generator afterwards), so dropout inside
/// the layer (LoRA's) draws the same masks in the recomputation and the run's random stream is the one it would be
/// without checkpointing. The parameter set must not change between forward and backward (it is captured at forward time).
/// </summary>
internal sealed class CheckpointedLayerFunction : autograd.SingleTensorFunction<CheckpointedLayerFunction>
{
    private const int FixedArguments = 5; // layer, hidden, cos, sin, allowed pairs (empty: causal); trainable parameters follow

    public override string Name => nameof(CheckpointedLayerFunction);

    /// <summary>How many layer recomputations backward has run in this process; lets tests see checkpointing engage.</summary>
    internal static long Recomputations => Interlocked.Read(ref s_recomputations);

    private static long s_recomputations;

    /// <summary>hidden is (batch, seq, hidden); cos/sin are (batch, seq, head_dim); allowedPairs as <see cref="LlamaDecoderLayer.forward"/> takes it.</summary>
    public static Tensor Run(LlamaDecoderLayer layer, Tensor hidden, Tensor cos, Tensor sin, Tensor? allowedPairs)
    {
        // By the next forward the engine has consumed the last backward's gradients; don't carry them into it.
        ReturnedGradients.Release();
        var trainable = layer.parameters().Where(parameter => parameter.requires_grad).ToArray();
        var arguments = new object[FixedArguments + trainable.Length];
        arguments[0] = layer;
        arguments[1] = hidden;
        arguments[2] = cos;
        arguments[3] = sin;
        // Saved for backward like cos and sin, so it must be a tensor: an empty one stands for "causal".
        arguments[4] = allowedPairs ?? torch.empty(0, dtype: ScalarType.Bool);
        trainable.CopyTo(arguments, FixedArguments);
        return apply(arguments);
    }

    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var layer = (LlamaDecoderLayer)vars[0];
        var hidden = (Tensor)vars[1];
        ctx.save_for_backward([hidden, (Tensor)vars[2], (Tensor)vars[3], (Tensor)vars[4]]);
        ctx.save_data("layer", layer);
        ctx.save_data("parameters", vars.Skip(FixedArguments).Cast<Parameter>().ToArray());
        ctx.save_data("inputRequiresGrad", hidden.requires_grad);
        ctx.save_data("rngState", torch.random.get_rng_state().DetachFromDisposeScope());
        // TorchSharp calls forward with autograd disabled, so the layer's intermediates are freed right away.
        using var scope = torch.NewDisposeScope();
        return layer.call(hidden, (Tensor)vars[2], (Tensor)vars[3], AllowedPairsOrNull((Tensor)vars[4])).MoveToOuterDisposeScope();
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
    {
        var saved = ctx.get_saved_variables();
        var layer = (LlamaDecoderLayer)ctx.get_data("layer");
        var parameters = (Parameter[])ctx.get_data("parameters");
        bool inputRequiresGrad = (bool)ctx.get_data("inputRequiresGrad");

        Interlocked.Increment(ref s_recomputations);
        ReturnedGradients.Release();
        using var scope = torch.NewDisposeScope();
        using var gradMode = torch.enable_grad();
        var input = saved[0].detach().requires_grad_(inputRequiresGrad);
        using var forwardRng = (Tensor)ctx.get_data("rngState");
        var currentRng = torch.random.get_rng_state();
        Tensor output;
        torch.random.set_rng_state(forwardRng);
        try
        {
            output = layer.call(input, saved[1], saved[2], AllowedPairsOrNull(saved[3]));
        }
        finally
        {
            torch.random.set_rng_state(currentRng);
        }
        var inputs = new List<Tensor>();
        if (inputRequiresGrad)
        {
            inputs.Add(input);
        }
        inputs.AddRange(parameters);
        var gradients = torch.autograd.grad([output], inputs, [gradOutput]);

        // One entry per forward argument: null for the layer, cos, sin and the mask (no gradient), then the computed ones.
        var result = new List<Tensor> { null!, inputRequiresGrad ? gradients[0] : null!, null!, null!, null! };
        result.AddRange(gradients.Skip(inputRequiresGrad ? 1 : 0));
        // The engine copies the returned handles after we return, so ours must outlive this scope.
        return ReturnedGradients.Keep(result);
    }

    private static Tensor? AllowedPairsOrNull(Tensor saved) => saved.numel() == 0 ? null : saved;
}
