// The Axolotl YAML: golden text, YamlDotNet-parsable, odd names escaped and quoted, strict reading with line numbers.
using Spectrum.Selection.Tests.Support;
using YamlDotNet.RepresentationModel;

namespace Spectrum.Selection.Tests;

public class AxolotlYamlTests
{
    private static SelectionResult SmallSelection() => TopPercentSelection.Select(
    [
        new ModuleScore("model.layers.0.self_attn.v_proj", "self_attn.v_proj", 3.5),
        new ModuleScore("model.layers.1.self_attn.v_proj", "self_attn.v_proj", 151),
        new ModuleScore("model.layers.0.mlp.down_proj", "mlp.down_proj", 13.5),
        new ModuleScore("model.layers.1.mlp.down_proj", "mlp.down_proj", 15.8),
        new ModuleScore("model.layers.2.mlp.down_proj", "mlp.down_proj", 6.8),
        new ModuleScore("model.layers.3.mlp.down_proj", "mlp.down_proj", 4.5),
        new ModuleScore("lm_head", "lm_head", 0.9),
    ], 50);

    [Fact]
    public void Render_writes_the_reference_layout()
    {
        string yaml = AxolotlYaml.Render(SmallSelection(), ["lm_head.weight", "model.embed_tokens.weight"]);

        Assert.Equal("""
            unfrozen_parameters:
            - ^lm_head.weight$
            - ^model.embed_tokens.weight$
            # self_attn.v_proj layers
            - model.layers.1.self_attn.v_proj
            # mlp.down_proj layers
            - model.layers.1.mlp.down_proj
            - model.layers.0.mlp.down_proj
            # lm_head layers

            """, yaml);
    }

    [Fact]
    public void Rendered_yaml_parses_with_YamlDotNet_into_the_patterns()
    {
        var selection = SmallSelection();
        string yaml = AxolotlYaml.Render(selection, []);

        var stream = new YamlStream();
        stream.Load(new StringReader(yaml));
        var list = (YamlSequenceNode)((YamlMappingNode)stream.Documents[0].RootNode).Children[new YamlScalarNode("unfrozen_parameters")];

        Assert.Equal(["model.layers.1.self_attn.v_proj", "model.layers.1.mlp.down_proj", "model.layers.0.mlp.down_proj"],
            list.Children.Select(n => ((YamlScalarNode)n).Value));
        Assert.Equal(AxolotlYaml.Patterns(selection, []), AxolotlYaml.ParsePatterns(yaml, "rendered.yaml"));
    }

    // Each odd name comes with a lookalike that its pattern would match if YAML or regex syntax leaked through.
    [Theory]
    [InlineData("model.layers.0.weird+name(1)", "model.layers.0.weirdddname1.weight")]
    [InlineData("model.layers.0.a: b # c", "model.layers.0.a: b.weight")]
    [InlineData("model.layers.0.[x]", "model.layers.0.x.weight")]
    [InlineData("1.5", "105.weight")]
    [InlineData("true", "tru.weight")]
    [InlineData("-dash", "dash.weight")]
    [InlineData("quote\"and\\backslash'", "quote\"and.weight")]
    [InlineData("tab\tand\u2028separator", "tab.weight")]
    [InlineData("é😀", "é.weight")]
    [InlineData(".inf", "xinf.weight")]
    public void Odd_module_names_come_back_from_YAML_as_patterns_that_match_exactly_their_parameters(string module, string lookalike)
    {
        var selection = TopPercentSelection.Select([new ModuleScore(module, "t", 1)], 100);

        var patterns = AxolotlYaml.ParsePatterns(AxolotlYaml.Render(selection, [module + ".weight"]), "odd.yaml");

        Assert.Equal([AxolotlYaml.ExactParameterPattern(module + ".weight"), AxolotlYaml.ModulePattern(module)], patterns);
        Assert.Equal([module + ".weight", module + ".bias"],
            SelectionVerifier.UnfrozenParameters(patterns, [module + ".weight", module + ".bias", lookalike, "other.weight"]));
    }

    [Fact]
    public void Render_refuses_a_yaml_that_would_unfreeze_nothing_because_axolotl_would_then_train_everything()
    {
        var nothing = TopPercentSelection.Select([new ModuleScore("model.layers.0.mlp.up_proj", "mlp.up_proj", 1)], 50);

        var e = Assert.Throws<ArgumentException>(() => AxolotlYaml.Render(nothing, []));
        Assert.Contains("would train every parameter", e.Message);
        Assert.StartsWith("unfrozen_parameters:\n- ^lm_head.weight$\n# mlp.up_proj layers\n", AxolotlYaml.Render(nothing, ["lm_head.weight"]));
    }

