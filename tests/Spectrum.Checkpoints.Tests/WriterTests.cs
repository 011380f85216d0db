// The safetensors writer: exact bytes, refusal of bad input, and atomicity when a write fails (checklist item 16).
using System.Buffers.Binary;
using System.Text;
using Spectrum.Checkpoints.Tests.TestSupport;

namespace Spectrum.Checkpoints.Tests;

public sealed class WriterTests : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    private static TensorToWrite Floats(string name, params float[] values) =>
        TensorToWrite.FromFloat32(name, SafetensorsDType.F32, [values.Length], values);

    [Fact]
    public void WritesTheCanonicalBytesWithTheHeaderPaddedToEightBytes()
    {
        string path = _folder.File("one.safetensors");

        SafetensorsWriter.Write(path, [Floats("a", 1f)]);

        const string json = """{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""";
        int padded = (json.Length + 7) / 8 * 8;
        byte[] expected = [.. SafetensorsBytes.WithDeclaredHeaderLength((ulong)padded,
            [.. Encoding.ASCII.GetBytes(json.PadRight(padded)), .. SafetensorsBytes.Float32(1f)])];
        Assert.Equal(expected, File.ReadAllBytes(path));
    }

    [Fact]
    public void MetadataIsWrittenAndReadBack()
    {
        string path = _folder.File("meta.safetensors");

        SafetensorsWriter.Write(path, [Floats("a", 1f)], new Dictionary<string, string> { ["format"] = "pt" });

        using var file = SafetensorsFile.Open(path);
        Assert.Equal("pt", file.Metadata["format"]);
        Assert.Equal(0, (file.DataBufferOffset) % 8);
    }

    [Fact]
    public void Float16AndBFloat16AreEncodedOnWrite()
    {
        string path = _folder.File("half.safetensors");
        float[] values = [1f, 1.00390625f, -2.5f];

        SafetensorsWriter.Write(path, [
            TensorToWrite.FromFloat32("h", SafetensorsDType.F16, [3], values),
            TensorToWrite.FromFloat32("b", SafetensorsDType.BF16, [3], values.AsSpan())]);

        using var file = SafetensorsFile.Open(path);
        Assert.Equal(values.Select(value => (float)(Half)value), file.ReadFloat32("h"));
        // 1 + 2^-8 is a tie between 1 and 1 + 2^-7 and must round to even (1).
        Assert.Equal([1f, 1f, -2.5f], file.ReadFloat32("b"));
    }

    [Fact]
    public void FailingCallbackLeavesNoFileUnderTheFinalNameAndNoTemporaryFile()
    {
        string path = _folder.File("model.safetensors");
        var diskFull = new IOException("No space left on device");
        var failing = new TensorToWrite("b", SafetensorsDType.U8, [1024], stream =>
        {
            stream.Write(new byte[100]);
            throw diskFull;
        });

        var error = Rejection.Assert(() => SafetensorsWriter.Write(path, [Floats("a", 1f), failing]),
            CheckpointError.WriteFailed, path);

        Assert.Same(diskFull, error.InnerException);
        Assert.Contains("'b'", error.Message);
        Assert.Empty(_folder.FileNames());
    }

    [Fact]
    public void FailingWriteLeavesThePreviousFileByteIdentical()
    {
        string path = _folder.File("model.safetensors");
        SafetensorsWriter.Write(path, [Floats("a", 1f, 2f)]);
        byte[] before = File.ReadAllBytes(path);

        Assert.Throws<CheckpointException>(() => SafetensorsWriter.Write(path, [
            new TensorToWrite("a", SafetensorsDType.U8, [10], stream =>
            {
                stream.Write(new byte[5]);
                throw new InvalidOperationException("simulated crash mid-tensor");
            })]));

        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Equal(["model.safetensors"], _folder.FileNames());
    }

    [Theory]
    [InlineData(3)]
    [InlineData(5)]
    public void CallbackWritingTheWrongByteCountFailsAndLeavesThePreviousFile(int bytesWritten)
    {
        string path = _folder.File("model.safetensors");
        SafetensorsWriter.Write(path, [Floats("a", 1f)]);
        byte[] before = File.ReadAllBytes(path);

        var error = Rejection.Assert(() => SafetensorsWriter.Write(path, [
                new TensorToWrite("w", SafetensorsDType.U8, [4], stream => stream.Write(new byte[bytesWritten]))]),
            CheckpointError.ByteLengthMismatch, path, "w");

        Assert.Contains("exactly 4", error.Message);
        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Equal(["model.safetensors"], _folder.FileNames());
    }

    [Fact]
    public void ReplacingAFileThatIsOpenForReadingLeavesTheReaderOnTheOldBytes()
    {
        // Truncating a memory-mapped file would zero what readers see; rename-over must not.
        string path = _folder.File("model.safetensors");
        SafetensorsWriter.Write(path, [Floats("w", 1f, 2f, 3f)]);
        using var oldFile = SafetensorsFile.Open(path);
        using var oldBytes = oldFile.ReadBytes("w");

        SafetensorsWriter.Write(path, [Floats("w", 7f)]);

        Assert.Equal([1f, 2f, 3f], oldFile.ReadFloat32("w"));
        Assert.Equal(SafetensorsBytes.Float32(1f, 2f, 3f), oldBytes.Span.ToArray());
        using var newFile = SafetensorsFile.Open(path);
        Assert.Equal([7f], newFile.ReadFloat32("w"));
    }

    [Fact]
    public void TensorNamedMetadataIsRefusedBeforeAnythingIsWritten()
    {
        string path = _folder.File("x.safetensors");
        Rejection.Assert(() => SafetensorsWriter.Write(path, [Floats("__metadata__", 1f)]),
            CheckpointError.ReservedTensorName, path, "__metadata__");
        Assert.Empty(_folder.FileNames());
    }

    [Fact]
    public void DuplicateNamesAreRefused()
    {
        string path = _folder.File("x.safetensors");
        Rejection.Assert(() => SafetensorsWriter.Write(path, [Floats("w", 1f), Floats("w", 2f)]),
            CheckpointError.DuplicateTensorName, path, "w");
        Assert.Empty(_folder.FileNames());
    }

    [Theory]
    [InlineData(SafetensorsDType.F32, new long[] { 2, -1 }, CheckpointError.InvalidShape)]
    [InlineData(SafetensorsDType.F32, new long[] { 1L << 40, 1L << 40 }, CheckpointError.ShapeOverflow)]
    [InlineData(SafetensorsDType.F64, new long[] { long.MaxValue / 4 }, CheckpointError.ShapeOverflow)]
    [InlineData(SafetensorsDType.F4, new long[] { 3 }, CheckpointError.SubByteTensorNotByteAligned)]
    public void BadShapesAreRefused(SafetensorsDType dtype, long[] shape, CheckpointError expected)
    {
        string path = _folder.File("x.safetensors");
        Rejection.Assert(() => SafetensorsWriter.Write(path, [new TensorToWrite("w", dtype, shape, _ => { })]),
            expected, path, "w");
        Assert.Empty(_folder.FileNames());
    }

    [Fact]
    public void NamesThatCannotBeUtf8AreRefused()
    {
        string path = _folder.File("x.safetensors");
        Rejection.Assert(() => SafetensorsWriter.Write(path, [Floats("bad\uD800", 1f)]),
            CheckpointError.InvalidTensorName, path);
        Rejection.Assert(() => SafetensorsWriter.Write(path, [Floats("", 1f)]), CheckpointError.InvalidTensorName, path);
    }

    [Fact]
    public void FromFloat32RefusesAValueCountThatContradictsTheShape()
    {
        var error = Assert.Throws<ArgumentException>(
            () => TensorToWrite.FromFloat32("w", SafetensorsDType.F32, [2, 2], new float[3]));
        Assert.Contains("'w'", error.Message);
    }

    [Fact]
    public void LargeTensorsAreStreamedInPiecesAndReadBackExactly()
    {
        string path = _folder.File("streamed.safetensors");
        const int count = 200_000;
        var values = Enumerable.Range(0, count).Select(i => i * 0.5f).ToArray();

        SafetensorsWriter.Write(path, [TensorToWrite.FromFloat32("w", SafetensorsDType.F32, [count], values)]);

        using var file = SafetensorsFile.Open(path);
        Assert.Equal(values, file.ReadFloat32("w"));
        var raw = File.ReadAllBytes(path);
        Assert.Equal((ulong)(file.DataBufferOffset - 8), BinaryPrimitives.ReadUInt64LittleEndian(raw));
    }
}
