// One safetensors file, validated in full on open, whose tensors are then read through per-tensor memory maps.
using System.IO.MemoryMappedFiles;

namespace Spectrum.Checkpoints;

/// <summary>
/// An open, fully validated safetensors file. The header is checked against every rule of the reference reader
/// (plus duplicate-key detection) before <see cref="Open"/> returns, so later reads cannot meet a malformed layout.
/// The file is never written to.
/// </summary>
public sealed class SafetensorsFile : IDisposable
{
    private const int DecodeChunkElements = 16 << 20;

    private readonly FileStream _stream;
    private readonly long _validatedLength;
    private readonly MemoryMappedFile? _mapping;
    private readonly Dictionary<string, TensorEntry> _entriesByName;

    private SafetensorsFile(string filePath, SafetensorsHeader header, FileStream stream, MemoryMappedFile? mapping)
    {
        FilePath = filePath;
        Tensors = header.TensorsInOffsetOrder;
        Metadata = header.Metadata;
        DataBufferOffset = header.DataBufferOffset;
        _stream = stream;
        _validatedLength = header.DataBufferOffset + header.DataBufferLength;
        _mapping = mapping;
        _entriesByName = Tensors.ToDictionary(entry => entry.Name, StringComparer.Ordinal);
    }

    /// <summary>Absolute path of the file.</summary>
    public string FilePath { get; }

    /// <summary>Every tensor, ordered by data offset.</summary>
    public IReadOnlyList<TensorEntry> Tensors { get; }

    /// <summary>The header's <c>__metadata__</c> map (empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>File offset of the data buffer (8 + header length); tensor offsets are relative to it.</summary>
    public long DataBufferOffset { get; }

    /// <exception cref="CheckpointException">The file is missing, unreadable, or breaks a format rule.</exception>
    public static SafetensorsFile Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string filePath = Path.GetFullPath(path);
        FileStream stream;
        try
        {
            stream = new FileStream(filePath, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1);
        }
        catch (Exception failure) when (failure is IOException or UnauthorizedAccessException)
        {
            throw Unreadable(filePath, failure);
        }

