// Flushes a folder's entries (new names, renames) to disk, which a file's own flush does not cover on POSIX systems.
using System.Runtime.InteropServices;

namespace Spectrum.Training;

internal static partial class DirectorySync
{
    private const int ReadOnly = 0;

    /// <summary>
    /// fsync on the folder itself, so a rename or a new file survives a power cut, not just the file's bytes. Best
    /// effort: a file system that cannot sync folders (some return EINVAL) leaves the ordering to the kernel; Windows
    /// has no equivalent call and commits renames with the file system journal.
    /// </summary>
    public static void Flush(string folder)
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS() && !OperatingSystem.IsFreeBSD())
            return;
        int descriptor = Open(folder, ReadOnly);
        if (descriptor < 0)
            return;
        try
        {
            _ = Fsync(descriptor);
        }
        finally
        {
            _ = Close(descriptor);
        }
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int descriptor);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int descriptor);
}
