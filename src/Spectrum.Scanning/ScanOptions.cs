// What a scan looks at and how it selects: the knobs of `spectrum scan`, with the reference's defaults where sensible.
using Spectrum.Analysis;

namespace Spectrum.Scanning;

public sealed record ScanOptions
{
    /// <summary>Module types to score; null means every rank-2 weight type inside numbered layers.</summary>
    public IReadOnlyList<string>? Types { get; init; }

    /// <summary>Top N% of each type to select (the paper's Spectrum-25 by default).</summary>
    public double TopPercent { get; init; } = 25;

    /// <summary>Score 1-D tensors (norms) too; the reference promotes them to 1×d, where the score is meaningless (1).</summary>
    public bool IncludeVectors { get; init; }

    /// <summary>Group mixture-of-experts experts of one projection into one type (the reference makes one type per expert).</summary>
    public bool GroupExperts { get; init; } = true;

    /// <summary>Add the embedding and output-head parameters that exist in the checkpoint to the Axolotl YAML, as the reference does.</summary>
    public bool IncludeEmbeddingsAndHead { get; init; } = true;

    /// <summary>Override the per-shape Gram precision policy (for experiments and benchmarks).</summary>
    public GramPrecision? ForcePrecision { get; init; }

    /// <summary>
    /// The engine settings a scan uses. Without a forced precision every matrix starts in float64: on checkpoints with
    /// trained-like (spiky) spectra the float32 guard rejected nearly every float32 attempt (90 of 90 at SmolLM-135M
    /// shapes, 55 of 64 k/v projections at Llama-3-8B shapes in the scan benchmark), so trying float32 first only added work.
    /// </summary>
    public SingularValueEngineOptions EngineOptions => ForcePrecision is { } forced
        ? new SingularValueEngineOptions(ForcePrecision: forced)
        : new SingularValueEngineOptions(FirstPrecision: GramPrecision.Float64);
}
