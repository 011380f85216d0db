// The single exception type for checkpoint problems: a kind to branch on, plus the file and tensor it concerns.
namespace Spectrum.Checkpoints;

/// <summary>
/// A checkpoint could not be read, validated or written. <see cref="Exception.Message"/> says what was expected,
/// what was found, where, and what to do; <see cref="Error"/> lets code react to the kind of failure.
/// </summary>
public sealed class CheckpointException : Exception
{
    public CheckpointException(CheckpointError error, string filePath, string? tensorName, string message,
        Exception? innerException = null)
        : base(message, innerException)
    {
        Error = error;
        FilePath = filePath;
        TensorName = tensorName;
    }

    public CheckpointError Error { get; }

    /// <summary>The file the problem was found in (a shard, an index, a config.json, or a checkpoint folder).</summary>
    public string FilePath { get; }

    /// <summary>The tensor concerned, when the problem is about one tensor.</summary>
    public string? TensorName { get; }
}
