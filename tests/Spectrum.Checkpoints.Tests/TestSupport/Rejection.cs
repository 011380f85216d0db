// Shared assertions for "this input must be refused with this typed, well-located error".
namespace Spectrum.Checkpoints.Tests.TestSupport;

internal static class Rejection
{
    /// <summary>
    /// Asserts the exact exception type and kind, that FilePath is the expected file and the message names it,
    /// and, when given, that the tensor is recorded and named in the message.
    /// </summary>
    public static CheckpointException Assert(Action action, CheckpointError expected, string filePath,
        string? tensorName = null)
    {
        var error = Xunit.Assert.Throws<CheckpointException>(action);
        Xunit.Assert.True(expected == error.Error, $"Expected {expected} but got {error.Error}: {error.Message}");
        Xunit.Assert.Equal(filePath, error.FilePath);
        Xunit.Assert.Contains(filePath, error.Message);
        if (tensorName is not null)
        {
            Xunit.Assert.Equal(tensorName, error.TensorName);
            Xunit.Assert.Contains($"'{tensorName}'", error.Message);
        }
        return error;
    }

    public static CheckpointException OpenFile(string path, CheckpointError expected, string? tensorName = null) =>
        Assert(() => SafetensorsFile.Open(path).Dispose(), expected, path, tensorName);
}
