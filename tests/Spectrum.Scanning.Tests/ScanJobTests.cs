// The whole scan job on generated checkpoints: outputs, YAML semantics, tied embeddings, bad tensors, options.
using Spectrum.Checkpoints;
using Spectrum.Selection;

namespace Spectrum.Scanning.Tests;

public sealed class ScanJobTests
{
    private static readonly LlamaShape Small = new("test-small", 48, 96, 4, 4, 2, 64, TieEmbeddings: false);
    private static readonly LlamaShape SmallTied = Small with { Name = "test-small-tied", TieEmbeddings = true };

    [Fact]
    public void Scan_writes_three_files_and_the_yaml_unfreezes_exactly_the_selection_and_the_existing_embeddings()
    {
        using var folder = new TemporaryFolder();
        string model = folder.File("model");
        SyntheticLlama.Write(model, Small, SafetensorsDType.BF16, maxShardBytes: 40_000, seed: 3);
        using var checkpoint = Checkpoint.Open(model);
        Assert.True(checkpoint.ShardPaths.Count > 1, "the small shard size should force a sharded checkpoint");
        var candidates = ModuleCatalog.Discover(checkpoint, false, true).Choose(null);

        var outcome = ScanJob.Run(checkpoint, candidates, new ScanOptions { TopPercent = 50 }, folder.File("out"));

        Assert.All(outcome.WrittenFiles, f => Assert.True(File.Exists(f), f));
        Assert.Equal(7 * Small.Layers, outcome.Report.Modules.Count);
        var patterns = AxolotlYaml.ReadPatterns(folder.File("out/unfrozen_parameters.yaml"));
        var unfrozen = SelectionVerifier.UnfrozenParameters(patterns, checkpoint.Tensors.Select(t => t.Name)).ToHashSet();
        var expected = outcome.Summary.Selection.SelectedModules.Select(m => m + ".weight")
            .Append("model.embed_tokens.weight").Append("lm_head.weight").ToHashSet();
        Assert.Equal(expected.OrderBy(x => x), unfrozen.OrderBy(x => x));
        Assert.Equal(14, outcome.Summary.Selection.SelectedModules.Count); // 7 types × floor(4 × 50 / 100)

        var reread = ScanResultsJson.Read(folder.File("out/snr_results.json"));
        Assert.Equal(outcome.Report.Scores.Select(s => s.Score), reread.Select(s => s.Score));
    }

    [Fact]
    public void Tied_embeddings_put_no_lm_head_in_the_yaml_and_no_embeddings_when_asked()
    {
        using var folder = new TemporaryFolder();
        SyntheticLlama.Write(folder.File("model"), SmallTied, SafetensorsDType.F16, maxShardBytes: 1 << 30, seed: 4);
        using var checkpoint = Checkpoint.Open(folder.File("model"));
        var candidates = ModuleCatalog.Discover(checkpoint, false, true).Choose(null);

        ScanJob.Run(checkpoint, candidates, new ScanOptions(), folder.File("with"));
        var with = AxolotlYaml.ReadPatterns(folder.File("with/unfrozen_parameters.yaml"));
        Assert.Contains(with, p => p.Contains("embed_tokens"));
        Assert.DoesNotContain(with, p => p.Contains("lm_head"));

        ScanJob.Run(checkpoint, candidates, new ScanOptions { IncludeEmbeddingsAndHead = false }, folder.File("without"));
        var without = AxolotlYaml.ReadPatterns(folder.File("without/unfrozen_parameters.yaml"));
        Assert.DoesNotContain(without, p => p.Contains("embed_tokens") || p.Contains("lm_head"));
    }

    [Fact]
    public void Parameter_summary_counts_what_axolotl_would_unfreeze()
    {
        using var folder = new TemporaryFolder();
        SyntheticLlama.Write(folder.File("model"), Small, SafetensorsDType.F32, maxShardBytes: 1 << 30, seed: 5);
        using var checkpoint = Checkpoint.Open(folder.File("model"));
        var candidates = ModuleCatalog.Discover(checkpoint, false, true).Choose(null);
        var outcome = ScanJob.Run(checkpoint, candidates, new ScanOptions { TopPercent = 25 }, folder.File("out"));

        var parameters = outcome.Summary.Parameters!;
        Assert.Equal(Small.ParameterCount, parameters.TotalParameters);
        var shapes = Small.TensorShapes().ToDictionary(t => t.Name, t => t.Shape.Aggregate(1L, (a, b) => a * b));
        long expected = outcome.Summary.Selection.SelectedModules.Sum(m => shapes[m + ".weight"])
                        + shapes["model.embed_tokens.weight"] + shapes["lm_head.weight"];
        Assert.Equal(expected, parameters.TrainableParameters);
        Assert.True(parameters.Selection.TotalBytes < parameters.FullFineTuning.TotalBytes);
    }

