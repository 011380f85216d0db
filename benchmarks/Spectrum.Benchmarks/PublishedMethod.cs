// The reference scanner's method, restated as a baseline: whole model in float32 in memory, then float32 svdvals per matrix.
using Spectrum.Checkpoints;
using Spectrum.Scanning;
using Spectrum.Selection;
using TorchSharp;

namespace Spectrum.Benchmarks;

internal static class PublishedMethod
{
    /// <summary>Loads every tensor as float32 (as the reference's from_pretrained in float32 does), then scores the candidates.</summary>
    public static IReadOnlyList<ModuleScore> Scan(Checkpoint checkpoint, IReadOnlyList<ScanCandidate> candidates)
    {
        var model = new Dictionary<string, torch.Tensor>(StringComparer.Ordinal);
        try
        {
            foreach (var tensor in checkpoint.Tensors)
            {
                var candidate = new ScanCandidate(tensor.Name, "", tensor, tensor.Rank == 2 ? tensor.Shape[0] : 1,
                    tensor.Rank switch { 0 => 1, 1 => tensor.Shape[0], _ => tensor.Shape[1] });
                if (tensor.Rank > 2 || !SafetensorsDTypes.CanDecodeToFloat(tensor.DType)) continue;
                using var raw = MatrixLoader.Load(checkpoint, candidate);
                model[tensor.Name] = raw.to(torch.float32);
            }
            return candidates.Select(c => new ModuleScore(c.Module, c.Type, Score(model[c.Tensor.Name]))).ToList();
        }
        finally
        {
            foreach (var tensor in model.Values) tensor.Dispose();
        }
    }

    /// <summary>float32 svdvals, interpolated quartiles, MP threshold, signal/noise, divided by the largest value.</summary>
    public static double Score(torch.Tensor weights)
    {
        using var scope = torch.NewDisposeScope();
        var s = torch.linalg.svdvals(weights);
        var quartiles = torch.quantile(s, torch.tensor(new[] { 0.25f, 0.75f }));
        var sigma = (quartiles[1] - quartiles[0]) / 1.349f;
        long n = weights.shape[0], m = weights.shape[1];
        double beta = (double)Math.Min(n, m) / Math.Max(n, m);
        var threshold = sigma * (float)(1 + Math.Sqrt(beta));
        var signal = s.masked_select(s > threshold).sum();
        var noiseValues = s.masked_select(s <= threshold);
        var noise = noiseValues.numel() == 0 ? torch.tensor(1f) : noiseValues.sum();
        return (signal / noise / s[0]).item<float>();
    }
}
