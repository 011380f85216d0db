// The error for training set-ups that cannot work (freezing patterns, option combinations, resume mismatches), raised before any work.
namespace Spectrum.Training;

/// <summary>
/// A configuration was rejected before any weight, optimizer state or file was touched. The message names the
/// option(s) or pattern(s) involved and what to change.
/// </summary>
public sealed class TrainingConfigurationException : Exception
{
    public TrainingConfigurationException(string message) : base(message)
    {
    }

    public TrainingConfigurationException(string message, Exception inner) : base(message, inner)
    {
    }
}
