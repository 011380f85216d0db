// Parameter counting through Axolotl's matching, and the mixed-precision AdamW memory estimate.
using Spectrum.Selection.Tests.Support;

namespace Spectrum.Selection.Tests;

public class TrainingMemoryTests
{
    [Fact]
    public void Llama3_8B_shapes_total_8_030_261_248_parameters_and_full_fine_tuning_takes_16_bytes_each()
    {
        var tensors = LlamaShape.Llama3_8B.Tensors();

        long total = ParameterCounts.Total(tensors);
        var full = TrainingMemoryEstimator.Estimate(total, ParameterCounts.Trainable(tensors, ["model", "lm_head"]));

        Assert.Equal(8_030_261_248L, total);
        Assert.Equal(total * 16, full.TotalBytes);
        Assert.Equal(128_484_179_968L, full.TotalBytes);
        Assert.Equal((16_060_522_496L, 32_121_044_992L, 16_060_522_496L, 64_242_089_984L),
            (full.WeightBytes, full.MasterWeightBytes, full.GradientBytes, full.OptimizerBytes));
    }

    [Fact]
    public void Trainable_counts_what_axolotl_unfreezes_including_biases_and_whole_tensors_for_row_ranges()
    {
        var tensors = new LlamaShape(Layers: 12, Hidden: 8, Intermediate: 16, Heads: 2, KeyValueHeads: 1, Vocabulary: 10, AttentionBias: true).Tensors();

        // Layer 1's q_proj: 8×8 weight + 8 bias; layer 10 and 11 share the "1" prefix but not "1.".
        Assert.Equal(64 + 8, ParameterCounts.Trainable(tensors, ["model.layers.1.self_attn.q_proj"]));
        Assert.Equal(80, ParameterCounts.Trainable(tensors, ["^model.embed_tokens.weight$[:3]"]));
        var summary = ParameterCounts.Count(tensors, ["model.layers.1.self_attn.k_proj", "^lm_head.weight$"]);
        Assert.Equal(["model.layers.1.self_attn.k_proj.weight", "model.layers.1.self_attn.k_proj.bias", "lm_head.weight"], summary.TrainableTensors);
        Assert.Equal(4 * 8 + 4 + 80, summary.Trainable);
        Assert.Equal(ParameterCounts.Total(tensors), ParameterCounts.Trainable(tensors, []));
    }

    [Fact]
    public void Custom_assumptions_change_each_part()
    {
        var fp32NoMaster = new TrainingMemoryAssumptions(WeightBytesPerParameter: 4, MasterWeightBytesPerTrainableParameter: 0,
            GradientBytesPerTrainableParameter: 4, OptimizerBytesPerTrainableParameter: 8);

        var estimate = TrainingMemoryEstimator.Estimate(1000, 100, fp32NoMaster);

        Assert.Equal(new MemoryEstimate(4000, 0, 400, 800), estimate);
        Assert.Equal(5200, estimate.TotalBytes);
        Assert.Equal(new MemoryEstimate(2000, 400, 200, 800), TrainingMemoryEstimator.Estimate(1000, 100));
    }

    [Fact]
    public void Inconsistent_counts_are_rejected_with_the_numbers()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => TrainingMemoryEstimator.Estimate(10, 11));
        Assert.Contains("at most the 10 parameters", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => TrainingMemoryEstimator.Estimate(-1, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => TrainingMemoryEstimator.Estimate(10, 1, new TrainingMemoryAssumptions(WeightBytesPerParameter: -2)));
        Assert.Throws<OverflowException>(() => TrainingMemoryEstimator.Estimate(long.MaxValue / 2 + 1, 0));
        Assert.Throws<ArgumentException>(() => ParameterCounts.Total([("a.weight", 1), ("a.weight", 2)]));
        Assert.Throws<ArgumentException>(() => ParameterCounts.Total([("a.weight", -1)]));
    }
}
