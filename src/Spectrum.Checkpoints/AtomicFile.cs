// Writes a file so that readers only ever see the old complete file or the new complete file, never a partial one.
namespace Spectrum.Checkpoints;

internal static class AtomicFile
{
    private const int WriteBufferBytes = 1 << 20;

    /// <summary>
    /// Writes to a temporary file in the target's folder (rename is only atomic within one file system), flushes it
    /// to disk, then renames it over the target. Any failure deletes the temporary file and leaves the target as it
    /// was. The target is never opened for writing, so a reader that has it memory-mapped keeps seeing valid bytes.
    /// </summary>
    /// <param name="whatFailed">Describes the failure for the message, e.g. "writing tensor 'x'".</param>
    public static void Write(string finalPath, Action<Stream> writeContent, Func<string> whatFailed)
    {
        string folder = Path.GetDirectoryName(finalPath)!;
        string temporaryPath = Path.Combine(folder, $".{Path.GetFileName(finalPath)}.{Guid.NewGuid():N}.tmp");
        try
        {
            Directory.CreateDirectory(folder);
            using (var stream = new FileStream(temporaryPath, FileMode.CreateNew, FileAccess.Write, FileShare.None,
                       WriteBufferBytes))
            {
                writeContent(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temporaryPath, finalPath, overwrite: true);
        }
        catch (Exception failure)
        {
            TryDelete(temporaryPath);
            if (failure is CheckpointException)
            {
                throw;
            }
            throw new CheckpointException(CheckpointError.WriteFailed, finalPath, null,
                $"{finalPath}: {whatFailed()} failed: {failure.Message} Nothing was written under this name; any " +
                "previous file there is unchanged. Fix the cause (e.g. free disk space) and write again.", failure);
        }
    }

    public static void WriteText(string finalPath, string text) =>
        Write(finalPath, stream =>
        {
            using var writer = new StreamWriter(stream, new System.Text.UTF8Encoding(false), leaveOpen: true);
            writer.Write(text);
        }, () => "writing the file");

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception cleanupFailure) when (cleanupFailure is IOException or UnauthorizedAccessException)
        {
            // The original failure matters more; a stray dot-file named *.tmp is harmless and recognisable.
        }
    }
}
