// Dropout whose mask comes from a counter-based generator seeded by torch's global generator, filled on every core.
using System.Runtime.Intrinsics;
using TorchSharp;
using static TorchSharp.torch;

namespace Spectrum.Training;

/// <summary>
/// <c>y = x · mask / (1 − p)</c> with each element kept with probability 1 − p, as <c>nn.Dropout</c> computes it;
/// identity in eval mode or with p = 0. Hand-written because LibTorch's CPU dropout draws one Mersenne-Twister number
/// per element on one thread: 1 ms for a 256 × 576 input, which made up 90% of a LoRA adapter's forward. Here each
/// call takes one 64-bit seed from torch's global generator — so seeding, checkpoint resume and gradient checkpointing's
/// replay of the random state reproduce the same masks, as with nn.Dropout — and expands it with SplitMix64 over the
/// element index (two 32-bit draws per number, so p is resolved to 2⁻³², not a float's 2⁻²⁴), in fixed chunks so the
/// mask does not depend on the thread count.
/// </summary>
public sealed class SeededDropout : nn.Module<Tensor, Tensor>
{
    private const long ChunkElements = 1 << 16;

    public SeededDropout(double probability) : base(nameof(SeededDropout))
    {
        if (!(probability is >= 0 and < 1))
            throw new ArgumentOutOfRangeException(nameof(probability), probability, "Dropout probability must lie in [0, 1).");
        Probability = probability;
    }

    public double Probability { get; }

    public override Tensor forward(Tensor input)
    {
        if (!training || Probability == 0)
            return input.alias();
        using var scope = torch.NewDisposeScope();
        long seed = torch.randint(long.MaxValue, [1], dtype: ScalarType.Int64).item<long>();
        var mask = Mask(input.shape, input.dtype, seed);
        return input.mul(mask).MoveToOuterDisposeScope();
    }

    /// <summary>The scaled mask (1/(1 − p) where kept, 0 where dropped) in <paramref name="dtype"/>, as a function of the seed alone.</summary>
    internal unsafe Tensor Mask(long[] shape, ScalarType dtype, long seed)
    {
        // bf16 masks are written as bf16 directly (the scale rounded once, as a float32 mask converted would be).
        bool bf16 = dtype == ScalarType.BFloat16;
        var mask = torch.empty(shape, dtype: bf16 ? ScalarType.BFloat16 : ScalarType.Float32);
        long n = mask.numel();
        // Kept when a uniform 32-bit draw is below (1 − p)·2³²; the scale is the float32 of 1/(1 − p), as LibTorch's.
        uint threshold = (uint)Math.Min(uint.MaxValue, Math.Round((1 - Probability) * 4294967296.0));
        float scale = (float)(1.0 / (1 - Probability));
        uint scaleBits = bf16 ? BFloat16Rounding.Round(scale) : BitConverter.SingleToUInt32Bits(scale);
        fixed (byte* bytes = mask.bytes)
        {
            nint start = (nint)bytes;
            long chunks = (n + ChunkElements - 1) / ChunkElements;
            Parallel.For(0L, chunks, new ParallelOptions { MaxDegreeOfParallelism = chunks > 1 ? -1 : 1 }, chunk =>
            {
                long from = chunk * ChunkElements, end = Math.Min(n, (chunk + 1) * ChunkElements);
                if (bf16)
                    Fill((ushort*)start, from, end, (ulong)seed, threshold, (ushort)scaleBits);
                else
                    Fill((uint*)start, from, end, (ulong)seed, threshold, scaleBits);
            });
        }
        return bf16 || dtype == ScalarType.Float32 ? mask : mask.to_type(dtype);
    }

    // Element i takes half (i & 1) of SplitMix64(seed + (i >> 1)·golden): as 32-bit words, a vector of draws for pairs
    // k..k+3 reads in element order 2k, 2k+1, …, so one unsigned compare gives eight elements' keep flags. Chunks start
    // at even indices, so a pair never straddles two chunks.
    private const ulong Golden = 0x9E3779B97F4A7C15UL;

    private static unsafe void Fill(uint* mask, long from, long end, ulong seed, uint threshold, uint scaleBits)
    {
        long i = from;
        if (Vector256.IsHardwareAccelerated)
        {
            var thresholds = Vector256.Create(threshold);
            var scales = Vector256.Create(scaleBits);
            for (; i + 8 <= end; i += 8)
            {
                var keep = Vector256.LessThan(Draws(seed, (ulong)(i >> 1)).AsUInt32(), thresholds);
                (keep & scales).Store(mask + i);
            }
        }
        for (; i < end; i++)
            mask[i] = Draw(seed, i) < threshold ? scaleBits : 0u;
    }

    private static unsafe void Fill(ushort* mask, long from, long end, ulong seed, uint threshold, ushort scaleBits)
    {
        long i = from;
        if (Vector256.IsHardwareAccelerated)
        {
            var thresholds = Vector256.Create(threshold);
            var scales = Vector256.Create((uint)scaleBits);
            for (; i + 16 <= end; i += 16)
            {
                var low = Vector256.LessThan(Draws(seed, (ulong)(i >> 1)).AsUInt32(), thresholds) & scales;
                var high = Vector256.LessThan(Draws(seed, (ulong)(i >> 1) + 4).AsUInt32(), thresholds) & scales;
                Vector256.Narrow(low, high).Store(mask + i);
            }
        }
        for (; i < end; i++)
            mask[i] = Draw(seed, i) < threshold ? scaleBits : (ushort)0;
    }

    /// <summary>SplitMix64 of pairs <paramref name="pair"/> … pair + 3.</summary>
    private static Vector256<ulong> Draws(ulong seed, ulong pair)
    {
        var z = Vector256.Create(seed) + (Vector256.Create(pair) + Vector256.Create(0UL, 1UL, 2UL, 3UL)) * Vector256.Create(Golden);
        z = (z ^ Vector256.ShiftRightLogical(z, 30)) * Vector256.Create(0xBF58476D1CE4E5B9UL);
        z = (z ^ Vector256.ShiftRightLogical(z, 27)) * Vector256.Create(0x94D049BB133111EBUL);
        return z ^ Vector256.ShiftRightLogical(z, 31);
    }

    /// <summary>The 32-bit draw of element <paramref name="i"/>.</summary>
    private static uint Draw(ulong seed, long i)
    {
        ulong draw = SplitMix64(unchecked(seed + (ulong)(i >> 1) * Golden));
        return (i & 1) == 0 ? (uint)draw : (uint)(draw >> 32);
    }

    private static ulong SplitMix64(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
