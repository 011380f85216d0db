// The ranking order: +Infinity, finite descending, -Infinity, NaN; a total order, stable for ties.
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace Spectrum.Selection.Tests;

public class ScoreOrderTests
{
    [Fact]
    public void Rank_puts_infinity_first_then_finite_descending_then_negative_infinity_then_nan_keeping_ties_in_input_order()
    {
        var scores = new (string Module, double Score)[]
        {
            ("nan-a", double.NaN), ("one", 1), ("-inf", double.NegativeInfinity), ("inf-a", double.PositiveInfinity),
            ("three", 3), ("minus-two", -2), ("nan-b", double.NaN), ("inf-b", double.PositiveInfinity),
            ("zero-negative", -0.0), ("zero-positive", 0.0), ("max", double.MaxValue), ("tiny", double.Epsilon),
        }.Select(s => new ModuleScore(s.Module, "t", s.Score)).ToList();

        var ranked = ScoreOrder.Rank(scores).Select(s => s.Module).ToList();

        Assert.Equal(
            ["inf-a", "inf-b", "max", "three", "one", "tiny", "zero-negative", "zero-positive", "minus-two", "-inf", "nan-a", "nan-b"],
            ranked);
    }

    private static readonly double[] Specials =
        [double.NaN, double.PositiveInfinity, double.NegativeInfinity, 0.0, -0.0, 1, -1, double.MaxValue, double.Epsilon];

    private static Arbitrary<double> Scores() =>
        Gen.OneOf(Gen.Elements(Specials), Gen.Choose(-1000, 1000).Select(i => i / 8.0)).ToArbitrary();

    [Property(MaxTest = 300)]
    public Property CompareDescending_is_antisymmetric_and_transitive() =>
        Prop.ForAll(Scores(), Scores(), Scores(), (a, b, c) =>
        {
            bool antisymmetric = Math.Sign(ScoreOrder.CompareDescending(a, b)) == -Math.Sign(ScoreOrder.CompareDescending(b, a));
            bool transitive = !(ScoreOrder.CompareDescending(a, b) <= 0 && ScoreOrder.CompareDescending(b, c) <= 0)
                              || ScoreOrder.CompareDescending(a, c) <= 0;
            bool reflexive = ScoreOrder.CompareDescending(a, a) == 0;
            return antisymmetric && transitive && reflexive;
        });

    [Property(MaxTest = 300)]
    public Property CompareDescending_agrees_with_descending_numeric_order_for_non_nan_values() =>
        Prop.ForAll(Scores(), Scores(), (a, b) =>
            double.IsNaN(a) || double.IsNaN(b) || Math.Sign(ScoreOrder.CompareDescending(a, b)) == Math.Sign(b.CompareTo(a)));
}
