// The published score formula on a given spectrum: pure float64 C#, no TorchSharp, so it is exact and cheap to test.
namespace Spectrum.Analysis;

/// <summary>
/// Turns singular values into the Spectrum SNR score. Not for computing singular values (see
/// <see cref="SingularValueEngine"/>).
/// </summary>
/// <remarks>
/// Undefined cases give NaN rather than throwing, so one odd tensor cannot abort a scan and the caller can report it:
/// an empty spectrum (a 0×m matrix), any NaN or ±inf singular value, and the all-zero matrix (signal 0 over a
/// non-empty noise set summing to 0 is 0/0; the reference gets NaN there too). A single value (1×m matrix) has
/// sigma 0, so it is all signal, the noise set is empty (noise = 1) and the score is S[0]/S[0] = 1.
/// A spectrum whose noise set is non-empty but sums to exactly 0 (e.g. [5, 0, 0, 0, 0]) scores +inf.
/// </remarks>
public static class SpectrumScore
{
    /// <summary>The normal distribution's interquartile range in units of its standard deviation.</summary>
    public const double IqrPerSigma = 1.349;

    /// <summary>Scores a spectrum given in descending order, for a matrix of shape (rows, cols).</summary>
    /// <exception cref="ArgumentException">Values are negative or not descending, or the shape does not match.</exception>
    public static SnrScore FromSingularValues(ReadOnlySpan<double> singularValuesDescending, long rows, long cols)
    {
        var s = singularValuesDescending; // S is (min(rows, cols)), descending
        if (rows < 0 || cols < 0)
            throw new ArgumentException($"Matrix shape ({rows}, {cols}) has a negative dimension.");
        if (s.Length != Math.Min(rows, cols))
            throw new ArgumentException(
                $"A ({rows}, {cols}) matrix has {Math.Min(rows, cols)} singular values, but {s.Length} were given.");
        if (s.Length == 0)
            return Undefined(0, double.NaN);

        foreach (double v in s)
            if (!double.IsFinite(v))
                return Undefined(s.Length, s[0]);
        for (int i = 0; i < s.Length; i++)
        {
            if (s[i] < 0)
                throw new ArgumentException($"Singular value {i} is negative ({s[i]}).");
            if (i > 0 && s[i] > s[i - 1])
                throw new ArgumentException($"Singular values must be descending; S[{i}] = {s[i]} > S[{i - 1}] = {s[i - 1]}.");
        }

        double sigma = (QuantileOfDescending(s, 0.75) - QuantileOfDescending(s, 0.25)) / IqrPerSigma;
        double threshold = sigma * (1 + Math.Sqrt(AspectRatio(rows, cols)));
        return Classify(s, threshold, sigma);
    }

    /// <summary>beta = min(rows, cols) / max(rows, cols), the Marchenko–Pastur aspect ratio.</summary>
    public static double AspectRatio(long rows, long cols) =>
        Math.Max(rows, cols) == 0 ? 0 : (double)Math.Min(rows, cols) / Math.Max(rows, cols);

    /// <summary>
    /// Linear-interpolation quantile (numpy's and torch's default) of values given in descending order.
    /// The interpolation is written the way numpy and torch evaluate it (from the nearer end) so the results agree
    /// to the last bit where possible.
    /// </summary>
    public static double QuantileOfDescending(ReadOnlySpan<double> descending, double q)
    {
        int n = descending.Length;
        if (n == 0) return double.NaN;
        double position = q * (n - 1);
        int below = (int)Math.Floor(position);
        int above = Math.Min(below + 1, n - 1);
        double weight = position - below;
        double a = descending[n - 1 - below], b = descending[n - 1 - above]; // a ≤ b, ascending ranks below/above
        return weight < 0.5 ? a + weight * (b - a) : b - (b - a) * (1 - weight);
    }

    /// <summary>Splits at the threshold and forms the score; shared with the error estimate of the engine.</summary>
    internal static SnrScore Classify(ReadOnlySpan<double> s, double threshold, double sigma)
    {
        double signal = 0, noise = 0;
        int signalCount = 0;
        foreach (double v in s)
        {
            if (v > threshold) { signal += v; signalCount++; }
            else noise += v;
        }
        if (signalCount == s.Length)
            noise = 1; // the reference's rule for an empty noise set (older versions gave inf)
        double snr = signal / noise;
        return new SnrScore(snr / s[0], snr, signal, noise, threshold, sigma, s[0], signalCount, s.Length);
    }

    private static SnrScore Undefined(int count, double largest) =>
        new(double.NaN, double.NaN, double.NaN, double.NaN, double.NaN, double.NaN, largest, 0, count);
}
