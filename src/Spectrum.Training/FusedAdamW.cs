// One-pass AdamW update over a parameter's float32 memory, reading a float32 or bf16 gradient, and the clipping norm's
// sum of squares: hand-written because the same update as tensor ops reads and writes the parameter's memory nine times
// and allocates a parameter-sized temporary per tensor, per step.
using System.Buffers;
using System.Numerics;
using System.Runtime.InteropServices;
using Spectrum.Checkpoints;

namespace Spectrum.Training;

/// <summary>
/// The per-step constants of one parameter's AdamW update, as PyTorch's single-tensor AdamW forms them (in double,
/// then used as float32 scalars by the tensor kernels).
/// </summary>
/// <param name="DecayFactor">1 − lr·wd (1 where the tensor does not decay).</param>
/// <param name="BiasCorrection2Sqrt">√(1 − β₂ᵗ); the denominator is √v / this + ε, divided rather than multiplied, as PyTorch does.</param>
/// <param name="NegativeStepSize">−lr / (1 − β₁ᵗ).</param>
/// <param name="GradientScale">Gradient clipping's factor (≤ 1; 1 when not clipping), applied to each gradient value as it is read, as clip_grad_norm_'s in-place multiply would have.</param>
internal readonly record struct AdamWConstants(float DecayFactor, float Beta1, float OneMinusBeta1, float Beta2, float OneMinusBeta2,
    float BiasCorrection2Sqrt, float Eps, float NegativeStepSize, float GradientScale)
{
    public static AdamWConstants For(AdamWOptions options, double learningRate, bool decays, long step, double gradientScale = 1) => new(
        decays && options.WeightDecay != 0 ? (float)(1 - learningRate * options.WeightDecay) : 1f,
        (float)options.Beta1, (float)(1 - options.Beta1), (float)options.Beta2, (float)(1 - options.Beta2),
        (float)Math.Sqrt(1 - Math.Pow(options.Beta2, step)), (float)options.Eps,
        (float)(-learningRate / (1 - Math.Pow(options.Beta1, step))), (float)gradientScale);
}

/// <summary>
/// AdamW for one contiguous float32 tensor in a single pass, element by element in the same arithmetic order as
/// PyTorch's kernels: <c>p·(1−lr·wd)</c>; <c>m = fma(g, 1−β₁, m·β₁)</c> (add_ with alpha is a fused multiply-add there);
/// <c>v = v·β₂ + (1−β₂)·g·g</c>; <c>p += −step·(m / (√v / √bc₂ + ε))</c>. Optionally writes the result rounded to
/// bfloat16 (nearest, ties to even, as PyTorch converts) into a mixed-precision model's weight in the same pass. The
/// gradient g is read as float32 or widened from bf16 (exact) and multiplied by the clipping factor as it is read.
/// </summary>
internal static class FusedAdamW
{
    // Below this many elements the work is too small to be worth a second thread.
    private const int ParallelThreshold = 1 << 16;
    private const int ChunkElements = 1 << 15;

    /// <summary>Updates <paramref name="parameter"/>, <paramref name="expAvg"/> and <paramref name="expAvgSq"/> in place over the element range given.</summary>
    /// <param name="gradient">The float32 gradient, or null when <paramref name="gradientBFloat16"/> holds it.</param>
    /// <param name="gradientBFloat16">Null, or the gradient as bf16 bits (a mixed-precision weight's own gradient), widened exactly to float32 as it is read.</param>
    /// <param name="roundedOut">Null, or the bf16 bits of the model's weight, written with the updated parameter rounded.</param>
    public static unsafe void Update(float* parameter, float* gradient, ushort* gradientBFloat16, float* expAvg, float* expAvgSq, ushort* roundedOut,
        long start, long count, in AdamWConstants constants)
    {
        if (count <= 0)
            return;
        if ((gradient is null) == (gradientBFloat16 is null))
            throw new ArgumentException("Pass the gradient either as float32 or as bf16 bits, not both or neither.");
        long chunks = (count + ChunkElements - 1) / ChunkElements;
        var c = constants;
        // Pointers cannot be captured by a lambda; addresses can.
        nint p = (nint)parameter, g = (nint)gradient, gb = (nint)gradientBFloat16, m = (nint)expAvg, v = (nint)expAvgSq, r = (nint)roundedOut;
        void Chunk(long chunk)
        {
            long from = start + chunk * ChunkElements;
            int n = (int)Math.Min(ChunkElements, start + count - from);
            Range((float*)p, (float*)g, (ushort*)gb, (float*)m, (float*)v, (ushort*)r, from, n, c);
        }
        if (count < ParallelThreshold || Environment.ProcessorCount < 2)
        {
            for (long chunk = 0; chunk < chunks; chunk++)
                Chunk(chunk);
            return;
        }
        Parallel.For(0L, chunks, Chunk);
    }

