// Reads and strictly validates a safetensors header: length prefix, JSON schema, dtypes, shapes and offsets.
// Hand-written on purpose: a deserializer would hide duplicate keys, unchecked lengths and which rule a bad file breaks.
using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using System.Text.Unicode;

namespace Spectrum.Checkpoints;

internal sealed record SafetensorsHeader(
    IReadOnlyList<TensorEntry> TensorsInOffsetOrder,
    IReadOnlyDictionary<string, string> Metadata,
    long DataBufferOffset,
    long DataBufferLength);

internal static class SafetensorsHeaderReader
{
    /// <summary>The reference reader's limit; a larger length prefix is corruption or an attack.</summary>
    public const long MaxHeaderBytes = 100_000_000;

    public const string MetadataKey = "__metadata__";

    private const string CorruptFileAdvice =
        "The file is damaged or was not written by a safetensors writer; re-download or re-export it.";

    private static readonly JsonReaderOptions StrictJson = new()
    {
        CommentHandling = JsonCommentHandling.Disallow,
        AllowTrailingCommas = false,
        MaxDepth = 64,
    };

    public static SafetensorsHeader Read(string filePath, Stream stream)
    {
        long fileLength = stream.Length;
        if (fileLength < 8)
        {
            throw new CheckpointException(CheckpointError.FileTooShort, filePath, null,
                $"{filePath}: file is {fileLength} bytes; a safetensors file starts with an 8-byte header length. " +
                CorruptFileAdvice);
        }

        Span<byte> prefix = stackalloc byte[8];
        stream.ReadExactly(prefix);
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (headerLength > MaxHeaderBytes)
        {
            throw new CheckpointException(CheckpointError.HeaderTooLarge, filePath, null,
                $"{filePath}: header length prefix is {headerLength} bytes; at most {MaxHeaderBytes} is allowed. " +
                CorruptFileAdvice);
        }

        // Cannot overflow: headerLength <= 1e8 was checked above.
        long dataBufferOffset = 8 + (long)headerLength;
        if (dataBufferOffset > fileLength)
        {
            throw new CheckpointException(CheckpointError.HeaderPastEndOfFile, filePath, null,
                $"{filePath}: header length prefix says {headerLength} bytes of JSON follow, but the file has only " +
                $"{fileLength - 8} bytes after the prefix (truncated download?). " + CorruptFileAdvice);
        }

        var headerBytes = new byte[headerLength];
        stream.ReadExactly(headerBytes);
        if (!Utf8.IsValid(headerBytes))
        {
            throw new CheckpointException(CheckpointError.HeaderNotUtf8, filePath, null,
                $"{filePath}: header is not valid UTF-8 (first bad byte at header offset " +
                $"{FirstInvalidUtf8Index(headerBytes)}); the header must be UTF-8 JSON. " + CorruptFileAdvice);
        }

        var (tensors, metadata) = ParseJson(filePath, headerBytes);
        long dataBufferLength = fileLength - dataBufferOffset;
        var ordered = ValidateLayout(filePath, tensors, dataBufferLength);
        return new SafetensorsHeader(ordered, metadata, dataBufferOffset, dataBufferLength);
    }

