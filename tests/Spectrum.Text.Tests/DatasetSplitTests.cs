// The train/validation split: deterministic for a seed, disjoint and complete, sized as documented.
namespace Spectrum.Text.Tests;

public sealed class DatasetSplitTests
{
    private static readonly int[] Records = Enumerable.Range(0, 100).ToArray();

    [Fact]
    public void SameSeedGivesTheSameSplitAndAnotherSeedAnother()
    {
        var first = DatasetSplit.Split(Records, 0.2, seed: 7);
        var again = DatasetSplit.Split(Records, 0.2, seed: 7);
        var other = DatasetSplit.Split(Records, 0.2, seed: 8);

        Assert.Equal(first.Validation, again.Validation);
        Assert.Equal(first.Train, again.Train);
        Assert.NotEqual(first.Validation, other.Validation);
    }

    [Fact]
    public void PartsAreDisjointCompleteAndInOriginalOrder()
    {
        var split = DatasetSplit.Split(Records, 0.25, seed: 3);

        Assert.Equal(25, split.Validation.Count);
        Assert.Equal(Records, split.Train.Concat(split.Validation).Order());
        Assert.Empty(split.Train.Intersect(split.Validation));
        Assert.Equal(split.Train.Order(), split.Train);
        Assert.Equal(split.Validation.Order(), split.Validation);
    }

    [Fact]
    public void ValidationIsNotJustTheFirstRecords()
    {
        var split = DatasetSplit.Split(Records, 0.1, seed: 1);

        Assert.NotEqual(Records.Take(10), split.Validation);
    }

    [Theory]
    [InlineData(0.0, 10, 0)]
    [InlineData(0.01, 10, 1)]  // any positive fraction keeps at least one record for validation
    [InlineData(0.5, 3, 2)]    // 1.5 rounds away from zero
    [InlineData(0.99, 10, 9)]  // and at least one for training
    public void ValidationSize(double fraction, int count, int expectedValidation)
    {
        var split = DatasetSplit.Split(Enumerable.Range(0, count).ToArray(), fraction, seed: 0);

        Assert.Equal(expectedValidation, split.Validation.Count);
        Assert.Equal(count - expectedValidation, split.Train.Count);
    }

    [Theory]
    [InlineData(-0.1)]
    [InlineData(1.0)]
    [InlineData(double.NaN)]
    public void FractionOutsideZeroToOneIsRefused(double fraction)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => DatasetSplit.Split(Records, fraction, seed: 0));
    }
}
