// One-pass AdamW update over a parameter's float32 memory: hand-written because the same update as tensor ops reads and
// writes the parameter's memory nine times and allocates a parameter-sized temporary per tensor, per step.
using System.Numerics;
using System.Runtime.InteropServices;

namespace Spectrum.Training;

/// <summary>
/// The per-step constants of one parameter's AdamW update, as PyTorch's single-tensor AdamW forms them (in double,
/// then used as float32 scalars by the tensor kernels).
/// </summary>
/// <param name="DecayFactor">1 − lr·wd (1 where the tensor does not decay).</param>
/// <param name="BiasCorrection2Sqrt">√(1 − β₂ᵗ); the denominator is √v / this + ε, divided rather than multiplied, as PyTorch does.</param>
/// <param name="NegativeStepSize">−lr / (1 − β₁ᵗ).</param>
internal readonly record struct AdamWConstants(float DecayFactor, float Beta1, float OneMinusBeta1, float Beta2, float OneMinusBeta2,
    float BiasCorrection2Sqrt, float Eps, float NegativeStepSize)
{
    public static AdamWConstants For(AdamWOptions options, double learningRate, bool decays, long step) => new(
        decays && options.WeightDecay != 0 ? (float)(1 - learningRate * options.WeightDecay) : 1f,
        (float)options.Beta1, (float)(1 - options.Beta1), (float)options.Beta2, (float)(1 - options.Beta2),
        (float)Math.Sqrt(1 - Math.Pow(options.Beta2, step)), (float)options.Eps,
        (float)(-learningRate / (1 - Math.Pow(options.Beta1, step))));
}

/// <summary>
/// AdamW for one contiguous float32 tensor in a single pass, element by element in the same arithmetic order as
/// PyTorch's kernels: <c>p·(1−lr·wd)</c>; <c>m = fma(g, 1−β₁, m·β₁)</c> (add_ with alpha is a fused multiply-add there);
/// <c>v = v·β₂ + (1−β₂)·g·g</c>; <c>p += −step·(m / (√v / √bc₂ + ε))</c>. Optionally writes the result rounded to
/// bfloat16 (nearest, ties to even, as PyTorch converts) into a mixed-precision model's weight in the same pass.
/// </summary>
internal static class FusedAdamW
{
    // Below this many elements the work is too small to be worth a second thread.
    private const int ParallelThreshold = 1 << 16;
    private const int ChunkElements = 1 << 15;

    /// <summary>Updates <paramref name="parameter"/>, <paramref name="expAvg"/> and <paramref name="expAvgSq"/> in place over the element range given.</summary>
    /// <param name="roundedOut">Null, or the bf16 bits of the model's weight, written with the updated parameter rounded.</param>
    public static unsafe void Update(float* parameter, float* gradient, float* expAvg, float* expAvgSq, ushort* roundedOut,
        long start, long count, in AdamWConstants constants)
    {
        if (count <= 0)
            return;
        if (count < ParallelThreshold || Environment.ProcessorCount < 2)
        {
            Range(parameter, gradient, expAvg, expAvgSq, roundedOut, start, count, constants);
            return;
        }
        long chunks = (count + ChunkElements - 1) / ChunkElements;
        var c = constants;
        // Pointers cannot be captured by a lambda; addresses can.
        nint p = (nint)parameter, g = (nint)gradient, m = (nint)expAvg, v = (nint)expAvgSq, r = (nint)roundedOut;
        Parallel.For(0L, chunks, chunk =>
        {
            long from = start + chunk * ChunkElements;
            long n = Math.Min(ChunkElements, start + count - from);
            Range((float*)p, (float*)g, (float*)m, (float*)v, (ushort*)r, from, n, c);
        });
    }

    private static unsafe void Range(float* parameter, float* gradient, float* expAvg, float* expAvgSq, ushort* roundedOut,
        long start, long count, in AdamWConstants c)
    {
        var p = new Span<float>(parameter + start, checked((int)count));
        var g = new ReadOnlySpan<float>(gradient + start, (int)count);
        var m = new Span<float>(expAvg + start, (int)count);
        var v = new Span<float>(expAvgSq + start, (int)count);
        var rounded = roundedOut is null ? Span<ushort>.Empty : new Span<ushort>(roundedOut + start, (int)count);

        int width = Vector<float>.Count;
        int i = 0;
        if (Vector.IsHardwareAccelerated && count >= 2 * width)
        {
            var decay = new Vector<float>(c.DecayFactor);
            var beta1 = new Vector<float>(c.Beta1);
            var oneMinusBeta1 = new Vector<float>(c.OneMinusBeta1);
            var beta2 = new Vector<float>(c.Beta2);
            var oneMinusBeta2 = new Vector<float>(c.OneMinusBeta2);
            var bias2Sqrt = new Vector<float>(c.BiasCorrection2Sqrt);
            var eps = new Vector<float>(c.Eps);
            var negativeStep = new Vector<float>(c.NegativeStepSize);
            var pv = MemoryMarshal.Cast<float, Vector<float>>(p);
            var gv = MemoryMarshal.Cast<float, Vector<float>>(g);
            var mv = MemoryMarshal.Cast<float, Vector<float>>(m);
            var vv = MemoryMarshal.Cast<float, Vector<float>>(v);
            for (int k = 0; k < pv.Length; k++)
            {
                var grad = gv[k];
                var weight = pv[k] * decay;
                var first = Vector.FusedMultiplyAdd(grad, oneMinusBeta1, mv[k] * beta1);
                var second = vv[k] * beta2 + oneMinusBeta2 * grad * grad;
                var denominator = Vector.SquareRoot(second) / bias2Sqrt + eps;
                weight += negativeStep * (first / denominator);
                mv[k] = first;
                vv[k] = second;
                pv[k] = weight;
            }
            i = pv.Length * width;
            if (!rounded.IsEmpty)
                BFloat16Rounding.Round(p[..i], rounded[..i]);   // the chunk just updated, still in cache
        }
        for (; i < p.Length; i++)
        {
            float grad = g[i];
            float weight = p[i] * c.DecayFactor;
            float first = MathF.FusedMultiplyAdd(grad, c.OneMinusBeta1, m[i] * c.Beta1);
            float second = v[i] * c.Beta2 + c.OneMinusBeta2 * grad * grad;
            float denominator = MathF.Sqrt(second) / c.BiasCorrection2Sqrt + c.Eps;
            weight += c.NegativeStepSize * (first / denominator);
            m[i] = first;
            v[i] = second;
            p[i] = weight;
            if (!rounded.IsEmpty)
                rounded[i] = BFloat16Rounding.Round(weight);
        }
    }
}
