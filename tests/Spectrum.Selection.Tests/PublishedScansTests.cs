// Real published scans: every one reads, re-writes byte-identically, and re-selection matches independent computations.
using System.Text.Json;
using Spectrum.Selection.Tests.Support;

namespace Spectrum.Selection.Tests;

public class PublishedScansTests
{
    // Counts from Python's json.load of each file (len, distinct "type"s, math.isinf); no published file has NaN.
    public static TheoryData<string, int, int, int, int> Scans => new()
    {
        // file, modules, types with experts grouped, types per expert (the file's own), +Infinity scores
        { "snr_results_HuggingFaceTB-SmolLM-135M.json", 273, 12, 12, 61 },
        { "snr_results_Qwen-Qwen2-7B.json", 196, 7, 7, 15 },
        { "snr_results_TinyLlama-TinyLlama-v1.1.json", 201, 12, 12, 63 },
        { "snr_results_meta-llama-Meta-Llama-3-8B.json", 224, 7, 7, 0 },
        { "snr_results_mistralai-Mistral-7B-v0.1.json", 224, 7, 7, 0 },
        { "snr_results_mistralai-Mixtral-8x22B-v0.1.json", 1624, 8, 29, 60 },
        { "snr_results_akjindal53244-Llama-3.1-Storm-8B.json", 291, 12, 12, 67 },
        { "snr_results_meta-llama-Meta-Llama-3.1-8B-Instruct.json", 291, 12, 12, 67 },
    };

    public static TheoryData<string, string> Layouts => new()
    {
        { "snr_results_HuggingFaceTB-SmolLM-135M.json", "flat" },
        { "snr_results_Qwen-Qwen2-7B.json", "flat" },
        { "snr_results_TinyLlama-TinyLlama-v1.1.json", "flat" },
        { "snr_results_meta-llama-Meta-Llama-3-8B.json", "flat" },
        { "snr_results_mistralai-Mistral-7B-v0.1.json", "flat" },
        { "snr_results_mistralai-Mixtral-8x22B-v0.1.json", "flat" },
        { "snr_results_akjindal53244-Llama-3.1-Storm-8B.json", "sorted" },
        { "snr_results_meta-llama-Meta-Llama-3.1-8B-Instruct.json", "sorted" },
    };

    private const string Llama3 = "snr_results_meta-llama-Meta-Llama-3-8B.json";
    private const string Llama31Instruct = "snr_results_meta-llama-Meta-Llama-3.1-8B-Instruct.json";

    [Fact]
    public void Every_published_scan_is_covered_by_these_tests()
    {
        var present = Directory.GetFiles(RepositoryPaths.PublishedScans, "*.json").Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(present, Scans.Select(row => (string?)row[0]).Order(StringComparer.Ordinal));
        Assert.Equal(present, Layouts.Select(row => (string?)row[0]).Order(StringComparer.Ordinal));
    }

    [Theory]
    [MemberData(nameof(Scans))]
    public void Every_published_scan_reads_with_its_modules_types_and_infinities(
        string file, int modules, int groupedTypes, int perExpertTypes, int infinities)
    {
        var grouped = ScanResultsJson.Read(RepositoryPaths.PublishedScan(file));
        var perExpert = ScanResultsJson.Read(RepositoryPaths.PublishedScan(file), groupExperts: false);

        Assert.Equal(modules, grouped.Count);
        Assert.Equal(groupedTypes, grouped.Select(s => s.Type).Distinct().Count());
        Assert.Equal(perExpertTypes, perExpert.Select(s => s.Type).Distinct().Count());
        Assert.Equal(infinities, grouped.Count(s => double.IsPositiveInfinity(s.Score)));
        Assert.DoesNotContain(grouped, s => double.IsNaN(s.Score) || double.IsNegativeInfinity(s.Score));
        Assert.All(perExpert, s => Assert.EndsWith("." + s.Type, "." + s.Module));
    }

    [Theory]
    [MemberData(nameof(Layouts))]
    public void Every_published_scan_is_written_back_byte_for_byte(string file, string layout)
    {
        string path = RepositoryPaths.PublishedScan(file);
        var scores = ScanResultsJson.Read(path, groupExperts: false);

        // For the sorted layout this also shows that our ranking reproduces the file's order, including the
        // order of tied Infinity scores (Python's sort is stable, and so is ours).
        string written = layout == "flat"
            ? ScanResultsJson.FormatFlat(scores)
            : ScanResultsJson.FormatSorted(TopPercentSelection.Select(scores, 100));

        Assert.Equal(File.ReadAllText(path), written);
    }

    [Theory]
    [InlineData(25, 8)]
    [InlineData(50, 16)]
    public void Llama3_8B_selection_matches_a_direct_sort_of_each_type(int percent, int perType)
    {
        string path = RepositoryPaths.PublishedScan(Llama3);
        // Independent computation: System.Text.Json (this file has no bare Infinity), group by the "type" field,
        // sort by value descending (no ties in this file), keep n * p / 100 in integer arithmetic.
        using var document = JsonDocument.Parse(File.ReadAllText(path));
        var expected = document.RootElement.EnumerateObject()
            .GroupBy(m => m.Value.GetProperty("type").GetString()!)
            .ToDictionary(g => g.Key, g => g
                .OrderByDescending(m => m.Value.GetProperty("snr").GetDouble())
                .Take(g.Count() * percent / 100)
                .Select(m => m.Name)
                .ToList());

        var selection = TopPercentSelection.Select(ScanResultsJson.Read(path), percent);

        Assert.Equal(7, selection.Types.Count);
        foreach (var type in selection.Types)
        {
            Assert.Equal(32, type.Count);
            Assert.Equal(perType, type.SelectedCount);
            Assert.Equal(expected[type.Type], type.Selected.Select(s => s.Module));
        }
    }

