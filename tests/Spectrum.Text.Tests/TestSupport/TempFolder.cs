// A throwaway folder per test, deleted afterwards, so tests never share or leave files.
namespace Spectrum.Text.Tests.TestSupport;

internal sealed class TempFolder : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("spectrum-text-").FullName;

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public string WriteText(string name, string text)
    {
        string path = File(name);
        System.IO.File.WriteAllText(path, text);
        return path;
    }

    public string WriteBytes(string name, byte[] bytes)
    {
        string path = File(name);
        System.IO.File.WriteAllBytes(path, bytes);
        return path;
    }

    /// <summary>Copies a committed tokenizer fixture here so a test can change one file of it.</summary>
    public string CopyFixture(string fixtureName)
    {
        foreach (string source in Directory.GetFiles(Fixtures.Folder(fixtureName)))
        {
            System.IO.File.Copy(source, File(System.IO.Path.GetFileName(source)));
        }
        return Path;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // Cleanup failing must not hide the test's own result.
        }
    }
}
