// Sharded checkpoints (checklist item 13): the good case, and every way index and shards can disagree or be unsafe.
using System.Text.Json.Nodes;
using Spectrum.Checkpoints.Tests.TestSupport;

namespace Spectrum.Checkpoints.Tests;

public sealed class ShardedCheckpointTests : IDisposable
{
    private const long SmallShardBytes = 1200;
    private readonly TempFolder _folder = new();
    private readonly TinyLlama _model = new();

    public void Dispose() => _folder.Dispose();

    private string IndexPath => _folder.File("model.safetensors.index.json");

    private void WriteSharded() =>
        ShardedCheckpointWriter.Write(_folder.Path, _model.Tensors(), SmallShardBytes, _model.ConfigJson());

    private void EditIndex(Action<JsonObject> edit)
    {
        var index = JsonNode.Parse(File.ReadAllText(IndexPath))!.AsObject();
        edit(index);
        File.WriteAllText(IndexPath, index.ToJsonString());
    }

    private string[] ShardFiles() =>
        Directory.GetFiles(_folder.Path, "model-*-of-*.safetensors").Order(StringComparer.Ordinal).ToArray();

    private static JsonObject WeightMap(JsonObject index) => index["weight_map"]!.AsObject();

    private CheckpointException AssertOpenFails(CheckpointError expected, string filePath, string? tensorName = null) =>
        Rejection.Assert(() => Checkpoint.Open(_folder.Path).Dispose(), expected, filePath, tensorName);

    [Fact]
    public void GoodShardedCheckpointOpensWithEveryTensorInShardThenOffsetOrder()
    {
        var written = _model.Tensors();
        WriteSharded();

        using var checkpoint = Checkpoint.Open(_folder.Path);

        Assert.Equal(IndexPath, checkpoint.IndexPath);
        Assert.Equal(_folder.Path, checkpoint.RootPath);
        Assert.True(checkpoint.ShardPaths.Count > 2, $"expected several shards, got {checkpoint.ShardPaths.Count}");
        Assert.Equal(checkpoint.ShardPaths.Order(StringComparer.Ordinal), checkpoint.ShardPaths);
        var expectedOrder = checkpoint.Tensors
            .OrderBy(tensor => checkpoint.ShardPaths.ToList().IndexOf(tensor.FilePath))
            .ThenBy(tensor => tensor.DataBegin);
        Assert.Equal(expectedOrder, checkpoint.Tensors);
        Assert.Equal(written.Select(tensor => tensor.Name).Order(), checkpoint.Tensors.Select(tensor => tensor.Name).Order());
        Assert.Equal(checkpoint.Tensors.Sum(tensor => tensor.ElementCount) * 4, checkpoint.TotalTensorBytes);
        Assert.Equal(8, checkpoint.Config!.HiddenSize);
        var lastLayerDown = checkpoint.ReadFloat32("model.layers.1.mlp.down_proj.weight");
        int seed = written.FindIndex(tensor => tensor.Name == "model.layers.1.mlp.down_proj.weight");
        Assert.Equal(Enumerable.Range(0, 96).Select(i => seed + i / 1024f), lastLayerDown);
    }

    [Fact]
    public void IndexWithoutMetadataIsAccepted()
    {
        WriteSharded();
        EditIndex(index => index.Remove("metadata"));

        using var checkpoint = Checkpoint.Open(_folder.Path);
        Assert.NotEmpty(checkpoint.Tensors);
    }

    [Fact]
    public void MissingShardIsRejectedBeforeAnyWeightIsRead()
    {
        WriteSharded();
        string missing = ShardFiles()[1];
        File.Delete(missing);

        var error = AssertOpenFails(CheckpointError.MissingShard, missing);

        Assert.Contains(IndexPath, error.Message);
        Assert.Contains(Path.GetFileName(missing), error.Message);
    }

    [Fact]
    public void TensorTheIndexNamesButNoShardHoldsIsRejected()
    {
        WriteSharded();
        string firstShard = Path.GetFileName(ShardFiles()[0]);
        EditIndex(index => WeightMap(index)["model.layers.9.mlp.up_proj.weight"] = firstShard);

        AssertOpenFails(CheckpointError.TensorInNoShard, IndexPath, "model.layers.9.mlp.up_proj.weight");
    }

    [Fact]
    public void IndexPointingAtTheWrongShardIsRejected()
    {
        WriteSharded();
        const string name = "model.embed_tokens.weight";
        string[] shards = ShardFiles();
        EditIndex(index => WeightMap(index)[name] = Path.GetFileName(shards[^1]));

        var error = AssertOpenFails(CheckpointError.IndexShardMismatch, shards[0], name);
        Assert.Contains(Path.GetFileName(shards[^1]), error.Message);
    }

