// The one ranking order for scores, total and deterministic even with ±Infinity and NaN.
namespace Spectrum.Selection;

/// <summary>
/// Best first: +Infinity, then finite values descending, then −Infinity, then NaN. Python's <c>sorted</c> gives
/// NaN no consistent place, so a NaN (a module the reference could not load) would land anywhere; here it is
/// always last, i.e. chosen only when every other module of its type is. Equal keys (including −0 and +0) compare
/// equal, so a stable sort keeps input order for ties, as Python's stable sort does.
/// </summary>
public static class ScoreOrder
{
    /// <summary>Negative when <paramref name="a"/> ranks before <paramref name="b"/>, zero for ties.</summary>
    public static int CompareDescending(double a, double b)
    {
        int byClass = Class(a).CompareTo(Class(b));
        if (byClass != 0)
            return byClass;
        return Class(a) == FiniteClass ? b.CompareTo(a) : 0;
    }

    /// <summary><see cref="CompareDescending"/> as a comparer, for <c>OrderBy</c> (which is stable).</summary>
    public static IComparer<double> Descending { get; } = Comparer<double>.Create(CompareDescending);

    /// <summary>The scores ranked best first; ties keep their input order.</summary>
    public static IReadOnlyList<ModuleScore> Rank(IEnumerable<ModuleScore> scores) =>
        scores.OrderBy(s => s.Score, Descending).ToList();

    private const int FiniteClass = 1;

    private static int Class(double value) => value switch
    {
        double.PositiveInfinity => 0,
        double.NegativeInfinity => 2,
        _ when double.IsNaN(value) => 3,
        _ => FiniteClass,
    };
}
