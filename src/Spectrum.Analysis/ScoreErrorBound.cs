// Propagates an absolute eigenvalue error of the Gram matrix to a worst-case relative error of the Spectrum score.
namespace Spectrum.Analysis;

/// <summary>
/// Interval propagation of eigenvalue uncertainty through the score. Not a model of the rounding itself: the caller
/// supplies the eigenvalue error (see <see cref="SingularValueEngine"/> for the calibrated float32/float64 models).
/// </summary>
/// <remarks>
/// Every eigenvalue λ_i may be off by ±δλ_i (the caller's error model), so σ_i lies in
/// [sqrt(max(λ_i − δλ_i, 0)), sqrt(λ_i + δλ_i)]. The bounds keep the order, the quantiles are monotone
/// in the values, so sigma and the threshold get intervals; values whose interval meets the threshold interval may
/// land on either side. Signal, noise and S[0] then take their independently worst ends. That ignores the strong
/// correlation of the errors (a common shift cancels in signal/noise), so the estimate is an upper bound in spirit,
/// a deliberate choice: escalating costs time, missing an error costs correctness.
/// </remarks>
public static class ScoreErrorBound
{
    /// <summary>The same error ±<paramref name="eigenvalueError"/> for every eigenvalue.</summary>
    public static double Relative(ReadOnlySpan<double> eigenvaluesAscending, double eigenvalueError, long rows, long cols)
    {
        var errors = new double[eigenvaluesAscending.Length];
        Array.Fill(errors, eigenvalueError);
        return Relative(eigenvaluesAscending, errors, rows, cols);
    }

    /// <summary>
    /// Worst relative score change when eigenvalue i of the Gram matrix may be off by ±<paramref name="eigenvalueErrors"/>[i].
    /// Returns 0 when the score cannot change, +inf when it is not even bounded (e.g. noise may sum to 0).
    /// </summary>
    /// <param name="eigenvaluesAscending">Eigenvalues of the Gram matrix as eigvalsh returns them, (n) ascending.</param>
    /// <param name="eigenvalueErrors">Absolute error bound of each eigenvalue, (n), same order.</param>
    public static double Relative(ReadOnlySpan<double> eigenvaluesAscending, ReadOnlySpan<double> eigenvalueErrors, long rows, long cols)
    {
        int n = eigenvaluesAscending.Length;
        if (eigenvalueErrors.Length != n)
            throw new ArgumentException($"{n} eigenvalues but {eigenvalueErrors.Length} error bounds.", nameof(eigenvalueErrors));
        if (n == 0) return 0;
        bool exact = true;
        foreach (double e in eigenvalueErrors)
        {
            if (double.IsNaN(e) || e < 0)
                throw new ArgumentOutOfRangeException(nameof(eigenvalueErrors), e, "Error bounds must be ≥ 0.");
            exact &= e == 0;
        }

        // Nominal spectrum and the ends of each value's interval, paired by eigenvalue; each is (n).
        var s = new double[n];
        var lo = new double[n];
        var hi = new double[n];
        for (int i = 0; i < n; i++)
        {
            double lambda = eigenvaluesAscending[i], error = eigenvalueErrors[i];
            s[i] = Math.Sqrt(Math.Max(lambda, 0));
            lo[i] = Math.Sqrt(Math.Max(lambda - error, 0));
            hi[i] = Math.Sqrt(Math.Max(lambda + error, 0));
        }
        var nominal = SpectrumScore.FromSingularValues(SortedDescending(s), rows, cols);
        if (exact) return 0;
        if (!double.IsFinite(nominal.Score)) return double.PositiveInfinity;

        // Order statistics are monotone in every value, so the k-th largest perturbed value lies between the k-th
        // largest lower end and the k-th largest upper end: quantiles and S[0] get intervals from sorted copies.
        var loSorted = SortedDescending(lo);
        var hiSorted = SortedDescending(hi);
        double widen = 1 + Math.Sqrt(SpectrumScore.AspectRatio(rows, cols));
        double sigmaLow = Math.Max(0, SpectrumScore.QuantileOfDescending(loSorted, 0.75) - SpectrumScore.QuantileOfDescending(hiSorted, 0.25))
                          / SpectrumScore.IqrPerSigma;
        double sigmaHigh = (SpectrumScore.QuantileOfDescending(hiSorted, 0.75) - SpectrumScore.QuantileOfDescending(loSorted, 0.25))
                           / SpectrumScore.IqrPerSigma;
        double thresholdLow = sigmaLow * widen, thresholdHigh = sigmaHigh * widen;
        double largestLow = loSorted[0], largestHigh = hiSorted[0];

        // sure signal: lo > every threshold; sure noise: hi ≤ every threshold; the rest may go either way.
        double signalMin = 0, signalMax = 0, noiseSure = 0, noiseMaybe = 0, smallestMaybe = double.PositiveInfinity;
        int sureNoiseCount = 0, maybeCount = 0;
        for (int i = 0; i < n; i++)
        {
            if (lo[i] > thresholdHigh) { signalMin += lo[i]; signalMax += hi[i]; }
            else if (hi[i] <= thresholdLow) { noiseSure += lo[i]; noiseMaybe += hi[i]; sureNoiseCount++; }
            else { signalMax += hi[i]; noiseMaybe += hi[i]; maybeCount++; smallestMaybe = Math.Min(smallestMaybe, lo[i]); }
        }
        double noiseMin, noiseMax;
        if (sureNoiseCount > 0) { noiseMin = noiseSure; noiseMax = noiseMaybe; }
        else if (maybeCount == 0) { noiseMin = noiseMax = 1; }                  // surely empty noise set
        else { noiseMin = Math.Min(1, smallestMaybe); noiseMax = Math.Max(1, noiseMaybe); }

        double scoreLow = signalMin / noiseMax / largestHigh;
        double scoreHigh = noiseMin == 0 || largestLow == 0 ? double.PositiveInfinity : signalMax / noiseMin / largestLow;
        double score = nominal.Score;
        if (score == 0) return scoreHigh == 0 ? 0 : double.PositiveInfinity;
        return Math.Max(scoreHigh - score, score - scoreLow) / Math.Abs(score);
    }

    private static double[] SortedDescending(double[] values)
    {
        var sorted = (double[])values.Clone();
        Array.Sort(sorted);
        Array.Reverse(sorted);
        return sorted;
    }
}
