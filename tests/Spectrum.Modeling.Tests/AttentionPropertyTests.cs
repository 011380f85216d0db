// Properties any correct causal RoPE decoder has, checked on random inputs: only relative positions matter, and the future is invisible.
using FsCheck;
using FsCheck.Xunit;
using TorchSharp;
using static TorchSharp.torch;

namespace Spectrum.Modeling.Tests;

public sealed class AttentionPropertyTests
{
    private const long Sequence = 12;

    /// <summary>
    /// Large initial weights (std 0.5) make attention sharp, so position and mask errors move the logits by O(1);
    /// with Hugging Face's std 0.02 attention would be nearly uniform and insensitive.
    /// </summary>
    private static readonly Lazy<LlamaForCausalLM> Plain = new(() => Build(null));
    private static readonly Lazy<LlamaForCausalLM> Llama3Scaled = new(() => Build(LlamaRopeScaling.Llama3(8, 1, 4, 32)));

    private static LlamaForCausalLM Build(LlamaRopeScaling? scaling) =>
        new(LlamaConfig.Tiny(hiddenSize: 32, intermediateSize: 64, vocabSize: 50, ropeScaling: scaling) with
        {
            InitializerRange = 0.5,
        }, generator: new Generator(2024));

    /// <summary>
    /// Shifting every position of a row by the same amount leaves the logits unchanged: RoPE scores depend only on
    /// position differences. The bound covers float32 rounding of the angles (≈ position × 6e-8 rad) amplified by
    /// sharp attention (measured ≤ 1e-4 for shifts below 300); absolute-position mistakes change logits by ≥ 0.1 here.
    /// </summary>
    [Property(MaxTest = 16)]
    public bool Logits_depend_only_on_relative_positions(PositiveInt seed, NonNegativeInt shift, bool scaled)
    {
        var model = (scaled ? Llama3Scaled : Plain).Value;
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var ids = Tensors.RandomIds(2, Sequence, 50, seed.Get);
        var positions = torch.arange(Sequence, dtype: ScalarType.Int64).unsqueeze(0).expand(2, Sequence);
        var shifted = positions.add(torch.tensor(new long[] { shift.Get % 300, shift.Get % 97 }).unsqueeze(1));
        float difference = model.forward(ids, positions).sub(model.forward(ids, shifted)).abs().max().item<float>();
        return difference <= 5e-4f;
    }

    /// <summary>Changing tokens after position t leaves the logits at positions ≤ t unchanged (causal mask).</summary>
    [Property(MaxTest = 16)]
    public bool Later_tokens_do_not_change_earlier_logits(PositiveInt seed, PositiveInt cut)
    {
        var model = Plain.Value;
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        long keep = 1 + cut.Get % (Sequence - 1);
        var ids = Tensors.RandomIds(1, Sequence, 50, seed.Get);
        var changed = ids.clone();
        changed.narrow(1, keep, Sequence - keep).copy_(Tensors.RandomIds(1, Sequence - keep, 50, seed.Get + 1));
        var before = model.forward(ids).narrow(1, 0, keep);
        var after = model.forward(changed).narrow(1, 0, keep);
        return before.sub(after).abs().max().item<float>() <= 1e-5f;
    }

    /// <summary>Guards the two properties above against vacuity: on this model, positions and future tokens do matter.</summary>
    [Fact]
    public void Positions_and_future_tokens_visibly_change_logits_when_they_should()
    {
        var model = Plain.Value;
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var ids = Tensors.RandomIds(1, Sequence, 50, 7);
        var positions = torch.arange(Sequence, dtype: ScalarType.Int64).unsqueeze(0);
        var spread = positions.mul(3);
        Assert.True(model.forward(ids, positions).sub(model.forward(ids, spread)).abs().max().item<float>() > 0.1f);
        var changed = ids.clone();
        changed[0, 3] = torch.tensor((ids[0, 3].item<long>() + 1) % 50);
        Assert.True(model.forward(ids).sub(model.forward(changed)).narrow(1, 3, Sequence - 3).abs().max().item<float>() > 0.1f);
    }
}
