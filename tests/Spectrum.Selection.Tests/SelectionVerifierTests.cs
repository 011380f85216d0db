// The rendered YAML, read back and applied as Axolotl would, unfreezes exactly the selection: a property over random models.
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Spectrum.Selection.Tests.Support;

namespace Spectrum.Selection.Tests;

public class SelectionVerifierTests
{
    public enum ExtrasMode { None, PresentInModel, AlwaysLikeTheReference }

    /// <param name="PercentHundredths">The percent × 100, so the test can compute floor(n·p/100) in integers.</param>
    /// <param name="Seed">Drives the scores, which include ties, ±Infinity and NaN.</param>
    public sealed record Scenario(int Layers, bool Bias, bool Tied, string[] ScoredTypes, int PercentHundredths, ExtrasMode Extras, int Seed);

    private static readonly string[] AllTypes =
        [.. LlamaShape.LinearModules, .. LlamaShape.NormModules, "model.norm", "lm_head", "model.embed_tokens"];

    private static Arbitrary<Scenario> Scenarios() =>
        (from layers in Gen.Choose(1, 13)
         from bias in Gen.Elements(true, false)
         from tied in Gen.Elements(true, false)
         from types in Gen.SubListOf(AllTypes)
         from percent in Gen.OneOf(Gen.Choose(1, 100).Select(p => p * 100), Gen.Choose(1, 10_000))
         from extras in Gen.Elements(ExtrasMode.None, ExtrasMode.PresentInModel, ExtrasMode.AlwaysLikeTheReference)
         from seed in Gen.Choose(0, int.MaxValue)
         select new Scenario(layers, bias, tied, types.ToArray(), percent, extras, seed)).ToArbitrary();

    [Property(MaxTest = 150)]
    public Property Rendered_patterns_unfreeze_exactly_the_selected_modules_parameters_plus_the_extras() =>
        Prop.ForAll(Scenarios(), scenario =>
        {
            var names = new LlamaShape(scenario.Layers, 64, 128, 4, 2, 100, scenario.Tied, scenario.Bias).Tensors().Select(t => t.Name).ToList();
            var random = new Random(scenario.Seed);
            double[] pool = [double.PositiveInfinity, double.NegativeInfinity, double.NaN, 0, 1, 2];
            var scores = names.Select(ModuleTypes.ModuleNameOf).Distinct()
                .Where(m => scenario.ScoredTypes.Contains(ModuleTypes.TypeOf(m)))
                .Select(m => new ModuleScore(m, ModuleTypes.TypeOf(m), random.Next(3) == 0 ? pool[random.Next(pool.Length)] : random.NextDouble()))
                .ToList();
            IReadOnlyList<string> extras = scenario.Extras switch
            {
                ExtrasMode.None => [],
                ExtrasMode.PresentInModel => AxolotlYaml.ReferenceExtraParameterNames.Where(names.Contains).ToList(),
                _ => AxolotlYaml.ReferenceExtraParameterNames,
            };
            double percent = scenario.PercentHundredths / 100.0;

            var selection = TopPercentSelection.Select(scores, percent);

            foreach (var type in selection.Types)
                Assert.Equal(type.Count * scenario.PercentHundredths / 10_000, type.SelectedCount);
            var selected = selection.SelectedModules.ToHashSet();
            if (selected.Count == 0 && extras.Count == 0)
            {
                Assert.Throws<ArgumentException>(() => AxolotlYaml.Render(selection, extras));
                return;
            }
            var patterns = AxolotlYaml.ParsePatterns(AxolotlYaml.Render(selection, extras), "scenario.yaml");
            var expected = names.Where(n => extras.Contains(n) || selected.Contains(ModuleTypes.ModuleNameOf(n))).ToList();

            Assert.Equal(expected, SelectionVerifier.UnfrozenParameters(patterns, names));

            var check = SelectionVerifier.Check(selection, extras, names);
            Assert.Empty(check.Unexpected);
            Assert.Empty(check.ModulesWithoutParameters);
            Assert.Equal(extras.Where(e => !names.Contains(e)), check.Missed);
        });

    [Fact]
    public void An_empty_pattern_list_unfreezes_everything_because_axolotl_then_skips_freezing()
    {
        Assert.Equal(["a.weight", "b.weight"], SelectionVerifier.UnfrozenParameters([], ["a.weight", "b.weight"]));
    }

    [Fact]
    public void Check_reports_a_module_pattern_that_also_catches_a_longer_sibling_name()
    {
        // Axolotl matches prefixes, so a module "x.gate" would also unfreeze "x.gate_proj.weight".
        var selection = TopPercentSelection.Select([new ModuleScore("model.layers.0.mlp.gate", "mlp.gate", 1)], 100);

        var check = SelectionVerifier.Check(selection, [],
            ["model.layers.0.mlp.gate.weight", "model.layers.0.mlp.gate_proj.weight", "model.layers.1.mlp.gate.weight"]);

        Assert.False(check.IsExact);
        Assert.Equal(["model.layers.0.mlp.gate_proj.weight"], check.Unexpected);
        Assert.Equal(["model.layers.0.mlp.gate.weight", "model.layers.0.mlp.gate_proj.weight"], check.Unfrozen);
    }

    [Fact]
    public void Check_reports_selected_modules_missing_from_the_model()
    {
        var selection = TopPercentSelection.Select([new ModuleScore("model.layers.5.mlp.up_proj", "mlp.up_proj", 1)], 100);

        var check = SelectionVerifier.Check(selection, ["lm_head.weight"], ["model.layers.0.mlp.up_proj.weight", "lm_head.weight"]);

        Assert.Equal(["model.layers.5.mlp.up_proj"], check.ModulesWithoutParameters);
        Assert.Empty(check.Missed);
        Assert.False(check.IsExact);
    }
}
