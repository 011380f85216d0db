// The error a scan reports for a request it cannot carry out (as opposed to a bad checkpoint file).
namespace Spectrum.Scanning;

public sealed class ScanException(string message, Exception? inner = null) : Exception(message, inner);
