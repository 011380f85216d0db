// Checks the demo pipeline's guards: stages in order, only the methods it compares, and a valid selection percent.
using Spectrum.Training.Recipes;
using Spectrum.Training.Tests.TestSupport;

namespace Spectrum.Training.Tests.Recipes;

public sealed class DemoPipelineTests : IDisposable
{
    private readonly TempFolder _temp = new();
    private readonly string _folder;

    public DemoPipelineTests() => _folder = _temp.File("work");

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void Fine_tuning_before_pretraining_names_the_missing_stage()
    {
        var pipeline = new DemoPipeline(new DemoOptions { WorkFolder = _folder, Size = DemoSize.Quick });

        var error = Assert.Throws<InvalidOperationException>(() => pipeline.FineTune("full", FineTuneMethod.Full, null));
        Assert.Contains("Pretrain", error.Message);
        Assert.False(Directory.Exists(_folder));
    }

    [Fact]
    public void Methods_outside_the_comparison_are_refused_before_any_work()
    {
        var pipeline = new DemoPipeline(new DemoOptions { WorkFolder = _folder, Size = DemoSize.Quick });

        var error = Assert.Throws<TrainingConfigurationException>(() => pipeline.FineTune("LoRA", FineTuneMethod.Lora, null));
        Assert.Contains("lora", error.Message);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(120)]
    public void Percent_outside_0_to_100_is_refused(double percent)
    {
        var error = Assert.Throws<TrainingConfigurationException>(() => new DemoPipeline(new DemoOptions { WorkFolder = _folder, TopPercent = percent }));
        Assert.Contains("--top-percent", error.Message);
    }

    [Fact]
    public void Held_out_examples_are_the_requested_count_of_the_fine_tuning_task()
    {
        var pipeline = new DemoPipeline(new DemoOptions { WorkFolder = _folder, Size = DemoSize.Quick, TopPercent = 50 });

        Assert.Equal(DemoSize.Quick.EvaluationExamples, pipeline.HeldOutExamples.Count);
        Assert.All(pipeline.HeldOutExamples, e => Assert.Equal(DemoPipeline.FineTuneTask, e.Task));
        Assert.Equal(["full", "Spectrum-50"], pipeline.Methods.Select(m => m.Label));
    }

    [Fact]
    public void Each_run_reports_the_gradient_and_AdamW_bytes_of_what_it_trained()
    {
        var pipeline = new DemoPipeline(new DemoOptions { WorkFolder = _folder, Size = DemoSize.Quick, TopPercent = 25 });
        pipeline.Pretrain();
        string scan = Path.Combine(_folder, "snr_results.json");
        WriteScanRankingLayerZeroFirst(scan, pipeline.Size.Layers);

        var full = pipeline.FineTune("full", FineTuneMethod.Full, null);
        var spectrum = pipeline.FineTune("Spectrum-25", FineTuneMethod.Spectrum, scan);

        // float32 training: a gradient and two AdamW moments of 4 bytes for every trainable parameter, nothing for frozen ones.
        Assert.Equal(12 * full.TotalParameters, full.TrainingStateBytes);
        Assert.Equal(12 * spectrum.TrainableParameters, spectrum.TrainingStateBytes);
        Assert.True(spectrum.TrainingStateBytes < full.TrainingStateBytes / 2, $"{spectrum.TrainingStateBytes} vs {full.TrainingStateBytes}");
    }

    /// <summary>A reference-layout scan of every projection of the quick model, layer 0 scoring highest.</summary>
    private static void WriteScanRankingLayerZeroFirst(string path, int layers)
    {
        string[] types = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"];
        var entries = from layer in Enumerable.Range(0, layers)
                      from type in types
                      select $"\"model.layers.{layer}.{type}\": {{\"snr\": {layers - layer}.0, \"type\": \"{type}\"}}";
        File.WriteAllText(path, "{" + string.Join(", ", entries) + "}");
    }
}
