// The raw bytes of one tensor, memory-mapped on demand so a whole-model scan never holds more than a tensor or two.
using System.IO.MemoryMappedFiles;

namespace Spectrum.Checkpoints;

/// <summary>
/// A read-only view of one tensor's bytes. Tensors up to <see cref="int.MaxValue"/> bytes are mapped once and
/// exposed as <see cref="Span"/>; larger ones can only be read piecewise with <see cref="CopyTo"/>, which maps just
/// the requested range. Dispose promptly: disposing unmaps the pages, which is what keeps resident memory low.
/// </summary>
public sealed class TensorBytes : IDisposable
{
    private const int CopyChunkBytes = 64 << 20;

    private readonly MemoryMappedFile? _mapping;
    private readonly long _fileOffset;
    private MappedView? _wholeTensor;
    private bool _disposed;

    internal TensorBytes(TensorEntry entry, MemoryMappedFile? mapping, long fileOffset)
    {
        Entry = entry;
        _mapping = mapping;
        _fileOffset = fileOffset;
        if (entry.ByteLength is > 0 and <= int.MaxValue)
        {
            _wholeTensor = new MappedView(mapping!, fileOffset, (int)entry.ByteLength);
        }
    }

    public TensorEntry Entry { get; }

    public long Length => Entry.ByteLength;

    /// <exception cref="CheckpointException">
    /// <see cref="CheckpointError.TensorTooLargeForSpan"/> when the tensor exceeds <see cref="int.MaxValue"/> bytes.
    /// </exception>
    public ReadOnlySpan<byte> Span
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (Length > int.MaxValue)
            {
                throw new CheckpointException(CheckpointError.TensorTooLargeForSpan, Entry.FilePath, Entry.Name,
                    $"{Entry.FilePath}: tensor '{Entry.Name}' is {Length} bytes, more than a span can address " +
                    $"({int.MaxValue}); read it in pieces with TensorBytes.CopyTo or " +
                    "SafetensorsFile.DecodeToFloat32(name, firstElement, destination).");
            }
            return _wholeTensor is null ? ReadOnlySpan<byte>.Empty : _wholeTensor.Span;
        }
    }

    /// <summary>Copies exactly destination.Length bytes starting <paramref name="sourceOffset"/> bytes into the tensor.</summary>
    public void CopyTo(Span<byte> destination, long sourceOffset)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (sourceOffset < 0 || sourceOffset > Length || destination.Length > Length - sourceOffset)
        {
            throw new ArgumentOutOfRangeException(nameof(sourceOffset),
                $"Cannot copy {destination.Length} bytes from offset {sourceOffset} of tensor '{Entry.Name}', " +
                $"which is {Length} bytes long.");
        }
        if (_wholeTensor is not null)
        {
            _wholeTensor.Span.Slice((int)sourceOffset, destination.Length).CopyTo(destination);
            return;
        }
        for (int copied = 0; copied < destination.Length;)
        {
            int chunk = Math.Min(CopyChunkBytes, destination.Length - copied);
            using var view = new MappedView(_mapping!, _fileOffset + sourceOffset + copied, chunk);
            view.Span.CopyTo(destination.Slice(copied, chunk));
            copied += chunk;
        }
    }

    public void Dispose()
    {
        _disposed = true;
        _wholeTensor?.Dispose();
        _wholeTensor = null;
    }
}
