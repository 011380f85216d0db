// Legal-but-unusual files (checklist items 11 and 12) and the reading API: entries, bytes, decoding, lookups.
using System.Buffers.Binary;
using Spectrum.Checkpoints.Tests.TestSupport;

namespace Spectrum.Checkpoints.Tests;

public sealed class ReadingTests : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public void ZeroSizeAndRankZeroTensorsLoad()
    {
        // Header keys deliberately out of offset order; zero-size tensors sit at offsets 0 and 4.
        string path = _folder.WriteBytes("edge.safetensors", SafetensorsBytes.Build(
            """{"scalar":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"empty":{"dtype":"BF16","shape":[0,4096],"data_offsets":[4,4]},"none":{"dtype":"F32","shape":[3,0],"data_offsets":[0,0]}}""",
            SafetensorsBytes.Float32(2.5f)));

        using var file = SafetensorsFile.Open(path);

        Assert.Equal(["none", "scalar", "empty"], file.Tensors.Select(tensor => tensor.Name));
        var scalar = file.GetEntry("scalar");
        Assert.Equal(0, scalar.Rank);
        Assert.Equal(1, scalar.ElementCount);
        Assert.Equal([2.5f], file.ReadFloat32("scalar"));
        var empty = file.GetEntry("empty");
        Assert.Equal(0, empty.ElementCount);
        Assert.Empty(file.ReadFloat32("empty"));
        using var emptyBytes = file.ReadBytes("empty");
        Assert.Equal(0, emptyBytes.Length);
        Assert.True(emptyBytes.Span.IsEmpty);
    }

    [Fact]
    public void FileWithNoTensorsLoads()
    {
        string path = _folder.WriteBytes("nothing.safetensors", SafetensorsBytes.Build("{}", 0));
        using var file = SafetensorsFile.Open(path);
        Assert.Empty(file.Tensors);
        Assert.Empty(file.Metadata);
    }

    [Fact]
    public void NaNAndInfinityValuesLoadAndDecodeAsSuch()
    {
        ushort bf16NaN = 0x7FC0, bf16PositiveInfinity = 0x7F80, bf16NegativeInfinity = 0xFF80;
        byte[] data = [
            .. SafetensorsBytes.Float32(float.NaN, float.PositiveInfinity, float.NegativeInfinity, -0f),
            .. SafetensorsBytes.UInt16(bf16NaN, bf16PositiveInfinity, bf16NegativeInfinity, 0x8000)];
        string path = _folder.WriteBytes("special.safetensors", SafetensorsBytes.Build(
            """{"f32":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"bf16":{"dtype":"BF16","shape":[4],"data_offsets":[16,24]}}""",
            data));

        using var file = SafetensorsFile.Open(path);

        foreach (string name in new[] { "f32", "bf16" })
        {
            float[] values = file.ReadFloat32(name);
            Assert.True(float.IsNaN(values[0]), $"{name}[0] = {values[0]}");
            Assert.Equal(float.PositiveInfinity, values[1]);
            Assert.Equal(float.NegativeInfinity, values[2]);
            Assert.True(float.IsNegative(values[3]) && values[3] == 0, $"{name}[3] should be -0, was {values[3]}");
        }
    }

    [Fact]
    public void HeaderWhitespacePaddingAndMetadataAreAccepted()
    {
        string path = _folder.WriteBytes("padded.safetensors", SafetensorsBytes.Build(
            """  {"__metadata__":{"format":"pt","note":"é"},"w":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}    """,
            [7, 9]));

        using var file = SafetensorsFile.Open(path);

        Assert.Equal("pt", file.Metadata["format"]);
        Assert.Equal("é", file.Metadata["note"]);
        using var bytes = file.ReadBytes("w");
        Assert.Equal(new byte[] { 7, 9 }, bytes.Span.ToArray());
    }

    [Fact]
    public void NullMetadataIsTreatedAsAbsentLikeTheReferenceReader()
    {
        string path = _folder.WriteBytes("nullmeta.safetensors", SafetensorsBytes.Build("""{"__metadata__":null}""", 0));
        using var file = SafetensorsFile.Open(path);
        Assert.Empty(file.Metadata);
    }

    [Fact]
    public void SubByteTensorsThatFillWholeBytesLoad()
    {
        string path = _folder.WriteBytes("subbyte.safetensors", SafetensorsBytes.Build(
            """{"f4":{"dtype":"F4","shape":[2,3],"data_offsets":[0,3]},"f6":{"dtype":"F6_E3M2","shape":[4],"data_offsets":[3,6]}}""",
            [1, 2, 3, 4, 5, 6]));

        using var file = SafetensorsFile.Open(path);

        Assert.Equal(3, file.GetEntry("f4").ByteLength);
        Assert.Equal(3, file.GetEntry("f6").ByteLength);
    }

    [Fact]
    public void EntriesRecordWhereTheirBytesAre()
    {
        string path = _folder.WriteBytes("two.safetensors", SafetensorsBytes.Build(
            """{"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""",
            SafetensorsBytes.Float32(1f, 2f)));

        using var file = SafetensorsFile.Open(path);

        var b = file.GetEntry("b");
        Assert.Equal(new TensorEntry("b", SafetensorsDType.F32, [1L], 4, 8, path), b);
        Assert.Equal(path, file.FilePath);
        var raw = File.ReadAllBytes(path);
        Assert.Equal(2f, BinaryPrimitives.ReadSingleLittleEndian(raw.AsSpan((int)(file.DataBufferOffset + b.DataBegin))));
    }

    [Fact]
    public void UnknownTensorNameIsATypedErrorNamingTheTensorAndFile()
    {
        string path = _folder.WriteBytes("one.safetensors", SafetensorsBytes.Build(
            """{"model.norm.weight":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", 4));
        using var file = SafetensorsFile.Open(path);

        var error = Rejection.Assert(() => file.GetEntry("norm.weight"), CheckpointError.TensorNotFound, path,
            "norm.weight");
        Assert.Contains("model.norm.weight", error.Message);
        Assert.False(file.TryGetEntry("norm.weight", out _));
        Assert.True(file.TryGetEntry("model.norm.weight", out var entry));
        Assert.Equal("model.norm.weight", entry.Name);
    }

    [Fact]
    public void DecodingANonFloatDTypeNamesTheTensorTheDTypeAndTheSupportedOnes()
    {
        string path = _folder.WriteBytes("ints.safetensors", SafetensorsBytes.Build(
            """{"ids":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}}""", 4));
        using var file = SafetensorsFile.Open(path);

        var error = Rejection.Assert(() => file.ReadFloat32("ids"), CheckpointError.UnsupportedDType, path, "ids");

        Assert.Contains("I32", error.Message);
        Assert.Contains("F16, BF16, F32, F64", error.Message);
    }

    [Fact]
    public void DecodingIntoADestinationOfTheWrongLengthIsRefused()
    {
        string path = _folder.WriteBytes("w.safetensors", SafetensorsBytes.Build(
            """{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", 8));
        using var file = SafetensorsFile.Open(path);

        Assert.Throws<ArgumentException>(() => file.DecodeToFloat32("w", new float[3]));
    }

    [Fact]
    public void PartialDecodeReadsTheRequestedElements()
    {
        string path = _folder.WriteBytes("w.safetensors", SafetensorsBytes.Build(
            """{"w":{"dtype":"BF16","shape":[2,3],"data_offsets":[0,12]}}""",
            SafetensorsBytes.UInt16(0x3F80, 0x4000, 0x4040, 0x4080, 0x40A0, 0x40C0)));
        using var file = SafetensorsFile.Open(path);

        var middle = new float[3];
        file.DecodeToFloat32("w", 2, middle);

        Assert.Equal([3f, 4f, 5f], middle);
        Assert.Throws<ArgumentOutOfRangeException>(() => file.DecodeToFloat32("w", 4, new float[3]));
    }

    [Fact]
    public void TensorBytesCopyToReadsAnyRange()
    {
        string path = _folder.WriteBytes("w.safetensors", SafetensorsBytes.Build(
            """{"pad":{"dtype":"U8","shape":[3],"data_offsets":[0,3]},"w":{"dtype":"U8","shape":[5],"data_offsets":[3,8]}}""",
            [0, 0, 0, 10, 11, 12, 13, 14]));
        using var file = SafetensorsFile.Open(path);
        using var bytes = file.ReadBytes("w");

        var piece = new byte[3];
        bytes.CopyTo(piece, 2);

        Assert.Equal(new byte[] { 12, 13, 14 }, piece);
        Assert.Throws<ArgumentOutOfRangeException>(() => bytes.CopyTo(new byte[4], 2));
    }

    [Fact]
    public void DisposedTensorBytesRefuseAccess()
    {
        string path = _folder.WriteBytes("w.safetensors", SafetensorsBytes.Build(
            """{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}""", 1));
        using var file = SafetensorsFile.Open(path);
        var bytes = file.ReadBytes("w");
        bytes.Dispose();

        Assert.Throws<ObjectDisposedException>(() => bytes.Span.Length);
    }

    [Fact]
    public void TensorOverTwoGigabytesRefusesASpanButCopiesAndDecodesInPieces()
    {
        const long bigLength = (long)int.MaxValue + 9; // F32 count: (2^31 + 8) / 4 elements
        string header = $$$"""{"big":{"dtype":"F32","shape":[{{{bigLength / 4}}}],"data_offsets":[0,{{{bigLength}}}]}}""";
        byte[] prefixAndHeader = SafetensorsBytes.Build(header, 0);
        string path = _folder.File("big.safetensors");
        using (var stream = new FileStream(path, FileMode.CreateNew, FileAccess.Write))
        {
            stream.Write(prefixAndHeader);
            // Sparse file: only the last float is written, so the test costs no disk or memory.
            stream.SetLength(prefixAndHeader.Length + bigLength);
            stream.Position = prefixAndHeader.Length + bigLength - 4;
            stream.Write(SafetensorsBytes.Float32(42f));
        }

        using var file = SafetensorsFile.Open(path);
        using var bytes = file.ReadBytes("big");

        Rejection.Assert(() => _ = bytes.Span.Length, CheckpointError.TensorTooLargeForSpan, path, "big");
        var tail = new byte[8];
        bytes.CopyTo(tail, bigLength - 8);
        Assert.Equal(SafetensorsBytes.Float32(0f, 42f), tail);
        var lastTwo = new float[2];
        file.DecodeToFloat32("big", bigLength / 4 - 2, lastTwo);
        Assert.Equal([0f, 42f], lastTwo);
    }

    [Fact]
    public void FileTruncatedWhileOpenGivesATypedErrorInsteadOfACrash()
    {
        string path = _folder.WriteBytes("w.safetensors", SafetensorsBytes.Build(
            """{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}""", 16));
        using var file = SafetensorsFile.Open(path);

        // What an in-place (non-atomic) re-save does first.
        using (var rewrite = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite))
        {
            rewrite.SetLength(12);
        }

        Rejection.Assert(() => file.ReadBytes("w").Dispose(), CheckpointError.FileChangedWhileOpen, path, "w");
        Rejection.Assert(() => file.ReadFloat32("w"), CheckpointError.FileChangedWhileOpen, path, "w");
    }

    [Fact]
    public void TensorsCanBeReadFromSeveralThreadsAtOnce()
    {
        string path = _folder.File("many.safetensors");
        var tensors = Enumerable.Range(0, 32)
            .Select(i => TensorToWrite.FromFloat32($"t{i}", SafetensorsDType.BF16, [64], Enumerable.Repeat((float)i, 64).ToArray()))
            .ToList();
        SafetensorsWriter.Write(path, tensors);
        using var file = SafetensorsFile.Open(path);

        Parallel.For(0, 256, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i =>
        {
            int tensor = i % 32;
            Assert.All(file.ReadFloat32($"t{tensor}"), value => Assert.Equal(tensor, value));
        });
    }

    [Fact]
    public void ReadingEveryTensorInTurnKeepsResidentMemoryNearOneTensor()
    {
        // Eight 64 MB tensors in a sparse file: if views were not unmapped on dispose, touching every page would
        // leave all 512 MB resident.
        const int tensorBytes = 64 << 20, tensorCount = 8;
        string header = "{" + string.Join(",", Enumerable.Range(0, tensorCount).Select(i =>
            $"\"t{i}\":{{\"dtype\":\"U8\",\"shape\":[{tensorBytes}],\"data_offsets\":[{(long)i * tensorBytes},{(long)(i + 1) * tensorBytes}]}}")) + "}";
        byte[] prefixAndHeader = SafetensorsBytes.Build(header, 0);
        string path = _folder.File("sparse.safetensors");
        using (var stream = new FileStream(path, FileMode.CreateNew, FileAccess.Write))
        {
            stream.Write(prefixAndHeader);
            stream.SetLength(prefixAndHeader.Length + (long)tensorBytes * tensorCount);
        }
        using var file = SafetensorsFile.Open(path);
        long baseline = Environment.WorkingSet, peakGrowth = 0;

        foreach (var tensor in file.Tensors)
        {
            using var bytes = file.ReadBytes(tensor.Name);
            var span = bytes.Span;
            int sum = 0;
            for (int offset = 0; offset < span.Length; offset += 4096)
            {
                sum += span[offset];
            }
            Assert.Equal(0, sum);
            peakGrowth = Math.Max(peakGrowth, Environment.WorkingSet - baseline);
        }

        Assert.True(peakGrowth < 3L * tensorBytes,
            $"resident memory grew by {peakGrowth >> 20} MB while reading {tensorCount} tensors of {tensorBytes >> 20} MB");
    }
}
