// Weights whose shapes contradict config.json (checklist item 14): the tensor, expected and found shape are named.
using Spectrum.Checkpoints.Tests.TestSupport;

namespace Spectrum.Checkpoints.Tests;

public sealed class ConfigShapeValidationTests : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    private Checkpoint Write(TinyLlama weights, TinyLlama config, Func<List<TensorToWrite>, List<TensorToWrite>>? edit = null)
    {
        var tensors = weights.Tensors();
        ShardedCheckpointWriter.Write(_folder.Path, edit?.Invoke(tensors) ?? tensors, long.MaxValue, config.ConfigJson());
        return Checkpoint.Open(_folder.Path);
    }

    private string ModelFile => _folder.File("model.safetensors");

    [Fact]
    public void MatchingCheckpointPasses()
    {
        using var checkpoint = Write(new TinyLlama(), new TinyLlama());
        checkpoint.ValidateAgainstConfig();
        Assert.Empty(checkpoint.FindConfigMismatches());
    }

    [Fact]
    public void KeyValueProjectionSizedForFullAttentionIsReportedWithExpectedAndFoundShapes()
    {
        // Weights have 2 key/value heads; config.json says grouped-query attention with 1.
        using var checkpoint = Write(new TinyLlama(KeyValueHeads: 2), new TinyLlama(KeyValueHeads: 1));

        var error = Rejection.Assert(checkpoint.ValidateAgainstConfig, CheckpointError.ConfigShapeMismatch, ModelFile,
            "model.layers.0.self_attn.k_proj.weight");

        Assert.Contains("[4, 8]", error.Message);
        Assert.Contains("found [8, 8]", error.Message);
        Assert.Contains("num_key_value_heads", error.Message);
        Assert.Equal(4, checkpoint.FindConfigMismatches().Count);
    }

    [Fact]
    public void ConfigWithMoreLayersThanTheWeightsReportsTheMissingLayer()
    {
        using var checkpoint = Write(new TinyLlama(Layers: 2), new TinyLlama(Layers: 3));

        var error = Rejection.Assert(checkpoint.ValidateAgainstConfig, CheckpointError.ConfigShapeMismatch, _folder.Path,
            "model.layers.2.input_layernorm.weight");

        Assert.Contains("missing", error.Message);
        Assert.All(checkpoint.FindConfigMismatches(), mismatch => Assert.StartsWith("model.layers.2.", mismatch.TensorName));
    }

    [Fact]
    public void WeightsWithMoreLayersThanTheConfigAreReported()
    {
        using var checkpoint = Write(new TinyLlama(Layers: 3), new TinyLlama(Layers: 2));

        var mismatch = Assert.Single(checkpoint.FindConfigMismatches().Take(1));
        Assert.StartsWith("model.layers.2.", mismatch.TensorName);
        Assert.Null(mismatch.ExpectedShape);
        Assert.Contains("num_hidden_layers = 2", mismatch.Explanation);
    }

    [Fact]
    public void WrongVocabularyIsReportedOnTheEmbedding()
    {
        using var checkpoint = Write(new TinyLlama(Vocab: 12), new TinyLlama(Vocab: 10));

        var first = checkpoint.FindConfigMismatches()[0];
        Assert.Equal("model.embed_tokens.weight", first.TensorName);
        Assert.Equal([10L, 8L], first.ExpectedShape);
        Assert.Equal([12L, 8L], first.FoundShape);
    }

    [Fact]
    public void TiedEmbeddingsNeedNoLmHeadButUntiedOnesDo()
    {
        using (var tied = Write(new TinyLlama(Tied: true), new TinyLlama(Tied: true)))
        {
            tied.ValidateAgainstConfig();
        }

        using var untied = Write(new TinyLlama(Tied: true), new TinyLlama(Tied: false));
        Rejection.Assert(untied.ValidateAgainstConfig, CheckpointError.ConfigShapeMismatch, _folder.Path, "lm_head.weight");
    }

    [Fact]
    public void Qwen2WithoutAttentionBiasesIsReported()
    {
        using var checkpoint = Write(new TinyLlama(), new TinyLlama(ModelType: "qwen2"));

        var mismatch = checkpoint.FindConfigMismatches()[0];
        Assert.Equal("model.layers.0.self_attn.q_proj.bias", mismatch.TensorName);
        Assert.Null(mismatch.FoundShape);
    }

    [Fact]
    public void PresentBiasWithTheWrongShapeIsReported()
    {
        using var checkpoint = Write(new TinyLlama(), new TinyLlama(), tensors =>
            [.. tensors, TinyLlama.Filled("model.layers.1.self_attn.v_proj.bias", [8], 99)]);

        Rejection.Assert(checkpoint.ValidateAgainstConfig, CheckpointError.ConfigShapeMismatch, ModelFile,
            "model.layers.1.self_attn.v_proj.bias");
    }

    [Fact]
    public void CheckpointWithoutConfigCannotBeValidated()
    {
        SafetensorsWriter.Write(ModelFile, new TinyLlama().Tensors());
        using var checkpoint = Checkpoint.Open(_folder.Path);

        Rejection.Assert(checkpoint.ValidateAgainstConfig, CheckpointError.ConfigMissing, _folder.Path);
    }
}
