// The typed errors of saving and loading training checkpoints, each naming the folder or file and what to do.
namespace Spectrum.Training;

public enum TrainingCheckpointError
{
    /// <summary>The checkpoint folder does not exist.</summary>
    NotFound,
    /// <summary>No completion marker: the save was interrupted before it finished.</summary>
    MarkerMissing,
    /// <summary>The marker is not the expected JSON, or names another step than its folder.</summary>
    MarkerInvalid,
    /// <summary>A file the marker lists is missing.</summary>
    FileMissing,
    /// <summary>A file's size differs from the marker's record (truncated or replaced).</summary>
    FileSizeMismatch,
    /// <summary>A file's SHA-256 differs from the marker's record (corrupted).</summary>
    ChecksumMismatch,
    /// <summary>A file is intact but its content is unusable (malformed safetensors or JSON, missing tensors).</summary>
    ContentInvalid,
    /// <summary>Saving failed; the previous checkpoints are untouched.</summary>
    WriteFailed,
}

public sealed class TrainingCheckpointException : Exception
{
    public TrainingCheckpointException(TrainingCheckpointError error, string path, string message, Exception? inner = null)
        : base(message, inner)
    {
        Error = error;
        Path = path;
    }

    public TrainingCheckpointError Error { get; }

    /// <summary>The checkpoint folder or file concerned.</summary>
    public string Path { get; }
}
