// Deterministic train/validation split of records by a seeded permutation.
namespace Spectrum.Text;

public sealed record TrainValidationSplit<T>(IReadOnlyList<T> Train, IReadOnlyList<T> Validation);

public static class DatasetSplit
{
    /// <summary>
    /// Validation gets round(count × fraction) records chosen by a seeded permutation (at least one when the fraction
    /// is above zero, and never all of them); both parts keep the records' original order. The same records, fraction
    /// and seed always give the same split.
    /// </summary>
    public static TrainValidationSplit<T> Split<T>(IReadOnlyList<T> records, double validationFraction, int seed)
    {
        ArgumentNullException.ThrowIfNull(records);
        if (!(validationFraction >= 0 && validationFraction < 1))
        {
            throw new ArgumentOutOfRangeException(nameof(validationFraction), validationFraction,
                "The validation fraction must be at least 0 and below 1.");
        }
        int validationCount = (int)Math.Round(records.Count * validationFraction, MidpointRounding.AwayFromZero);
        if (validationFraction > 0)
        {
            validationCount = Math.Clamp(validationCount, 1, records.Count - 1);
        }
        if (validationCount <= 0)
        {
            return new TrainValidationSplit<T>(records.ToList(), []);
        }
        // Stream -1 keeps the split independent of BatchCursor's per-epoch orders (streams 0, 1, ...) under the same seed.
        int[] order = SeededRandom.ForStream(seed, -1).Permutation(records.Count);
        var validationIndices = new HashSet<int>(order.Take(validationCount));
        var train = new List<T>(records.Count - validationCount);
        var validation = new List<T>(validationCount);
        for (int i = 0; i < records.Count; i++)
        {
            (validationIndices.Contains(i) ? validation : train).Add(records[i]);
        }
        return new TrainValidationSplit<T>(train, validation);
    }
}
