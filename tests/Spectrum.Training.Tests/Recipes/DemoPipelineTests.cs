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
}
