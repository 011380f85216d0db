// The published Spectrum SNR score of one weight matrix, with every intermediate kept so a scan can be audited.
namespace Spectrum.Analysis;

/// <summary>
/// Result of <see cref="SpectrumScore.FromSingularValues"/>. <see cref="Score"/> is the published ranking value
/// (snr / S[0]; the reference JSON calls it "snr"); <see cref="Snr"/> is signal / noise before that division.
/// </summary>
/// <param name="Score">snr / S[0]; NaN when undefined (empty spectrum, NaN/inf in S, all-zero matrix).</param>
/// <param name="Snr">signal / noise.</param>
/// <param name="Signal">Sum of singular values strictly above <see cref="Threshold"/>.</param>
/// <param name="Noise">Sum of singular values at or below <see cref="Threshold"/>; 1 when that set is empty.</param>
/// <param name="Threshold">Sigma · (1 + sqrt(beta)), beta = min(rows, cols) / max(rows, cols).</param>
/// <param name="Sigma">(q75 − q25) / 1.349 over the singular values.</param>
/// <param name="LargestSingularValue">S[0].</param>
/// <param name="SignalCount">How many singular values are above the threshold.</param>
/// <param name="Count">How many singular values there are (min(rows, cols)).</param>
public readonly record struct SnrScore(
    double Score,
    double Snr,
    double Signal,
    double Noise,
    double Threshold,
    double Sigma,
    double LargestSingularValue,
    int SignalCount,
    int Count);