        try
        {
            var header = SafetensorsHeaderReader.Read(filePath, stream);
            // A mapping needs a non-empty file region; with no tensor bytes there is nothing to map.
            MemoryMappedFile? mapping = header.DataBufferLength == 0
                ? null
                : MemoryMappedFile.CreateFromFile(stream, mapName: null, capacity: 0, MemoryMappedFileAccess.Read,
                    HandleInheritability.None, leaveOpen: true);
            return new SafetensorsFile(filePath, header, stream, mapping);
        }
        catch (Exception failure) when (failure is IOException or UnauthorizedAccessException)
        {
            stream.Dispose();
            throw Unreadable(filePath, failure);
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    /// <exception cref="CheckpointException"><see cref="CheckpointError.TensorNotFound"/>.</exception>
    public TensorEntry GetEntry(string name)
    {
        if (_entriesByName.TryGetValue(name, out var entry))
        {
            return entry;
        }
        throw TensorNotFound(FilePath, name, Tensors.Select(tensor => tensor.Name));
    }

    public bool TryGetEntry(string name, [System.Diagnostics.CodeAnalysis.MaybeNullWhen(false)] out TensorEntry entry) =>
        _entriesByName.TryGetValue(name, out entry);

    /// <summary>Maps just this tensor's bytes; dispose the result to unmap them. Safe to call from several threads.</summary>
    public TensorBytes ReadBytes(string name)
    {
        var entry = GetEntry(name);
        RequireUnchangedLength(entry);
        return new TensorBytes(entry, _mapping, DataBufferOffset + entry.DataBegin);
    }

    /// <summary>Decodes the whole tensor; <paramref name="destination"/> must have one slot per element.</summary>
    public void DecodeToFloat32(string name, Span<float> destination)
    {
        var entry = GetEntry(name);
        if (destination.Length != entry.ElementCount)
        {
            throw new ArgumentException(
                $"Tensor '{name}' in {FilePath} has {entry.ElementCount} elements (shape {entry.ShapeText}) but the " +
                $"destination has {destination.Length} slots; pass a destination of exactly that length, or use " +
                "DecodeToFloat32(name, firstElement, destination) to decode part of it.", nameof(destination));
        }
        DecodeToFloat32(name, 0, destination);
    }

    /// <summary>
    /// Decodes destination.Length elements starting at element <paramref name="firstElement"/> (C order), mapping
    /// only the bytes needed, so tensors too large for one span can be processed in pieces.
    /// </summary>
    /// <exception cref="CheckpointException"><see cref="CheckpointError.UnsupportedDType"/> for non-float dtypes.</exception>
    public void DecodeToFloat32(string name, long firstElement, Span<float> destination)
    {
        var entry = GetEntry(name);
        RequireDecodable(entry);
        if (firstElement < 0 || firstElement > entry.ElementCount || destination.Length > entry.ElementCount - firstElement)
        {
            throw new ArgumentOutOfRangeException(nameof(firstElement),
                $"Cannot decode {destination.Length} elements from element {firstElement} of tensor '{name}' in " +
                $"{FilePath}, which has {entry.ElementCount} elements.");
        }
        RequireUnchangedLength(entry);
        int bytesPerElement = SafetensorsDTypes.BitsPerElement(entry.DType) / 8;
        for (int done = 0; done < destination.Length;)
        {
            int chunk = Math.Min(DecodeChunkElements, destination.Length - done);
            long fileOffset = DataBufferOffset + entry.DataBegin + (firstElement + done) * bytesPerElement;
            using var view = new MappedView(_mapping!, fileOffset, chunk * bytesPerElement);
            DTypeDecoder.ToFloat32(view.Span, entry.DType, destination.Slice(done, chunk));
            done += chunk;
        }
    }

    /// <summary>Decodes the whole tensor into a new array.</summary>
    public float[] ReadFloat32(string name)
    {
        var entry = GetEntry(name);
        RequireDecodable(entry);
        if (entry.ElementCount > Array.MaxLength)
        {
            throw new CheckpointException(CheckpointError.TensorTooLargeForSpan, FilePath, name,
                $"{FilePath}: tensor '{name}' has {entry.ElementCount} elements, more than one .NET array holds " +
                $"({Array.MaxLength}); decode it in pieces with DecodeToFloat32(name, firstElement, destination).");
        }
        var values = new float[entry.ElementCount];
        DecodeToFloat32(name, 0, values);
        return values;
    }

    public void Dispose()
    {
        _mapping?.Dispose();
        _stream.Dispose();
    }

    internal static CheckpointException TensorNotFound(string filePath, string name, IEnumerable<string> available)
    {
        var names = available.ToList();
        string sample = string.Join(", ", names.Take(5).Select(candidate => $"'{candidate}'"));
        string listing = names.Count == 0 ? "it holds no tensors" : $"it holds {names.Count} tensors, e.g. {sample}";
        return new CheckpointException(CheckpointError.TensorNotFound, filePath, name,
            $"{filePath}: no tensor named '{name}'; {listing}. Check the name (names are case-sensitive and " +
            "include prefixes such as 'model.').");
    }

    /// <summary>
    /// Reading mapped pages past a file's end kills the process (SIGBUS), so a file truncated since it was validated
    /// (e.g. re-saved in place by a non-atomic writer) must become a typed error before any page is touched.
    /// </summary>
    private void RequireUnchangedLength(TensorEntry entry)
    {
        long currentLength = _stream.Length;
        if (currentLength != _validatedLength)
        {
            throw new CheckpointException(CheckpointError.FileChangedWhileOpen, FilePath, entry.Name,
                $"{FilePath}: the file was {_validatedLength} bytes when opened but is now {currentLength}, so it was " +
                $"rewritten in place while open; refusing to read tensor '{entry.Name}' from it. Reopen the file " +
                "once the writer has finished (writers should write a new file and rename it over the old one).");
        }
    }

    private void RequireDecodable(TensorEntry entry)
    {
        if (!SafetensorsDTypes.CanDecodeToFloat(entry.DType))
        {
            throw new CheckpointException(CheckpointError.UnsupportedDType, FilePath, entry.Name,
                $"{FilePath}: tensor '{entry.Name}' is {SafetensorsDTypes.HeaderName(entry.DType)}, which cannot be " +
                "decoded to float; supported: " +
                string.Join(", ", SafetensorsDTypes.DecodableToFloat.Select(SafetensorsDTypes.HeaderName)) +
                ". Read its raw bytes with ReadBytes instead.");
        }
    }

    private static CheckpointException Unreadable(string filePath, Exception failure) =>
        new(CheckpointError.FileNotReadable, filePath, null,
            $"{filePath}: cannot read the file ({failure.Message}). Check that it exists and is readable.", failure);
}