    [Fact]
    public void TensorInAShardButNotInTheIndexIsRejected()
    {
        WriteSharded();
        const string name = "model.norm.weight";
        string holder = JsonNode.Parse(File.ReadAllText(IndexPath))!["weight_map"]![name]!.GetValue<string>();
        EditIndex(index => WeightMap(index).Remove(name));

        var error = AssertOpenFails(CheckpointError.IndexShardMismatch, _folder.File(holder), name);
        Assert.Contains("does not list", error.Message);
    }

    [Fact]
    public void TensorStoredInTwoShardsIsRejected()
    {
        SafetensorsWriter.Write(_folder.File("a.safetensors"), [TinyLlama.Filled("x", [2], 1), TinyLlama.Filled("y", [2], 2)]);
        SafetensorsWriter.Write(_folder.File("b.safetensors"), [TinyLlama.Filled("x", [2], 3)]);
        _folder.WriteText("model.safetensors.index.json",
            """{"metadata":{"total_size":16},"weight_map":{"x":"a.safetensors","y":"b.safetensors"}}""");

        var error = AssertOpenFails(CheckpointError.TensorInTwoShards, _folder.File("b.safetensors"), "x");
        Assert.Contains(_folder.File("a.safetensors"), error.Message);
    }

    [Theory]
    [InlineData("../model-00001-of-00001.safetensors")]
    [InlineData("..")]
    [InlineData("/etc/model.safetensors")]
    [InlineData("C:model.safetensors")]
    [InlineData("C:\\\\models\\\\model.safetensors")]
    [InlineData("sub/model.safetensors")]
    [InlineData("..\\\\model.safetensors")]
    [InlineData("")]
    public void ShardNamesThatCouldLeaveTheFolderAreRejected(string shardName)
    {
        _folder.WriteText("model.safetensors.index.json",
            $$$"""{"metadata":{"total_size":4},"weight_map":{"w":"{{{shardName}}}"}}""");

        var error = AssertOpenFails(CheckpointError.UnsafeShardPath, IndexPath, "w");
        Assert.Contains("plain file name", error.Message);
    }

    [Fact]
    public void TraversalIsRejectedEvenWhenTheTargetIsAValidShard()
    {
        string outside = _folder.File("outside.safetensors");
        SafetensorsWriter.Write(outside, [TinyLlama.Filled("w", [1], 0)]);
        string checkpointFolder = Directory.CreateDirectory(_folder.File("checkpoint")).FullName;
        string indexPath = Path.Combine(checkpointFolder, "model.safetensors.index.json");
        File.WriteAllText(indexPath, """{"weight_map":{"w":"../outside.safetensors"}}""");

        Rejection.Assert(() => Checkpoint.Open(checkpointFolder).Dispose(), CheckpointError.UnsafeShardPath, indexPath, "w");
    }

    [Theory]
    [InlineData("pytorch_model-00001-of-00002.bin")]
    [InlineData("model.pt")]
    [InlineData("model.safetensors.bak")]
    public void ShardsThatAreNotSafetensorsAreRejected(string shardName)
    {
        _folder.WriteText("model.safetensors.index.json", $$$"""{"weight_map":{"w":"{{{shardName}}}"}}""");

        var error = AssertOpenFails(CheckpointError.NotSafetensorsShard, IndexPath, "w");
        Assert.Contains(shardName, error.Message);
    }

    [Fact]
    public void TotalSizeThatDisagreesWithTheShardsIsRejected()
    {
        WriteSharded();
        long actual = 0;
        EditIndex(index =>
        {
            actual = index["metadata"]!["total_size"]!.GetValue<long>();
            index["metadata"]!["total_size"] = actual + 2;
        });

        var error = AssertOpenFails(CheckpointError.TotalSizeMismatch, IndexPath);
        Assert.Contains((actual + 2).ToString(), error.Message);
        Assert.Contains(actual.ToString(), error.Message);
    }

    [Theory]
    [InlineData("{\"weight_map\": {\"w\": \"a.safetensors\",}}", "line 1")]
    [InlineData("{\"metadata\": {}}", "weight_map")]
    [InlineData("{\"weight_map\": {\"w\": 3}}", "'w'")]
    [InlineData("{\"weight_map\": {\"w\": \"a.safetensors\", \"w\": \"b.safetensors\"}}", "w")]
    [InlineData("{\"metadata\": {\"total_size\": \"big\"}, \"weight_map\": {}}", "total_size")]
    [InlineData("[]", "object")]
    public void IndexThatIsNotTheExpectedJsonIsRejected(string indexJson, string mentioned)
    {
        _folder.WriteText("model.safetensors.index.json", indexJson);

        var error = AssertOpenFails(CheckpointError.IndexSchema, IndexPath);
        Assert.Contains(mentioned, error.Message);
    }

    [Fact]
    public void CorruptShardIsReportedWithTheShardsPath()
    {
        WriteSharded();
        string shard = ShardFiles()[2];
        File.AppendAllText(shard, "junk");

        AssertOpenFails(CheckpointError.TrailingBytes, shard);
    }
}