    [Fact]
    public void Write_is_atomic_and_ReadPatterns_reads_it_back()
    {
        using var folder = new TempFolder();
        string path = folder.File("unfrozen_parameters.yaml");
        File.WriteAllText(path, "old");

        AxolotlYaml.Write(path, SmallSelection(), ["lm_head.weight"]);

        Assert.Equal(AxolotlYaml.Patterns(SmallSelection(), ["lm_head.weight"]), AxolotlYaml.ReadPatterns(path));
        Assert.Equal(["unfrozen_parameters.yaml"], folder.FileNames());
        Assert.Throws<ArgumentException>(() => AxolotlYaml.Write(path, TopPercentSelection.Select([new ModuleScore("a.0.b", "b", 1)], 50), []));
        Assert.Equal(AxolotlYaml.Patterns(SmallSelection(), ["lm_head.weight"]), AxolotlYaml.ReadPatterns(path));
    }

    [Fact]
    public void ReadPatterns_accepts_a_full_axolotl_config_with_quoted_entries()
    {
        const string config = """
            base_model: meta-llama/Meta-Llama-3-8B
            learning_rate: 1.0e-5
            unfrozen_parameters:
              - "^lm_head.weight$"
              - 'model.layers.1[0-9].mlp'
              # a comment
              - model.embed_tokens.weight[:32000]
            """;

        Assert.Equal(["^lm_head.weight$", "model.layers.1[0-9].mlp", "model.embed_tokens.weight[:32000]"],
            AxolotlYaml.ParsePatterns(config, "config.yml"));
    }

    [Theory]
    [InlineData("unfrozen_parameters:\n- a\n  - b: [\n", ScanResultsErrorKind.MalformedYaml, null, "Not valid YAML")]
    [InlineData("base_model: x\nlearning_rate: 1\n", ScanResultsErrorKind.MissingUnfrozenParameters, 1, "found only \"base_model\", \"learning_rate\"")]
    [InlineData("- a\n- b\n", ScanResultsErrorKind.MissingUnfrozenParameters, 1, "Expected a mapping")]
    [InlineData("unfrozen_parameters:\n# only comments\n", ScanResultsErrorKind.MissingUnfrozenParameters, null, "would train every parameter")]
    [InlineData("unfrozen_parameters: lm_head\n", ScanResultsErrorKind.MissingUnfrozenParameters, 1, "the single value \"lm_head\"")]
    [InlineData("unfrozen_parameters:\n- lm_head\n- {a: b}\n", ScanResultsErrorKind.InvalidPattern, 3, "found a mapping")]
    [InlineData("unfrozen_parameters:\n- lm_head\n- model.layers.(1\n", ScanResultsErrorKind.InvalidPattern, 3, "not a valid regular expression")]
    [InlineData("unfrozen_parameters:\n- lm_head\n- null\n", ScanResultsErrorKind.InvalidPattern, 3, "reads as null")]
    [InlineData("unfrozen_parameters:\n- 12\n", ScanResultsErrorKind.InvalidPattern, 2, "reads as an integer")]
    [InlineData("unfrozen_parameters:\n- lm_head[9:2]\n", ScanResultsErrorKind.InvalidPattern, 2, "greater than the start")]
    public void ParsePatterns_errors_name_the_kind_the_line_and_the_problem(string yaml, ScanResultsErrorKind kind, int? line, string messagePart)
    {
        var e = Assert.Throws<ScanResultsException>(() => AxolotlYaml.ParsePatterns(yaml, "bad.yaml"));

        Assert.Equal(kind, e.Kind);
        if (line is not null)
            Assert.Equal(line, e.Line);
        Assert.NotNull(e.Line);
        Assert.StartsWith("bad.yaml:", e.Message);
        Assert.Contains(messagePart, e.Message);
    }

    [Fact]
    public void ReadPatterns_of_a_missing_file_names_it()
    {
        using var folder = new TempFolder();
        var e = Assert.Throws<ScanResultsException>(() => AxolotlYaml.ReadPatterns(folder.File("missing.yaml")));
        Assert.Equal(ScanResultsErrorKind.FileNotFound, e.Kind);
        Assert.Contains("missing.yaml", e.Message);
    }
}
