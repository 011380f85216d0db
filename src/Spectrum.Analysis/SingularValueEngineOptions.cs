// How much score error the engine may trade for speed, and overrides of its per-shape precision policy.
namespace Spectrum.Analysis;

/// <summary>Options of <see cref="SingularValueEngine"/>.</summary>
/// <param name="ScoreErrorBudget">
/// Largest accepted estimated relative score error of a float32 result before it is recomputed in float64.
/// The hard requirement is 1e-4 relative to the float32 svdvals reference; the default leaves a 10× margin.
/// </param>
/// <param name="ForcePrecision">
/// Compute in this precision only, bypassing the per-shape policy and the escalation (for measuring and testing).
/// </param>
/// <param name="FirstPrecision">
/// First attempt instead of <see cref="SingularValueEngine.InitialPrecisionFor"/>'s choice, guard and escalation kept.
/// Cannot be combined with <paramref name="ForcePrecision"/>.
/// </param>
public sealed record SingularValueEngineOptions(
    double ScoreErrorBudget = 1e-5,
    GramPrecision? ForcePrecision = null,
    GramPrecision? FirstPrecision = null);
