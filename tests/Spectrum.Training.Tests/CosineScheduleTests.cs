// The schedule against closed-form values of linear warm-up and half-cosine decay.
namespace Spectrum.Training.Tests;

public sealed class CosineScheduleTests
{
    [Theory]
    [InlineData(0, 0.0)]
    [InlineData(5, 0.5)]
    [InlineData(10, 1.0)]
    [InlineData(35, 0.85355339059327373)]   // progress 1/4: (1 + cos(π/4)) / 2
    [InlineData(60, 0.5)]                   // progress 1/2
    [InlineData(85, 0.14644660940672624)]   // progress 3/4: (1 − cos(π/4)) / 2
    [InlineData(110, 0.0)]
    [InlineData(200, 0.0)]
    public void WarmupThenHalfCosineLikeHf(int step, double expected) =>
        Assert.Equal(expected, new CosineSchedule(10, 110).Multiplier(step), 12);

    [Theory]
    [InlineData(0, 0.0)]
    [InlineData(10, 1.0)]
    [InlineData(60, 0.55)]    // 0.1 + 0.9 · 0.5
    [InlineData(110, 0.1)]
    public void AFloorRatioRescalesTheCosine(int step, double expected) =>
        Assert.Equal(expected, new CosineSchedule(10, 110, minLrRatio: 0.1).Multiplier(step), 12);

    [Fact]
    public void WithoutWarmupTheFirstStepUsesTheFullRate()
    {
        var schedule = new CosineSchedule(0, 4);
        Assert.Equal(2e-4, schedule.LearningRate(2e-4, 0), 15);
        Assert.Equal(1e-4, schedule.LearningRate(2e-4, 2), 15);
    }

    [Fact]
    public void WarmupLongerThanTrainingNamesBothOptions()
    {
        var error = Assert.Throws<TrainingConfigurationException>(() => new CosineSchedule(20, 10));
        Assert.Contains("WarmupSteps", error.Message);
        Assert.Contains("TotalSteps", error.Message);
    }

    [Theory]
    [InlineData(-1, 10, 0.0)]
    [InlineData(0, 0, 0.0)]
    [InlineData(0, 10, 1.5)]
    public void InvalidSettingsAreRejected(int warmup, int total, double ratio) =>
        Assert.Throws<TrainingConfigurationException>(() => new CosineSchedule(warmup, total, ratio));
}