    [Fact]
    public void A_matrix_with_nan_scores_nan_ranks_last_and_is_never_selected()
    {
        using var folder = new TemporaryFolder();
        string path = folder.File("model.safetensors");
        var rng = new Random(1);
        float[] Noise(int n) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
        var poisoned = Noise(16 * 24);
        poisoned[5] = float.NaN;
        SafetensorsWriter.Write(path,
        [
            TensorToWrite.FromFloat32("model.layers.0.mlp.up_proj.weight", SafetensorsDType.F32, [16, 24], Noise(16 * 24)),
            TensorToWrite.FromFloat32("model.layers.1.mlp.up_proj.weight", SafetensorsDType.F32, [16, 24], poisoned),
        ]);
        using var checkpoint = Checkpoint.Open(path);
        var candidates = ModuleCatalog.Discover(checkpoint, false, true).Choose(null);

        var outcome = ScanJob.Run(checkpoint, candidates, new ScanOptions { TopPercent = 50 }, folder.File("out"));

        var bad = outcome.Report.Modules.Single(m => m.Module == "model.layers.1.mlp.up_proj");
        Assert.True(double.IsNaN(bad.Score));
        Assert.Equal(1, bad.NonFiniteValues);
        Assert.Equal(["model.layers.0.mlp.up_proj"], outcome.Summary.Selection.SelectedModules);
    }

    [Fact]
    public void Unknown_types_fail_before_any_work_and_name_the_available_types()
    {
        using var folder = new TemporaryFolder();
        SyntheticLlama.Write(folder.File("model"), Small, SafetensorsDType.BF16, 1 << 30, seed: 6);
        using var checkpoint = Checkpoint.Open(folder.File("model"));
        var catalog = ModuleCatalog.Discover(checkpoint, false, true);

        var error = Assert.Throws<ScanException>(() => catalog.Choose(["mlp.down_projection"]));
        Assert.Contains("mlp.down_projection", error.Message);
        Assert.Contains("mlp.down_proj", error.Message);
    }

    [Fact]
    public void Default_types_are_the_seven_llama_projections_and_vectors_only_when_asked()
    {
        using var folder = new TemporaryFolder();
        SyntheticLlama.Write(folder.File("model"), Small, SafetensorsDType.BF16, 1 << 30, seed: 6);
        using var checkpoint = Checkpoint.Open(folder.File("model"));

        var catalog = ModuleCatalog.Discover(checkpoint, includeVectors: false, groupExperts: true);
        Assert.Equal(
            ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"],
            catalog.DefaultTypes);
        Assert.Contains("lm_head", catalog.Types);
        Assert.DoesNotContain("input_layernorm", catalog.Types);

        var withVectors = ModuleCatalog.Discover(checkpoint, includeVectors: true, groupExperts: true);
        Assert.Contains("input_layernorm", withVectors.Types);
        var norms = ScanJob.Run(checkpoint, withVectors.Choose(["input_layernorm"]), new ScanOptions(), folder.File("out"));
        Assert.All(norms.Report.Modules, m => Assert.Equal(1.0, m.Score, 12)); // one singular value: signal/noise/S0 = 1
    }

    [Fact]
    public void Cancelling_stops_the_scan_with_an_operation_cancelled_error()
    {
        using var folder = new TemporaryFolder();
        SyntheticLlama.Write(folder.File("model"), Small, SafetensorsDType.BF16, 1 << 30, seed: 8);
        using var checkpoint = Checkpoint.Open(folder.File("model"));
        var candidates = ModuleCatalog.Discover(checkpoint, false, true).Choose(null);
        using var cancel = new CancellationTokenSource();
        var progress = new SynchronousProgress(p => { if (p.Done == 3) cancel.Cancel(); });

        Assert.ThrowsAny<OperationCanceledException>(() =>
            new SpectrumScanner(new Analysis.SingularValueEngine(new Analysis.SingularValueEngineOptions()))
                .Scan(checkpoint, candidates, progress, cancel.Token));
    }

    private sealed class SynchronousProgress(Action<ScanProgress> action) : IProgress<ScanProgress>
    {
        public void Report(ScanProgress value) => action(value);
    }
}
