// One value per way a checkpoint can be unreadable, unsafe or inconsistent, so callers and tests can tell them apart.
namespace Spectrum.Checkpoints;

public enum CheckpointError
{
    /// <summary>The file does not exist or cannot be opened for reading.</summary>
    FileNotReadable,
    /// <summary>The file's length changed after it was opened (rewritten in place, which would crash mapped reads).</summary>
    FileChangedWhileOpen,
    /// <summary>The file is shorter than the 8-byte header length prefix.</summary>
    FileTooShort,
    /// <summary>The header length prefix exceeds the 100,000,000-byte limit of the reference reader.</summary>
    HeaderTooLarge,
    /// <summary>8 + header length is past the end of the file.</summary>
    HeaderPastEndOfFile,
    HeaderNotUtf8,
    /// <summary>Header bytes are not one well-formed JSON value (syntax error, truncation, trailing junk).</summary>
    HeaderNotJson,
    /// <summary>Header JSON is well-formed but not the safetensors schema (not an object, wrong field types...).</summary>
    HeaderSchema,
    MetadataNotStringMap,
    DuplicateMetadataKey,
    DuplicateTensorName,
    /// <summary>A tensor to write has an empty name or one that cannot be encoded as UTF-8.</summary>
    InvalidTensorName,
    /// <summary>A tensor is named <c>__metadata__</c>, which the format reserves.</summary>
    ReservedTensorName,
    UnknownDType,
    /// <summary>The dtype is valid but this operation cannot handle it (e.g. decoding F8 to float).</summary>
    UnsupportedDType,
    /// <summary>Element count or byte size does not fit a 64-bit signed integer.</summary>
    ShapeOverflow,
    /// <summary>A dimension is negative or not an integer, or the shape is not an array.</summary>
    InvalidShape,
    /// <summary>A sub-byte dtype (F4, F6) whose elements do not end on a byte boundary.</summary>
    SubByteTensorNotByteAligned,
    /// <summary>data_offsets negative, non-integer, not two values, or end before begin.</summary>
    InvalidOffsets,
    /// <summary>Sorted by offset, tensors do not tile the data buffer from 0 without gaps or overlaps.</summary>
    OffsetsNotContiguous,
    /// <summary>data_offsets span a different number of bytes than shape × dtype size.</summary>
    ByteLengthMismatch,
    /// <summary>Bytes after the last tensor (the reference forbids them: they allow polyglot files).</summary>
    TrailingBytes,
    /// <summary>The header promises more data than the file holds (truncated download).</summary>
    MissingData,
    /// <summary>A span was requested over a tensor larger than a span can address.</summary>
    TensorTooLargeForSpan,
    MissingShard,
    /// <summary>The index and a shard header disagree about which tensors the shard holds.</summary>
    IndexShardMismatch,
    TensorInTwoShards,
    /// <summary>The index names a tensor that no shard holds.</summary>
    TensorInNoShard,
    /// <summary>A shard name in the index could escape the checkpoint folder (.., absolute, drive, separators).</summary>
    UnsafeShardPath,
    /// <summary>The index names a shard that is not a .safetensors file (e.g. a pickle .bin).</summary>
    NotSafetensorsShard,
    IndexSchema,
    /// <summary>metadata.total_size in the index differs from the sum of the shards' tensor bytes.</summary>
    TotalSizeMismatch,
    /// <summary>Both model.safetensors and model.safetensors.index.json exist, so which one is meant is unclear.</summary>
    AmbiguousCheckpoint,
    ConfigInvalid,
    /// <summary>An operation needs config.json and there is none beside the weights.</summary>
    ConfigMissing,
    /// <summary>A tensor's shape contradicts config.json, or a tensor the config implies is missing or extra.</summary>
    ConfigShapeMismatch,
    TensorNotFound,
    NotACheckpoint,
    WriteFailed,
}
