// Writes a text file so that readers see either the old file or the complete new one, never a partial file.
using System.Text;

namespace Spectrum.Selection;

internal static class AtomicFile
{
    private static readonly UTF8Encoding Utf8WithoutBom = new(encoderShouldEmitUTF8Identifier: false);

    /// <summary>
    /// Writes to a temporary file in the same folder (so the final rename never crosses file systems), flushes it
    /// to disk, then renames it over <paramref name="path"/>. If anything fails, the temporary file is removed and
    /// any older file at <paramref name="path"/> is left as it was.
    /// </summary>
    public static void WriteText(string path, Action<TextWriter> write)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        string fullPath = Path.GetFullPath(path);
        string folder = Path.GetDirectoryName(fullPath) ?? throw new ArgumentException($"\"{path}\" has no parent folder to write into.", nameof(path));
        if (!Directory.Exists(folder))
            throw new DirectoryNotFoundException($"Cannot write \"{fullPath}\": the folder \"{folder}\" does not exist. Create it first.");
        string temporary = Path.Combine(folder, $".{Path.GetFileName(fullPath)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            using (var writer = new StreamWriter(stream, Utf8WithoutBom))
            {
                writer.NewLine = "\n";
                write(writer);
                writer.Flush();
                stream.Flush(flushToDisk: true);
            }
            File.Move(temporary, fullPath, overwrite: true);
        }
        catch
        {
            TryDelete(temporary);
            throw;
        }
    }

    private static void TryDelete(string temporary)
    {
        try
        {
            File.Delete(temporary);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The original failure is the one worth reporting; a stray .tmp file is harmless.
        }
    }
}