    /// <summary>
    /// Σ g² over a float32 or bf16 gradient (exactly one pointer non-null), accumulated in double, per chunk in a fixed
    /// order so the result does not depend on thread scheduling: the clipping norm, read without a float32 copy.
    /// </summary>
    public static unsafe double SumOfSquares(float* gradient, ushort* gradientBFloat16, long count)
    {
        if (count <= 0)
            return 0;
        if ((gradient is null) == (gradientBFloat16 is null))
            throw new ArgumentException("Pass the gradient either as float32 or as bf16 bits, not both or neither.");
        long chunks = (count + ChunkElements - 1) / ChunkElements;
        var partial = new double[chunks];
        nint g = (nint)gradient, gb = (nint)gradientBFloat16;
        void Chunk(long chunk)
        {
            long from = chunk * ChunkElements;
            int n = (int)Math.Min(ChunkElements, count - from);
            partial[chunk] = gb == 0
                ? SumOfSquares(new ReadOnlySpan<float>((float*)g + from, n))
                : SumOfSquaresBFloat16(new ReadOnlySpan<ushort>((ushort*)gb + from, n));
        }
        if (count < ParallelThreshold || Environment.ProcessorCount < 2)
        {
            for (long chunk = 0; chunk < chunks; chunk++)
                Chunk(chunk);
        }
        else
        {
            Parallel.For(0L, chunks, Chunk);
        }
        double sum = 0;
        foreach (double part in partial)
            sum += part;
        return sum;
    }

    private static double SumOfSquares(ReadOnlySpan<float> values)
    {
        int i = 0;
        double sum = 0;
        if (Vector.IsHardwareAccelerated && values.Length >= Vector<float>.Count)
        {
            var accumulator = Vector<double>.Zero;
            var vectors = MemoryMarshal.Cast<float, Vector<float>>(values);
            foreach (var vector in vectors)
            {
                Vector.Widen(vector, out var low, out var high);
                accumulator += low * low + high * high;
            }
            sum = Vector.Sum(accumulator);
            i = vectors.Length * Vector<float>.Count;
        }
        for (; i < values.Length; i++)
            sum += (double)values[i] * values[i];
        return sum;
    }

    /// <summary>bf16 bits → float32 (exact), by the checkpoint reader's vectorised decoder.</summary>
    private static void Widen(ReadOnlySpan<ushort> bits, Span<float> destination) =>
        DTypeDecoder.ToFloat32(MemoryMarshal.AsBytes(bits), SafetensorsDType.BF16, destination);

    private static double SumOfSquaresBFloat16(ReadOnlySpan<ushort> bits)
    {
        Span<float> widened = stackalloc float[256];
        double sum = 0;
        for (int done = 0; done < bits.Length; done += widened.Length)
        {
            int n = Math.Min(widened.Length, bits.Length - done);
            Widen(bits.Slice(done, n), widened[..n]);
            sum += SumOfSquares(widened[..n]);
        }
        return sum;
    }

    private static unsafe void Range(float* parameter, float* gradient, ushort* gradientBFloat16, float* expAvg, float* expAvgSq, ushort* roundedOut,
        long start, int count, in AdamWConstants c)
    {
        float[]? widened = null;
        try
        {
            ReadOnlySpan<float> g;
            if (gradientBFloat16 is not null)
            {
                widened = ArrayPool<float>.Shared.Rent(count);
                Widen(new ReadOnlySpan<ushort>(gradientBFloat16 + start, count), widened.AsSpan(0, count));
                g = widened.AsSpan(0, count);
            }
            else
            {
                g = new ReadOnlySpan<float>(gradient + start, count);
            }
            Update(new Span<float>(parameter + start, count), g, new Span<float>(expAvg + start, count), new Span<float>(expAvgSq + start, count),
                roundedOut is null ? Span<ushort>.Empty : new Span<ushort>(roundedOut + start, count), c);
        }
        finally
        {
            if (widened is not null)
                ArrayPool<float>.Shared.Return(widened);
        }
    }

    private static void Update(Span<float> p, ReadOnlySpan<float> g, Span<float> m, Span<float> v, Span<ushort> rounded, in AdamWConstants c)
    {
        int count = p.Length;
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
            var scale = new Vector<float>(c.GradientScale);
            var pv = MemoryMarshal.Cast<float, Vector<float>>(p);
            var gv = MemoryMarshal.Cast<float, Vector<float>>(g);
            var mv = MemoryMarshal.Cast<float, Vector<float>>(m);
            var vv = MemoryMarshal.Cast<float, Vector<float>>(v);
            for (int k = 0; k < pv.Length; k++)
            {
                var grad = gv[k] * scale;
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
            float grad = g[i] * c.GradientScale;
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
