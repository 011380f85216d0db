// What the engine hands back: the spectrum plus how it was computed and how far the score may be off because of it.
namespace Spectrum.Analysis;

/// <summary>Singular values of one matrix and the provenance needed to trust them.</summary>
/// <param name="Descending">All min(rows, cols) singular values, largest first.</param>
/// <param name="Precision">Precision that produced <paramref name="Descending"/>.</param>
/// <param name="Escalated">True when a float32 attempt was rejected by the error guard and redone in float64.</param>
/// <param name="EstimatedScoreRelativeError">
/// Conservative estimate of |score − exact score| / |score| caused by the Gram/eigensolver rounding of
/// <paramref name="Precision"/> (0 for an exactly representable result, +inf where the score is not stable at all).
/// </param>
public sealed record SingularValueResult(
    double[] Descending,
    GramPrecision Precision,
    bool Escalated,
    double EstimatedScoreRelativeError);

/// <summary>A matrix's score together with the spectrum it came from.</summary>
public sealed record MatrixScore(SnrScore Snr, SingularValueResult SingularValues);