    private static int FirstInvalidUtf8Index(byte[] bytes)
    {
        var strict = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);
        try
        {
            strict.GetCharCount(bytes);
            return -1;
        }
        catch (DecoderFallbackException invalid)
        {
            return invalid.Index;
        }
    }

    private static (List<TensorEntry> Tensors, Dictionary<string, string> Metadata) ParseJson(
        string filePath, byte[] headerBytes)
    {
        var reader = new Utf8JsonReader(headerBytes, isFinalBlock: true, new JsonReaderState(StrictJson));
        var tensors = new List<TensorEntry>();
        var tensorNames = new HashSet<string>(StringComparer.Ordinal);
        Dictionary<string, string>? metadata = null;
        try
        {
            if (!reader.Read())
            {
                throw new CheckpointException(CheckpointError.HeaderNotJson, filePath, null,
                    $"{filePath}: header is empty or only whitespace; expected a JSON object. " + CorruptFileAdvice);
            }
            if (reader.TokenType != JsonTokenType.StartObject)
            {
                throw Schema(filePath, null, $"header is a JSON {Describe(reader.TokenType)}; expected a JSON object " +
                    "mapping tensor names to {\"dtype\", \"shape\", \"data_offsets\"}.");
            }

            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                string key = reader.GetString()!;
                if (key == MetadataKey)
                {
                    if (metadata is not null)
                    {
                        throw new CheckpointException(CheckpointError.DuplicateMetadataKey, filePath, null,
                            $"{filePath}: header has \"{MetadataKey}\" twice; expected it at most once. " +
                            CorruptFileAdvice);
                    }
                    metadata = ParseMetadata(filePath, ref reader);
                }
                else
                {
                    if (!tensorNames.Add(key))
                    {
                        throw new CheckpointException(CheckpointError.DuplicateTensorName, filePath, key,
                            $"{filePath}: tensor '{key}' appears twice in the header; a reader that kept either " +
                            "copy would silently load different weights than another reader. " + CorruptFileAdvice);
                    }
                    tensors.Add(ParseTensorInfo(filePath, key, ref reader));
                }
            }

            // Read() past the closing brace makes the reader reject anything but whitespace after the object.
            if (reader.Read())
            {
                throw new CheckpointException(CheckpointError.HeaderNotJson, filePath, null,
                    $"{filePath}: unexpected {Describe(reader.TokenType)} after the header object. " + CorruptFileAdvice);
            }
        }
        catch (JsonException syntax)
        {
            throw new CheckpointException(CheckpointError.HeaderNotJson, filePath, null,
                $"{filePath}: header is not well-formed JSON at line {syntax.LineNumber + 1}, byte " +
                $"{syntax.BytePositionInLine + 1} of that line: {syntax.Message} " + CorruptFileAdvice, syntax);
        }

        return (tensors, metadata ?? new Dictionary<string, string>(StringComparer.Ordinal));
    }

    private static Dictionary<string, string> ParseMetadata(string filePath, ref Utf8JsonReader reader)
    {
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        reader.Read();
        // The reference reader treats a null __metadata__ as absent; accepting it costs nothing.
        if (reader.TokenType == JsonTokenType.Null)
        {
            return metadata;
        }
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            throw new CheckpointException(CheckpointError.MetadataNotStringMap, filePath, null,
                $"{filePath}: \"{MetadataKey}\" is a JSON {Describe(reader.TokenType)}; expected an object whose " +
                "values are all strings. " + CorruptFileAdvice);
        }
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            string key = reader.GetString()!;
            reader.Read();
            if (reader.TokenType != JsonTokenType.String)
            {
                throw new CheckpointException(CheckpointError.MetadataNotStringMap, filePath, null,
                    $"{filePath}: \"{MetadataKey}\" entry '{key}' is a JSON {Describe(reader.TokenType)}; expected " +
                    "a string (the format allows only string-to-string metadata). " + CorruptFileAdvice);
            }
            if (!metadata.TryAdd(key, reader.GetString()!))
            {
                throw new CheckpointException(CheckpointError.DuplicateMetadataKey, filePath, null,
                    $"{filePath}: \"{MetadataKey}\" has key '{key}' twice; expected each key once. " +
                    CorruptFileAdvice);
            }
        }
        return metadata;
    }

    private static TensorEntry ParseTensorInfo(string filePath, string name, ref Utf8JsonReader reader)
    {
        reader.Read();
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            throw Schema(filePath, name, $"tensor '{name}' is a JSON {Describe(reader.TokenType)}; expected an " +
                "object {\"dtype\", \"shape\", \"data_offsets\"}.");
        }

        SafetensorsDType? dtype = null;
        List<long>? shape = null;
        (long Begin, long End)? offsets = null;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            string field = reader.GetString()!;
            bool alreadySeen = field switch
            {
                "dtype" => dtype is not null,
                "shape" => shape is not null,
                "data_offsets" => offsets is not null,
                _ => throw Schema(filePath, name, $"tensor '{name}' has unknown field '{field}'; expected only " +
                    "\"dtype\", \"shape\" and \"data_offsets\"."),
            };
            if (alreadySeen)
            {
                throw Schema(filePath, name, $"tensor '{name}' has field '{field}' twice; expected it once.");
            }
            reader.Read();
            switch (field)
            {
                case "dtype":
                    dtype = ParseDType(filePath, name, ref reader);
                    break;
                case "shape":
                    shape = ParseShape(filePath, name, ref reader);
                    break;
                default:
                    offsets = ParseOffsets(filePath, name, ref reader);
                    break;
            }
        }

        if (dtype is null || shape is null || offsets is null)
        {
            string missing = string.Join(", ", new[]
            {
                dtype is null ? "\"dtype\"" : null,
                shape is null ? "\"shape\"" : null,
                offsets is null ? "\"data_offsets\"" : null,
            }.Where(field => field is not null));
            throw Schema(filePath, name, $"tensor '{name}' lacks {missing}; every tensor needs \"dtype\", " +
                "\"shape\" and \"data_offsets\".");
        }
        return new TensorEntry(name, dtype.Value, shape, offsets.Value.Begin, offsets.Value.End, filePath);
    }

    private static SafetensorsDType ParseDType(string filePath, string name, ref Utf8JsonReader reader)
    {
        if (reader.TokenType != JsonTokenType.String)
        {
            throw Schema(filePath, name, $"tensor '{name}' has a \"dtype\" that is a JSON " +
                $"{Describe(reader.TokenType)}; expected a string such as \"BF16\".");
        }
        string text = reader.GetString()!;
        if (!SafetensorsDTypes.TryParse(text, out var dtype))
        {
            throw new CheckpointException(CheckpointError.UnknownDType, filePath, name,
                $"{filePath}: tensor '{name}' has dtype \"{text}\"; expected one of " +
                $"{SafetensorsDTypes.AllHeaderNames}. If the file comes from a newer safetensors version, this " +
                "reader needs that dtype added; otherwise the file is damaged.");
        }
        return dtype;
    }

    private static List<long> ParseShape(string filePath, string name, ref Utf8JsonReader reader)
    {
        if (reader.TokenType != JsonTokenType.StartArray)
        {
            throw new CheckpointException(CheckpointError.InvalidShape, filePath, name,
                $"{filePath}: tensor '{name}' has a \"shape\" that is a JSON {Describe(reader.TokenType)}; " +
                "expected an array of non-negative integers ([] for a scalar). " + CorruptFileAdvice);
        }
        var shape = new List<long>();
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (reader.TokenType != JsonTokenType.Number)
            {
                throw new CheckpointException(CheckpointError.InvalidShape, filePath, name,
                    $"{filePath}: tensor '{name}' has a shape dimension that is a JSON " +
                    $"{Describe(reader.TokenType)}; expected a non-negative integer. " + CorruptFileAdvice);
            }
            if (reader.TryGetInt64(out long dimension) && dimension >= 0)
            {
                shape.Add(dimension);
                continue;
            }
            string raw = Encoding.UTF8.GetString(reader.ValueSpan);
            if (IsPlainNonNegativeInteger(raw))
            {
                throw new CheckpointException(CheckpointError.ShapeOverflow, filePath, name,
                    $"{filePath}: tensor '{name}' has shape dimension {raw}, which does not fit in a signed 64-bit " +
                    "integer; no real tensor is that large. " + CorruptFileAdvice);
            }
            throw new CheckpointException(CheckpointError.InvalidShape, filePath, name,
                $"{filePath}: tensor '{name}' has shape dimension {raw}; expected a non-negative integer. " +
                CorruptFileAdvice);
        }
        return shape;
    }

    private static (long Begin, long End) ParseOffsets(string filePath, string name, ref Utf8JsonReader reader)
    {
        if (reader.TokenType != JsonTokenType.StartArray)
        {
            throw new CheckpointException(CheckpointError.InvalidOffsets, filePath, name,
                $"{filePath}: tensor '{name}' has \"data_offsets\" that is a JSON {Describe(reader.TokenType)}; " +
                "expected an array [begin, end] of two non-negative integers. " + CorruptFileAdvice);
        }
        var values = new List<long>(2);
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (reader.TokenType != JsonTokenType.Number)
            {
                throw new CheckpointException(CheckpointError.InvalidOffsets, filePath, name,
                    $"{filePath}: tensor '{name}' has a data offset that is a JSON {Describe(reader.TokenType)}; " +
                    "expected a non-negative integer. " + CorruptFileAdvice);
            }
            if (!reader.TryGetInt64(out long offset) || offset < 0)
            {
                string raw = Encoding.UTF8.GetString(reader.ValueSpan);
                string why = IsPlainNonNegativeInteger(raw) ? "is beyond any possible file size" : "is not a " +
                    "non-negative integer";
                throw new CheckpointException(CheckpointError.InvalidOffsets, filePath, name,
                    $"{filePath}: tensor '{name}' has data offset {raw}, which {why}. " + CorruptFileAdvice);
            }
            if (values.Count == 2)
            {
                throw new CheckpointException(CheckpointError.InvalidOffsets, filePath, name,
                    $"{filePath}: tensor '{name}' has more than two \"data_offsets\"; expected [begin, end]. " +
                    CorruptFileAdvice);
            }
            values.Add(offset);
        }
        if (values.Count != 2)
        {
            throw new CheckpointException(CheckpointError.InvalidOffsets, filePath, name,
                $"{filePath}: tensor '{name}' has {values.Count} \"data_offsets\"; expected [begin, end]. " +
                CorruptFileAdvice);
        }
        if (values[1] < values[0])
        {
            throw new CheckpointException(CheckpointError.InvalidOffsets, filePath, name,
                $"{filePath}: tensor '{name}' has data_offsets [{values[0]}, {values[1]}]: end is before begin; " +
                "expected begin <= end. " + CorruptFileAdvice);
        }
        return (values[0], values[1]);
    }

    /// <summary>
    /// Applies the reference reader's layout rules: sorted by offset the tensors tile the data buffer from 0 with
    /// no gap or overlap, each spans exactly shape × dtype bytes, and the last one ends exactly at end of file.
    /// </summary>
    private static List<TensorEntry> ValidateLayout(string filePath, List<TensorEntry> tensors, long dataBufferLength)
    {
        var ordered = tensors
            .OrderBy(tensor => tensor.DataBegin)
            .ThenBy(tensor => tensor.DataEnd)
            .ThenBy(tensor => tensor.Name, StringComparer.Ordinal)
            .ToList();

        long expectedBegin = 0;
        TensorEntry? previous = null;
        foreach (var tensor in ordered)
        {
            if (tensor.DataBegin != expectedBegin)
            {
                string relation = previous is null
                    ? $"the first tensor must start at 0"
                    : tensor.DataBegin > expectedBegin
                        ? $"previous tensor '{previous.Name}' ends at {expectedBegin}, leaving a " +
                          $"{tensor.DataBegin - expectedBegin}-byte gap"
                        : $"previous tensor '{previous.Name}' ends at {expectedBegin}, so they overlap by " +
                          $"{expectedBegin - tensor.DataBegin} bytes";
                throw new CheckpointException(CheckpointError.OffsetsNotContiguous, filePath, tensor.Name,
                    $"{filePath}: tensor '{tensor.Name}' starts at data offset {tensor.DataBegin}, but {relation}; " +
                    "expected tensors to follow each other with no gaps or overlaps. " + CorruptFileAdvice);
            }

            long expectedBytes = ExpectedByteLength(filePath, tensor);
            if (tensor.ByteLength != expectedBytes)
            {
                throw new CheckpointException(CheckpointError.ByteLengthMismatch, filePath, tensor.Name,
                    $"{filePath}: tensor '{tensor.Name}' ({SafetensorsDTypes.HeaderName(tensor.DType)} " +
                    $"{tensor.ShapeText}) needs {expectedBytes} bytes but data_offsets [{tensor.DataBegin}, " +
                    $"{tensor.DataEnd}] span {tensor.ByteLength}. " + CorruptFileAdvice);
            }
            expectedBegin = tensor.DataEnd;
            previous = tensor;
        }

        if (expectedBegin < dataBufferLength)
        {
            throw new CheckpointException(CheckpointError.TrailingBytes, filePath, null,
                $"{filePath}: {dataBufferLength - expectedBegin} bytes follow the last tensor's data (the data " +
                $"buffer is {dataBufferLength} bytes, tensors use {expectedBegin}); expected the file to end " +
                "exactly after the last tensor, since hidden trailing bytes make polyglot files possible. " +
                CorruptFileAdvice);
        }
        if (expectedBegin > dataBufferLength)
        {
            throw new CheckpointException(CheckpointError.MissingData, filePath, previous?.Name,
                $"{filePath}: the header places tensor data up to data offset {expectedBegin} (tensor " +
                $"'{previous?.Name}'), but the data buffer holds only {dataBufferLength} bytes; the file is " +
                "truncated. Re-download or re-export it.");
        }
        return ordered;
    }

    private static long ExpectedByteLength(string filePath, TensorEntry tensor)
    {
        long elementCount = 1;
        foreach (long dimension in tensor.Shape)
        {
            if (dimension != 0 && elementCount > long.MaxValue / dimension)
            {
                throw ShapeOverflow(filePath, tensor);
            }
            elementCount *= dimension;
        }
        int bits = SafetensorsDTypes.BitsPerElement(tensor.DType);
        if (elementCount > long.MaxValue / bits)
        {
            throw ShapeOverflow(filePath, tensor);
        }
        long totalBits = elementCount * bits;
        if (totalBits % 8 != 0)
        {
            throw new CheckpointException(CheckpointError.SubByteTensorNotByteAligned, filePath, tensor.Name,
                $"{filePath}: tensor '{tensor.Name}' is {SafetensorsDTypes.HeaderName(tensor.DType)} with shape " +
                $"{tensor.ShapeText}: {elementCount} elements × {bits} bits = {totalBits} bits, which does not end " +
                "on a byte boundary; expected elements × bits to be a multiple of 8. " + CorruptFileAdvice);
        }
        return totalBits / 8;
    }

    private static CheckpointException ShapeOverflow(string filePath, TensorEntry tensor) =>
        new(CheckpointError.ShapeOverflow, filePath, tensor.Name,
            $"{filePath}: tensor '{tensor.Name}' has shape {tensor.ShapeText}, whose size in bytes overflows a " +
            "signed 64-bit integer; no real tensor is that large. " + CorruptFileAdvice);

    private static CheckpointException Schema(string filePath, string? tensorName, string problem) =>
        new(CheckpointError.HeaderSchema, filePath, tensorName, $"{filePath}: {problem} " + CorruptFileAdvice);

    private static bool IsPlainNonNegativeInteger(string raw) => raw.Length > 0 && raw.All(char.IsAsciiDigit);

    private static string Describe(JsonTokenType token) => token switch
    {
        JsonTokenType.StartObject => "object",
        JsonTokenType.StartArray => "array",
        JsonTokenType.String => "string",
        JsonTokenType.Number => "number",
        JsonTokenType.True or JsonTokenType.False => "boolean",
        JsonTokenType.Null => "null",
        _ => token.ToString(),
    };
}
