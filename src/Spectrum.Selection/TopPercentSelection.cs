// Spectrum's selection rule: within each module type keep the best floor(count × percent / 100) modules.
using System.Globalization;

namespace Spectrum.Selection;

/// <summary>
/// Selection is per type because score ranges differ by orders of magnitude between types (in the published
/// Llama-3-8B scan q_proj spans 0.07–0.13 while v_proj spans 3.5–151), so a global ranking would pick one type only.
/// </summary>
public static class TopPercentSelection
{
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="percent"/> is not in (0, 100].</exception>
    /// <exception cref="ArgumentException">A module appears twice in <paramref name="scores"/>.</exception>
    public static SelectionResult Select(IReadOnlyList<ModuleScore> scores, double percent)
    {
        ArgumentNullException.ThrowIfNull(scores);
        if (!(percent > 0 && percent <= 100))
            throw new ArgumentOutOfRangeException(nameof(percent), percent,
                $"The top percent must be in (0, 100]; got {percent.ToString("R", CultureInfo.InvariantCulture)}. " +
                "It is a percentage of each module type, e.g. 25 for Spectrum-25 or 50 for Spectrum-50 (the reference's default).");

        var groups = new Dictionary<string, List<ModuleScore>>(StringComparer.Ordinal);
        var typeOrder = new List<string>();
        var positions = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < scores.Count; i++)
        {
            var score = scores[i];
            if (score?.Module is null || score.Type is null)
                throw new ArgumentException($"Score {i} is null or has no module or type name; every entry needs both.", nameof(scores));
            if (!positions.TryAdd(score.Module, i))
                throw new ArgumentException(
                    $"Module \"{score.Module}\" appears twice (entries {positions[score.Module]} and {i}); " +
                    "each module must have one score. Remove the duplicate from the scan results.", nameof(scores));
            if (!groups.TryGetValue(score.Type, out var members))
            {
                members = [];
                groups.Add(score.Type, members);
                typeOrder.Add(score.Type);
            }
            members.Add(score);
        }

        var types = typeOrder
            .Select(type => new TypeSelection(type, ScoreOrder.Rank(groups[type]), KeepCount(groups[type].Count, percent)))
            .ToList();
        return new SelectionResult(types, percent);
    }

    /// <summary>
    /// floor(count × percent / 100), computed in decimal from the shortest decimal form of <paramref name="percent"/>,
    /// so a percent typed as 36.8 means exactly 36.8: in double, 375 × 36.8 / 100 is 137.99999999999997 and would
    /// keep 137 modules instead of 138. For whole percents this equals the reference's <c>int(n * p / 100)</c>.
    /// </summary>
    public static int KeepCount(int count, double percent)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (!(percent > 0 && percent <= 100))
            throw new ArgumentOutOfRangeException(nameof(percent), percent, "The top percent must be in (0, 100].");
        decimal exactPercent = decimal.Parse(percent.ToString("R", CultureInfo.InvariantCulture),
            NumberStyles.Float, CultureInfo.InvariantCulture);
        return (int)decimal.Floor(count * exactPercent / 100m);
    }
}
