// One scanned module's Spectrum score, keyed like the reference JSON (module name without .weight).
namespace Spectrum.Selection;

/// <param name="Module">Module name as in the reference JSON keys, e.g. <c>model.layers.0.mlp.down_proj</c>.</param>
/// <param name="Type">The group it is ranked in, e.g. <c>mlp.down_proj</c> (see <see cref="ModuleTypes.TypeOf"/>).</param>
/// <param name="Score">SNR / largest singular value; may be ±Infinity or NaN in published scans.</param>
public sealed record ModuleScore(string Module, string Type, double Score);
