// Writes one safetensors file atomically, streaming each tensor's bytes from its callback and checking their count.
using System.Buffers;
using System.Buffers.Binary;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Spectrum.Checkpoints;

public static class SafetensorsWriter
{
    /// <summary>
    /// Writes <paramref name="tensors"/> in the given order (data offsets follow that order). Names, shapes and
    /// metadata are validated before any file is created; the file appears under <paramref name="path"/> only when
    /// complete and flushed to disk.
    /// </summary>
    /// <exception cref="CheckpointException">Invalid input, a callback that failed or wrote the wrong byte count, or an I/O error.</exception>
    public static void Write(string path, IReadOnlyList<TensorToWrite> tensors,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string filePath = Path.GetFullPath(path);
        var byteLengths = ValidateTensors(filePath, tensors);
        byte[] header = BuildHeader(filePath, tensors, byteLengths, metadata);

        string? tensorInProgress = null;
        AtomicFile.WriteCheckpointFile(filePath, stream =>
        {
            Span<byte> prefix = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)header.Length);
            stream.Write(prefix);
            stream.Write(header);
            for (int i = 0; i < tensors.Count; i++)
            {
                tensorInProgress = tensors[i].Name;
                var counted = new ExactLengthStream(stream, byteLengths[i], filePath, tensors[i]);
                tensors[i].WriteData(counted);
                counted.RequireComplete();
            }
        }, () => tensorInProgress is null ? "writing the header" : $"writing tensor '{tensorInProgress}'");
    }

    /// <summary>Checks every name and shape; returns each tensor's byte length.</summary>
    internal static long[] ValidateTensors(string filePath, IReadOnlyList<TensorToWrite> tensors)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        var byteLengths = new long[tensors.Count];
        for (int i = 0; i < tensors.Count; i++)
        {
            var tensor = tensors[i];
            string nothingWritten = $" Nothing was written to {filePath}.";
            if (tensor.Name == SafetensorsHeaderReader.MetadataKey)
            {
                throw new CheckpointException(CheckpointError.ReservedTensorName, filePath, tensor.Name,
                    $"{filePath}: a tensor cannot be named '{SafetensorsHeaderReader.MetadataKey}'; the format reserves " +
                    "that key for metadata. Rename the tensor." + nothingWritten);
            }
            if (tensor.Name.Length == 0 || !IsWellFormedUtf16(tensor.Name))
            {
                throw new CheckpointException(CheckpointError.InvalidTensorName, filePath, tensor.Name,
                    $"{filePath}: tensor #{i} has an empty name or one with unpaired UTF-16 surrogates; expected a " +
                    "non-empty name that can be written as UTF-8." + nothingWritten);
            }
            if (!names.Add(tensor.Name))
            {
                throw new CheckpointException(CheckpointError.DuplicateTensorName, filePath, tensor.Name,
                    $"{filePath}: tensor '{tensor.Name}' is listed twice; expected unique names." + nothingWritten);
            }
            if (tensor.Shape.Any(dimension => dimension < 0))
            {
                throw new CheckpointException(CheckpointError.InvalidShape, filePath, tensor.Name,
                    $"{filePath}: tensor '{tensor.Name}' has shape {TensorEntry.FormatShape(tensor.Shape)}; expected " +
                    "non-negative dimensions." + nothingWritten);
            }
            long? byteLength = tensor.TryByteLength();
            if (byteLength is null)
            {
                long? elementCount = tensor.TryElementCount();
                bool overflows = elementCount is null
                    || elementCount > long.MaxValue / SafetensorsDTypes.BitsPerElement(tensor.DType);
                throw overflows
                    ? new CheckpointException(CheckpointError.ShapeOverflow, filePath, tensor.Name,
                        $"{filePath}: tensor '{tensor.Name}' has shape {TensorEntry.FormatShape(tensor.Shape)}, whose " +
                        "size in bytes overflows a 64-bit integer." + nothingWritten)
                    : new CheckpointException(CheckpointError.SubByteTensorNotByteAligned, filePath, tensor.Name,
                        $"{filePath}: tensor '{tensor.Name}' is {SafetensorsDTypes.HeaderName(tensor.DType)} with shape " +
                        $"{TensorEntry.FormatShape(tensor.Shape)}, whose bits do not fill whole bytes; expected " +
                        "elements × bits to be a multiple of 8." + nothingWritten);
            }
            byteLengths[i] = byteLength.Value;
        }
        long total = 0;
        foreach (long length in byteLengths)
        {
            total = length > long.MaxValue - total
                ? throw new CheckpointException(CheckpointError.ShapeOverflow, filePath, null,
                    $"{filePath}: the tensors' total size overflows a 64-bit integer. Nothing was written.")
                : total + length;
        }
        return byteLengths;
    }

    /// <summary>The JSON header, space-padded so the data buffer starts on an 8-byte boundary.</summary>
    private static byte[] BuildHeader(string filePath, IReadOnlyList<TensorToWrite> tensors, long[] byteLengths,
        IReadOnlyDictionary<string, string>? metadata)
    {
        var json = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(json, new JsonWriterOptions
               {
                   Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
                   SkipValidation = false,
               }))
        {
            writer.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                writer.WriteStartObject(SafetensorsHeaderReader.MetadataKey);
                foreach (var (key, value) in metadata.OrderBy(pair => pair.Key, StringComparer.Ordinal))
                {
                    if (!IsWellFormedUtf16(key) || !IsWellFormedUtf16(value))
                    {
                        throw new CheckpointException(CheckpointError.MetadataNotStringMap, filePath, null,
                            $"{filePath}: metadata key '{key}' or its value has unpaired UTF-16 surrogates and cannot " +
                            "be written as UTF-8. Nothing was written.");
                    }
                    writer.WriteString(key, value);
                }
                writer.WriteEndObject();
            }
            long offset = 0;
            for (int i = 0; i < tensors.Count; i++)
            {
                writer.WriteStartObject(tensors[i].Name);
                writer.WriteString("dtype", SafetensorsDTypes.HeaderName(tensors[i].DType));
                writer.WriteStartArray("shape");
                foreach (long dimension in tensors[i].Shape)
                {
                    writer.WriteNumberValue(dimension);
                }
                writer.WriteEndArray();
                writer.WriteStartArray("data_offsets");
                writer.WriteNumberValue(offset);
                writer.WriteNumberValue(offset + byteLengths[i]);
                writer.WriteEndArray();
                writer.WriteEndObject();
                offset += byteLengths[i];
            }
            writer.WriteEndObject();
        }

        int paddedLength = (json.WrittenCount + 7) / 8 * 8;
        if (paddedLength > SafetensorsHeaderReader.MaxHeaderBytes)
        {
            throw new CheckpointException(CheckpointError.HeaderTooLarge, filePath, null,
                $"{filePath}: the header would be {paddedLength} bytes, over the format's limit of " +
                $"{SafetensorsHeaderReader.MaxHeaderBytes}; split the tensors over several files. Nothing was written.");
        }
        var header = new byte[paddedLength];
        json.WrittenSpan.CopyTo(header);
        header.AsSpan(json.WrittenCount).Fill((byte)' ');
        return header;
    }

    private static readonly System.Text.UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>False when the string holds an unpaired surrogate, which has no UTF-8 encoding.</summary>
    private static bool IsWellFormedUtf16(string text)
    {
        try
        {
            StrictUtf8.GetByteCount(text);
            return true;
        }
        catch (System.Text.EncoderFallbackException)
        {
            return false;
        }
    }

    /// <summary>Forwards a tensor callback's writes and fails as soon as it writes more bytes than the tensor holds.</summary>
    private sealed class ExactLengthStream(Stream inner, long expectedBytes, string filePath, TensorToWrite tensor)
        : Stream
    {
        private long _written;

        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => _written;

        public override long Position
        {
            get => _written;
            set => throw new NotSupportedException("Tensor data is written sequentially.");
        }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            if (buffer.Length > expectedBytes - _written)
            {
                throw WrongLength($"tried to write at least {_written + buffer.Length} bytes");
            }
            inner.Write(buffer);
            _written += buffer.Length;
        }

        public override void WriteByte(byte value) => Write([value]);

        public void RequireComplete()
        {
            if (_written != expectedBytes)
            {
                throw WrongLength($"wrote only {_written} bytes");
            }
        }

        // Flushing is the writer's job (once, to disk, at the end); callbacks flushing each chunk would only slow it.
        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();

        private CheckpointException WrongLength(string whatHappened) =>
            new(CheckpointError.ByteLengthMismatch, filePath, tensor.Name,
                $"{filePath}: the data callback for tensor '{tensor.Name}' {whatHappened}, but " +
                $"{SafetensorsDTypes.HeaderName(tensor.DType)} {TensorEntry.FormatShape(tensor.Shape)} needs exactly " +
                $"{expectedBytes}. Nothing was written under this name; fix the callback.");
    }
}
