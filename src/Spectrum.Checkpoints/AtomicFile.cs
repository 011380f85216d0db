// Writes a file so that readers only ever see the old complete file or the new complete file, never a partial one.
namespace Spectrum.Checkpoints;

public static class AtomicFile
{
    private const int WriteBufferBytes = 1 << 20;
    private static readonly System.Text.UTF8Encoding Utf8WithoutBom = new(encoderShouldEmitUTF8Identifier: false);

    /// <summary>
    /// Writes to a temporary file in the target's folder (rename is only atomic within one file system), flushes it
    /// to disk, then renames it over the target. Any failure deletes the temporary file, leaves the target as it was
    /// and rethrows. The target is never opened for writing, so a reader that has it memory-mapped keeps valid bytes.
    /// </summary>
    public static void Write(string finalPath, Action<Stream> writeContent)
    {
        string fullPath = Path.GetFullPath(finalPath);
        string folder = Path.GetDirectoryName(fullPath)!;
        string temporaryPath = Path.Combine(folder, $".{Path.GetFileName(fullPath)}.{Guid.NewGuid():N}.tmp");
        try
        {
            Directory.CreateDirectory(folder);
            using (var stream = new FileStream(temporaryPath, FileMode.CreateNew, FileAccess.Write, FileShare.None,
                       WriteBufferBytes))
            {
                writeContent(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temporaryPath, fullPath, overwrite: true);
        }
        catch
        {
            TryDelete(temporaryPath);
            throw;
        }
    }

    /// <summary>Writes UTF-8 text (no BOM, "\n" line ends) atomically, like <see cref="Write(string, Action{Stream})"/>.</summary>
    public static void WriteText(string finalPath, Action<TextWriter> write) => Write(finalPath, AsText(write));

    /// <summary>The atomic write, with any failure reported as a <see cref="CheckpointException"/> naming the file.</summary>
    /// <param name="whatFailed">Describes the failure for the message, e.g. "writing tensor 'x'".</param>
    internal static void WriteCheckpointFile(string finalPath, Action<Stream> writeContent, Func<string> whatFailed)
    {
        try
        {
            Write(finalPath, writeContent);
        }
        catch (Exception failure) when (failure is not CheckpointException)
        {
            throw new CheckpointException(CheckpointError.WriteFailed, finalPath, null,
                $"{finalPath}: {whatFailed()} failed: {failure.Message} Nothing was written under this name; any " +
                "previous file there is unchanged. Fix the cause (e.g. free disk space) and write again.", failure);
        }
    }

    internal static void WriteCheckpointText(string finalPath, string text) =>
        WriteCheckpointFile(finalPath, AsText(writer => writer.Write(text)), () => "writing the file");

    private static Action<Stream> AsText(Action<TextWriter> write) => stream =>
    {
        using var writer = new StreamWriter(stream, Utf8WithoutBom, leaveOpen: true) { NewLine = "\n" };
        write(writer);
    };

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
