// One test per malformed safetensors input (checklist items 1–10), each built from hand-made bytes.
using Spectrum.Checkpoints.Tests.TestSupport;

namespace Spectrum.Checkpoints.Tests;

public sealed class HeaderValidationTests : IDisposable
{
    private const long OneMegabyte = 1 << 20;
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    private string Write(byte[] bytes) => _folder.WriteBytes("bad.safetensors", bytes);

    private string WriteHeader(string headerJson, int dataLength) =>
        Write(SafetensorsBytes.Build(headerJson, dataLength));

    // 1. Shorter than the length prefix.
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(7)]
    public void FileShorterThanEightBytesIsRejected(int length)
    {
        string path = Write(new byte[length]);
        var error = Rejection.OpenFile(path, CheckpointError.FileTooShort);
        Assert.Contains($"{length} bytes", error.Message);
    }

    // 2. Absurd header lengths must be refused before any buffer of that size is allocated.
    [Fact]
    public void HeaderLengthOfTwoToThe64MinusOneIsRejectedWithoutAllocating()
    {
        string path = Write(SafetensorsBytes.WithDeclaredHeaderLength(ulong.MaxValue, "{}"u8.ToArray()));
        long before = GC.GetAllocatedBytesForCurrentThread();
        var error = Rejection.OpenFile(path, CheckpointError.HeaderTooLarge);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < OneMegabyte, $"Open allocated {allocated} bytes for a rejected header.");
        Assert.Contains(ulong.MaxValue.ToString(), error.Message);
    }

    [Fact]
    public void HeaderLengthJustOverTheLimitIsRejectedEvenWhenTheFileIsThatLong()
    {
        // Sparse: the file really is long enough, so only the 100,000,000-byte limit can stop the read.
        string path = Write(SafetensorsBytes.WithDeclaredHeaderLength(100_000_001, []));
        using (var stream = new FileStream(path, FileMode.Open, FileAccess.Write))
        {
            stream.SetLength(8 + 100_000_001 + 8);
        }
        long before = GC.GetAllocatedBytesForCurrentThread();
        Rejection.OpenFile(path, CheckpointError.HeaderTooLarge);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < OneMegabyte, $"Open allocated {allocated} bytes for a rejected header.");
    }

    // 3. Header claims more bytes than the file has.
    [Theory]
    [InlineData(1000UL)]
    [InlineData(100_000_000UL)]
    public void HeaderLengthPastEndOfFileIsRejectedWithoutAllocating(ulong declaredLength)
    {
        string path = Write(SafetensorsBytes.WithDeclaredHeaderLength(declaredLength, "{}"u8.ToArray()));
        long before = GC.GetAllocatedBytesForCurrentThread();
        Rejection.OpenFile(path, CheckpointError.HeaderPastEndOfFile);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < OneMegabyte, $"Open allocated {allocated} bytes for a rejected header.");
    }

    // 4. Header bytes that are not UTF-8 JSON of the right shape.
    [Fact]
    public void HeaderWithInvalidUtf8IsRejected()
    {
        byte[] header = [.. "{\"a"u8, 0xFF, 0xFE, .. "\":{}}"u8];
        string path = Write(SafetensorsBytes.Build(header, []));
        var error = Rejection.OpenFile(path, CheckpointError.HeaderNotUtf8);
        Assert.Contains("offset 3", error.Message);
    }

    [Theory]
    [InlineData("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]""")]
    [InlineData("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}} x""")]
    [InlineData("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],}}""")]
    [InlineData("""{/* comment */"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""")]
    [InlineData("")]
    [InlineData("    ")]
    public void HeaderThatIsNotOneJsonValueIsRejected(string header)
    {
        string path = WriteHeader(header, 4);
        Rejection.OpenFile(path, CheckpointError.HeaderNotJson);
    }

    [Theory]
    [InlineData("[1, 2]")]
    [InlineData("\"text\"")]
    [InlineData("42")]
    public void HeaderThatIsNotAnObjectIsRejected(string header)
    {
        string path = WriteHeader(header, 0);
        var error = Rejection.OpenFile(path, CheckpointError.HeaderSchema);
        Assert.Contains("expected a JSON object", error.Message);
    }

    [Fact]
    public void TensorInfoThatIsNotAnObjectIsRejected()
    {
        string path = WriteHeader("""{"w":[0,4]}""", 4);
        Rejection.OpenFile(path, CheckpointError.HeaderSchema, "w");
    }

    [Fact]
    public void TensorInfoMissingDataOffsetsIsRejected()
    {
        string path = WriteHeader("""{"w":{"dtype":"F32","shape":[1]}}""", 4);
        var error = Rejection.OpenFile(path, CheckpointError.HeaderSchema, "w");
        Assert.Contains("\"data_offsets\"", error.Message);
    }

    [Fact]
    public void TensorInfoWithUnknownFieldIsRejected()
    {
        string path = WriteHeader("""{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"stride":[1]}}""", 4);
        var error = Rejection.OpenFile(path, CheckpointError.HeaderSchema, "w");
        Assert.Contains("stride", error.Message);
    }

    [Fact]
    public void DTypeThatIsNotAStringIsRejected()
    {
        string path = WriteHeader("""{"w":{"dtype":7,"shape":[1],"data_offsets":[0,4]}}""", 4);
        Rejection.OpenFile(path, CheckpointError.HeaderSchema, "w");
    }

    [Theory]
    [InlineData("""{"__metadata__":{"format":1}}""", "format")]
    [InlineData("""{"__metadata__":{"nested":{"a":"b"}}}""", "nested")]
    [InlineData("""{"__metadata__":["pt"]}""", "__metadata__")]
    public void MetadataThatIsNotAStringMapIsRejected(string header, string offendingKey)
    {
        string path = WriteHeader(header, 0);
        var error = Rejection.OpenFile(path, CheckpointError.MetadataNotStringMap);
        Assert.Contains(offendingKey, error.Message);
    }

    // 5. Duplicates: the reference parser silently keeps the last one.
    [Fact]
    public void DuplicateTensorNameIsRejected()
    {
        string path = WriteHeader(
            """{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""",
            8);
        Rejection.OpenFile(path, CheckpointError.DuplicateTensorName, "w");
    }

    [Fact]
    public void DuplicateTensorNameSpelledWithAnEscapeIsRejected()
    {
        string path = WriteHeader(
            """{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"\u0077":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""",
            8);
        Rejection.OpenFile(path, CheckpointError.DuplicateTensorName, "w");
    }

    [Fact]
    public void DuplicateFieldInsideTensorInfoIsRejected()
    {
        string path = WriteHeader("""{"w":{"dtype":"F32","dtype":"F16","shape":[1],"data_offsets":[0,4]}}""", 4);
        var error = Rejection.OpenFile(path, CheckpointError.HeaderSchema, "w");
        Assert.Contains("twice", error.Message);
    }

    [Fact]
    public void DuplicateMetadataKeyIsRejected()
    {
        string path = WriteHeader("""{"__metadata__":{"format":"pt","format":"np"}}""", 0);
        var error = Rejection.OpenFile(path, CheckpointError.DuplicateMetadataKey);
        Assert.Contains("format", error.Message);
    }

    [Fact]
    public void MetadataBlockGivenTwiceIsRejected()
    {
        string path = WriteHeader("""{"__metadata__":{"a":"1"},"__metadata__":{"b":"2"}}""", 0);
        Rejection.OpenFile(path, CheckpointError.DuplicateMetadataKey);
    }

    // 6. Unknown dtype (the format is case-sensitive).
    [Theory]
    [InlineData("F128")]
    [InlineData("f32")]
    [InlineData("float32")]
    public void UnknownDTypeIsRejected(string dtype)
    {
        string path = WriteHeader($$$"""{"w":{"dtype":"{{{dtype}}}","shape":[1],"data_offsets":[0,4]}}""", 4);
        var error = Rejection.OpenFile(path, CheckpointError.UnknownDType, "w");
        Assert.Contains(dtype, error.Message);
        Assert.Contains("BF16", error.Message);
    }

    // 7. Shapes whose size overflows, and shapes or offsets that are not non-negative integers.
    [Theory]
    [InlineData("[4294967296, 4294967296]")]
    [InlineData("[3037000500, 3037000500, 1]")]
    [InlineData("[2305843009213693952]")]
    [InlineData("[18446744073709551615]")]
    public void ShapeWhoseByteSizeOverflowsIsRejected(string shape)
    {
        string path = WriteHeader($$$"""{"w":{"dtype":"F32","shape":{{{shape}}},"data_offsets":[0,4]}}""", 4);
        Rejection.OpenFile(path, CheckpointError.ShapeOverflow, "w");
    }

    [Theory]
    [InlineData("[-1]")]
    [InlineData("[2.0]")]
    [InlineData("[1e3]")]
    [InlineData("[\"2\"]")]
    [InlineData("[[2]]")]
    [InlineData("4")]
    [InlineData("null")]
    public void ShapeThatIsNotAnArrayOfNonNegativeIntegersIsRejected(string shape)
    {
        string path = WriteHeader($$$"""{"w":{"dtype":"U8","shape":{{{shape}}},"data_offsets":[0,2]}}""", 2);
        Rejection.OpenFile(path, CheckpointError.InvalidShape, "w");
    }

    [Theory]
    [InlineData("[-4, 0]")]
    [InlineData("[0, 4.5]")]
    [InlineData("[0]")]
    [InlineData("[0, 4, 8]")]
    [InlineData("[0, \"4\"]")]
    [InlineData("{\"begin\": 0}")]
    [InlineData("[0, 18446744073709551615]")]
    public void OffsetsThatAreNotTwoNonNegativeIntegersAreRejected(string offsets)
    {
        string path = WriteHeader($$$"""{"w":{"dtype":"F32","shape":[1],"data_offsets":{{{offsets}}}}}""", 4);
        Rejection.OpenFile(path, CheckpointError.InvalidOffsets, "w");
    }

    [Fact]
    public void SubByteTensorThatDoesNotFillWholeBytesIsRejected()
    {
        // Three F4 values are 12 bits: the reference rejects this rather than rounding up.
        string path = WriteHeader("""{"w":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}}""", 2);
        Rejection.OpenFile(path, CheckpointError.SubByteTensorNotByteAligned, "w");
    }

    // 8. Offsets that do not tile the data buffer.
    [Fact]
    public void EndBeforeBeginIsRejected()
    {
        string path = WriteHeader("""{"w":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}}""", 8);
        var error = Rejection.OpenFile(path, CheckpointError.InvalidOffsets, "w");
        Assert.Contains("[8, 4]", error.Message);
    }

    [Fact]
    public void FirstOffsetOtherThanZeroIsRejected()
    {
        string path = WriteHeader("""{"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""", 8);
        var error = Rejection.OpenFile(path, CheckpointError.OffsetsNotContiguous, "w");
        Assert.Contains("start at 0", error.Message);
    }

    [Fact]
    public void GapBetweenTensorsIsRejected()
    {
        string path = WriteHeader(
            """{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}""",
            12);
        var error = Rejection.OpenFile(path, CheckpointError.OffsetsNotContiguous, "b");
        Assert.Contains("4-byte gap", error.Message);
        Assert.Contains("'a'", error.Message);
    }

    [Fact]
    public void OverlappingTensorsAreRejected()
    {
        string path = WriteHeader(
            """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""",
            12);
        var error = Rejection.OpenFile(path, CheckpointError.OffsetsNotContiguous, "b");
        Assert.Contains("overlap by 4 bytes", error.Message);
    }

    [Fact]
    public void TwoTensorsSharingTheSameBytesAreRejected()
    {
        string path = WriteHeader(
            """{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""",
            4);
        Rejection.OpenFile(path, CheckpointError.OffsetsNotContiguous, "b");
    }

    // 9. Offsets that disagree with shape × dtype.
    [Theory]
    [InlineData("F32", "[2, 3]", 20)]
    [InlineData("BF16", "[4]", 4)]
    [InlineData("F6_E2M3", "[4]", 4)]
    public void ByteLengthOtherThanShapeTimesDTypeSizeIsRejected(string dtype, string shape, int byteLength)
    {
        string path = WriteHeader(
            $$$"""{"w":{"dtype":"{{{dtype}}}","shape":{{{shape}}},"data_offsets":[0,{{{byteLength}}}]}}""", byteLength);
        var error = Rejection.OpenFile(path, CheckpointError.ByteLengthMismatch, "w");
        Assert.Contains($"span {byteLength}", error.Message);
    }

    // 10. The last tensor must end exactly at end of file.
    [Fact]
    public void TrailingBytesAfterTheLastTensorAreRejected()
    {
        string path = WriteHeader("""{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", 5);
        var error = Rejection.OpenFile(path, CheckpointError.TrailingBytes);
        Assert.Contains("1 bytes follow", error.Message);
    }

    [Fact]
    public void TrailingBytesAfterAnEmptyHeaderAreRejected()
    {
        string path = WriteHeader("{}", 3);
        Rejection.OpenFile(path, CheckpointError.TrailingBytes);
    }

    [Fact]
    public void DataShorterThanTheHeaderPromisesIsRejected()
    {
        string path = WriteHeader(
            """{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""",
            10);
        var error = Rejection.OpenFile(path, CheckpointError.MissingData, "b");
        Assert.Contains("truncated", error.Message);
    }

    [Fact]
    public void MissingFileIsATypedError()
    {
        string path = _folder.File("absent.safetensors");
        Rejection.OpenFile(path, CheckpointError.FileNotReadable);
    }

    [Fact]
    public void ErrorMessagesSayWhatToDo()
    {
        string path = WriteHeader("""{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", 5);
        var error = Rejection.OpenFile(path, CheckpointError.TrailingBytes);
        Assert.Contains("re-download or re-export", error.Message);
    }
}