    [Fact]
    public void Sorted_scan_rankings_equal_the_reference_order_in_the_file()
    {
        // The file lists each type best first as ranked by the reference. Ties (every norm scores Infinity) stay
        // in layer order because both sorts are stable. NaN would differ (Python leaves it wherever comparisons
        // happen to put it; we rank it last) but the published sorted scans contain none.
        var fileOrder = ScanResultsJson.Read(RepositoryPaths.PublishedScan(Llama31Instruct));
        var selection = TopPercentSelection.Select(fileOrder, 100);

        foreach (var type in selection.Types)
            Assert.Equal(fileOrder.Where(s => s.Type == type.Type).Select(s => s.Module), type.Ranked.Select(s => s.Module));
        var norms = Assert.Single(selection.Types, t => t.Type == "input_layernorm");
        Assert.Equal(Enumerable.Range(0, 32).Select(i => $"model.layers.{i}.input_layernorm"), norms.Ranked.Select(s => s.Module));
    }

    [Fact]
    public void Yaml_for_Llama31_Instruct_at_50_percent_is_byte_identical_to_the_reference_output()
    {
        var selection = TopPercentSelection.Select(ScanResultsJson.Read(RepositoryPaths.PublishedScan(Llama31Instruct)), 50);

        string yaml = AxolotlYaml.Render(selection, AxolotlYaml.ReferenceExtraParameterNames);

        Assert.Equal(
            File.ReadAllText(RepositoryPaths.TestData("snr_results_meta-llama-Meta-Llama-3.1-8B-Instruct_unfrozenparameters_50percent.yaml")),
            yaml);
        Assert.Equal("snr_results_meta-llama-Meta-Llama-3.1-8B-Instruct_unfrozenparameters_50percent.yaml",
            AxolotlYaml.FileName("meta-llama/Meta-Llama-3.1-8B-Instruct", 50));
    }

    [Fact]
    public void Mixtral_experts_are_ranked_together_by_default_and_per_expert_on_request()
    {
        string path = RepositoryPaths.PublishedScan("snr_results_mistralai-Mixtral-8x22B-v0.1.json");

        var grouped = TopPercentSelection.Select(ScanResultsJson.Read(path), 25);
        var perExpert = TopPercentSelection.Select(ScanResultsJson.Read(path, groupExperts: false), 25);

        Assert.Equal(
            ["block_sparse_moe.experts.*.w1", "block_sparse_moe.experts.*.w2", "block_sparse_moe.experts.*.w3", "block_sparse_moe.gate",
             "self_attn.k_proj", "self_attn.o_proj", "self_attn.q_proj", "self_attn.v_proj"],
            grouped.Types.Select(t => t.Type));
        var w1 = grouped.Types[0];
        Assert.Equal((8 * 56, 112), (w1.Count, w1.SelectedCount));
        var expert3 = Assert.Single(perExpert.Types, t => t.Type == "block_sparse_moe.experts.3.w1");
        Assert.Equal((56, 14), (expert3.Count, expert3.SelectedCount));
        var gate = Assert.Single(grouped.Types, t => t.Type == "block_sparse_moe.gate");
        Assert.Equal(54, gate.Ranked.Count(s => double.IsPositiveInfinity(s.Score)));
        Assert.All(gate.Selected, s => Assert.True(double.IsPositiveInfinity(s.Score)));
    }

    [Theory]
    [InlineData(25, 2_795_503_616L, 55_197_573_120L)]
    [InlineData(50, 4_540_334_080L, 79_625_199_616L)]
    public void Llama3_8B_trainable_parameters_and_memory_match_hand_computed_numbers(int percent, long trainable, long totalBytes)
    {
        // Per layer the seven matrices hold 218,103,808 parameters and the selection keeps the same number of
        // every type (8 or 16 of 32), so trainable = k × 218,103,808 + 2 × 525,336,576 (embedding and head);
        // bytes = 2 × 8,030,261,248 + 14 × trainable.
        var tensors = LlamaShape.Llama3_8B.Tensors();
        var selection = TopPercentSelection.Select(ScanResultsJson.Read(RepositoryPaths.PublishedScan(Llama3)), percent);
        var patterns = AxolotlYaml.Patterns(selection, ["lm_head.weight", "model.embed_tokens.weight"]);

        long counted = ParameterCounts.Trainable(tensors, patterns);
        var memory = TrainingMemoryEstimator.Estimate(ParameterCounts.Total(tensors), counted);

        Assert.Equal(trainable, counted);
        Assert.Equal(totalBytes, memory.TotalBytes);
        Assert.Equal(16_060_522_496L, memory.WeightBytes);
    }
}
