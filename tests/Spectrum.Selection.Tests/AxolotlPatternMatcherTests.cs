// Axolotl's unfrozen_parameters matching: dots escaped unless before '+', anchored at the start only, row ranges.
namespace Spectrum.Selection.Tests;

public class AxolotlPatternMatcherTests
{
    private static readonly string[] Names =
    [
        "model.layers.1.mlp.down_proj.weight", "model.layers.1.mlp.down_proj.bias", "model.layers.10.mlp.down_proj.weight",
        "model.layers.11.mlp.down_proj.weight", "model.layers.1.mlp.up_proj.weight", "lm_head.weight", "lm_head.weight_scale",
        "base_model.model.lm_head.weight", "model.embed_tokens.weight", "model.layers.1xmlp.down_proj.weight",
    ];

    [Fact]
    public void A_module_name_unfreezes_its_weight_and_bias_but_not_layer_10()
    {
        var matcher = new AxolotlPatternMatcher("model.layers.1.mlp.down_proj");

        Assert.Equal(["model.layers.1.mlp.down_proj.weight", "model.layers.1.mlp.down_proj.bias"], matcher.MatchingParameters(Names));
        Assert.Equal(@"model\.layers\.1\.mlp\.down_proj", matcher.EscapedPattern);
        Assert.Null(matcher.Range);
    }

    [Fact]
    public void Caret_dollar_pattern_matches_exactly_one_name()
    {
        Assert.Equal(["lm_head.weight"], new AxolotlPatternMatcher("^lm_head.weight$").MatchingParameters(Names));
    }

    [Fact]
    public void Matching_is_anchored_at_the_start_only_like_python_re_match()
    {
        Assert.Equal(["lm_head.weight", "lm_head.weight_scale"], new AxolotlPatternMatcher("lm_head").MatchingParameters(Names));
        Assert.Empty(new AxolotlPatternMatcher("mlp.down_proj").MatchingParameters(Names));
        Assert.True(new AxolotlPatternMatcher("base_model.model.lm_head").Matches("base_model.model.lm_head.weight"));
    }

    [Fact]
    public void A_dot_before_plus_stays_a_wildcard_and_a_dot_in_a_class_is_literal()
    {
        var plus = new AxolotlPatternMatcher("model.layers.1.+down_proj");
        Assert.Equal(@"model\.layers\.1.+down_proj", plus.EscapedPattern);
        Assert.True(plus.Matches("model.layers.10.mlp.down_proj.weight"));
        Assert.True(plus.Matches("model.layers.1.mlp.down_proj.weight"));

        var numbered = new AxolotlPatternMatcher("model.layers.[0-9]+.mlp.up_proj");
        Assert.Equal(["model.layers.1.mlp.up_proj.weight"], numbered.MatchingParameters(Names));
        Assert.False(new AxolotlPatternMatcher("model.layers.1[.]mlp").Matches("model.layers.1xmlp.down_proj.weight"));
    }

    [Fact]
    public void A_backslash_escaped_dot_becomes_backslash_then_any_character_as_in_axolotl()
    {
        // Axolotl rewrites `\.` to `\\.`: a literal backslash followed by any character, which real names never contain.
        var escaped = new AxolotlPatternMatcher(@"lm_head\.weight");

        Assert.Equal(@"lm_head\\.weight", escaped.EscapedPattern);
        Assert.False(escaped.Matches("lm_head.weight"));
        Assert.True(escaped.Matches(@"lm_head\xweight"));
    }

    [Theory]
    [InlineData("^model.embed_tokens.weight$[:32000]", "^model.embed_tokens.weight$", 0L, 32000L)]
    [InlineData("model.embed_tokens[5]", "model.embed_tokens", 5L, 6L)]
    [InlineData("model.embed_tokens[3:]", "model.embed_tokens", 3L, null)]
    [InlineData("model.embed_tokens[3:7]", "model.embed_tokens", 3L, 7L)]
    [InlineData("model.embed_tokens[]", "model.embed_tokens", 0L, null)]
    [InlineData("model.embed_tokens[:]", "model.embed_tokens", 0L, null)]
    public void A_trailing_row_range_is_split_off_before_name_matching(string pattern, string name, long start, long? end)
    {
        var matcher = new AxolotlPatternMatcher(pattern);

        Assert.Equal(name, matcher.NamePattern);
        Assert.Equal(new RowRange(start, end), matcher.Range);
        Assert.True(matcher.Matches("model.embed_tokens.weight"));
    }

    [Theory]
    [InlineData("model.embed_tokens[7:3]", "end to be greater than the start")]
    [InlineData("model.embed_tokens[3:3]", "end to be greater than the start")]
    [InlineData("model.layers.(1", "not a valid regular expression")]
    [InlineData("", "must not be empty")]
    public void Invalid_patterns_are_rejected_with_the_reason(string pattern, string reason)
    {
        var e = Assert.Throws<ArgumentException>(() => new AxolotlPatternMatcher(pattern));
        Assert.Contains(reason, e.Message);
    }

    [Fact]
    public void Python_only_regex_syntax_is_translated()
    {
        Assert.True(new AxolotlPatternMatcher(@"model.layers.(?P<n>[0-9]+).mlp.(?P=n)").Matches("model.layers.3.mlp.3"));
        Assert.False(new AxolotlPatternMatcher(@"model.layers.(?P<n>[0-9]+).mlp.(?P=n)").Matches("model.layers.3.mlp.4"));
        Assert.True(new AxolotlPatternMatcher("model.layers.1{,2}0").Matches("model.layers.110"));
        Assert.False(new AxolotlPatternMatcher(@"lm_head.weight\Z").Matches("lm_head.weight\n"));
        Assert.True(new AxolotlPatternMatcher(@"lm_head.weight$").Matches("lm_head.weight\n"));
    }
}
