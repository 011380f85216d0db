// A read-only memory-mapped window onto part of a file; disposing it unmaps the pages so resident memory falls back.
using System.IO.MemoryMappedFiles;

namespace Spectrum.Checkpoints;

internal sealed unsafe class MappedView : IDisposable
{
    private readonly MemoryMappedViewAccessor _accessor;
    private byte* _start;

    /// <param name="length">Must be at least 1: a zero length asks .NET to map to the end of the file.</param>
    public MappedView(MemoryMappedFile mapping, long fileOffset, int length)
    {
        _accessor = mapping.CreateViewAccessor(fileOffset, length, MemoryMappedFileAccess.Read);
        byte* pointer = null;
        // AcquirePointer adds a reference to the view handle, so the mapping cannot vanish under a live span.
        _accessor.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
        _start = pointer + _accessor.PointerOffset;
        Length = length;
    }

    public int Length { get; }

    public ReadOnlySpan<byte> Span
    {
        get
        {
            ObjectDisposedException.ThrowIf(_start is null, this);
            return new ReadOnlySpan<byte>(_start, Length);
        }
    }

    // No finalizer on purpose: a span taken from an unreachable owner may still be in use, and unmapping it from a
    // finalizer would turn a leak into a crash. Owners must dispose.
    public void Dispose()
    {
        if (_start is null)
        {
            return;
        }
        _start = null;
        _accessor.SafeMemoryMappedViewHandle.ReleasePointer();
        _accessor.Dispose();
    }
}
