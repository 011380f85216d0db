// Per-type top-percent selection: exact floor counts, first-seen type order, stable ranking, argument checks.
namespace Spectrum.Selection.Tests;

public class TopPercentSelectionTests
{
    [Theory]
    [InlineData(28, 25.0, 7)]
    [InlineData(32, 25.0, 8)]
    [InlineData(32, 50.0, 16)]
    [InlineData(1, 50.0, 0)]
    [InlineData(1, 100.0, 1)]
    [InlineData(3, 33.3, 0)]
    [InlineData(3, 33.34, 1)]
    // In double, 375 * 36.8 / 100 = 137.99999999999997 and 300 * (41.0 / 100) = 122.99999999999999.
    [InlineData(375, 36.8, 138)]
    [InlineData(625, 11.04, 69)]
    [InlineData(300, 41.0, 123)]
    [InlineData(400, 28.75, 115)]
    [InlineData(0, 50.0, 0)]
    [InlineData(1000, 5e-324, 0)]
    public void KeepCount_is_the_exact_floor_of_count_times_percent_over_100(int count, double percent, int expected) =>
        Assert.Equal(expected, TopPercentSelection.KeepCount(count, percent));

    [Theory]
    [InlineData(0.0)]
    [InlineData(-5.0)]
    [InlineData(100.0001)]
    [InlineData(double.NaN)]
    [InlineData(double.PositiveInfinity)]
    public void Select_rejects_a_percent_outside_0_to_100_and_says_what_is_expected(double percent)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => TopPercentSelection.Select([new ModuleScore("m.0.a", "a", 1)], percent));
        Assert.Contains("(0, 100]", e.Message);
        Assert.Contains("Spectrum-25", e.Message);
    }

    [Fact]
    public void Select_keeps_types_in_first_seen_order_and_ranks_within_each_type()
    {
        ModuleScore S(string module, double score) => new(module, ModuleTypes.TypeOf(module), score);
        var scores = new[]
        {
            S("model.layers.0.mlp.up_proj", 1), S("model.layers.0.self_attn.q_proj", 0.1),
            S("model.layers.1.mlp.up_proj", 3), S("model.layers.1.self_attn.q_proj", 0.3),
            S("model.layers.2.mlp.up_proj", 2), S("model.layers.2.self_attn.q_proj", 0.2),
            S("model.layers.3.mlp.up_proj", double.NaN), S("model.layers.3.self_attn.q_proj", double.PositiveInfinity),
        };

        var selection = TopPercentSelection.Select(scores, 50);

        Assert.Equal(["mlp.up_proj", "self_attn.q_proj"], selection.Types.Select(t => t.Type));
        Assert.Equal(50, selection.Percent);
        Assert.Equal(
            ["model.layers.1.mlp.up_proj", "model.layers.2.mlp.up_proj", "model.layers.3.self_attn.q_proj", "model.layers.1.self_attn.q_proj"],
            selection.SelectedModules);
        var up = selection.Types[0];
        Assert.Equal(["model.layers.1.mlp.up_proj", "model.layers.2.mlp.up_proj", "model.layers.0.mlp.up_proj", "model.layers.3.mlp.up_proj"],
            up.Ranked.Select(s => s.Module));
        Assert.Equal((4, 2, 1.0, 3.0), (up.Count, up.SelectedCount, up.MinScore, up.MaxScore));
        Assert.Equal((0.1, double.PositiveInfinity), (selection.Types[1].MinScore, selection.Types[1].MaxScore));
    }

    [Fact]
    public void A_type_of_only_nan_scores_has_nan_min_and_max_and_nan_is_chosen_last()
    {
        var selection = TopPercentSelection.Select(
            [new ModuleScore("a.0.x", "x", double.NaN), new ModuleScore("a.1.x", "x", double.NaN)], 50);

        var type = Assert.Single(selection.Types);
        Assert.True(double.IsNaN(type.MinScore) && double.IsNaN(type.MaxScore));
        Assert.Equal(["a.0.x"], selection.SelectedModules);
    }

    [Fact]
    public void Select_rejects_a_module_listed_twice()
    {
        var e = Assert.Throws<ArgumentException>(() => TopPercentSelection.Select(
            [new ModuleScore("m.0.a", "a", 1), new ModuleScore("m.1.a", "a", 2), new ModuleScore("m.0.a", "a", 3)], 50));
        Assert.Contains("\"m.0.a\" appears twice (entries 0 and 2)", e.Message);
    }

    [Fact]
    public void TypeSelection_rejects_a_selected_count_larger_than_the_type()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new TypeSelection("a", [new ModuleScore("m.0.a", "a", 1)], 2));
    }
}
