// 4-bit NormalFloat (NF4) storage of a frozen weight: blockwise absmax scales, two codes per byte, optional double quantisation.
using System.Buffers;
using TorchSharp;
using static TorchSharp.torch;

namespace Spectrum.Training;

/// <summary>
/// QLoRA's NF4 format (Dettmers et al. 2023, "QLoRA", §3 and Appendix E). The flattened weight is cut into blocks of
/// <see cref="BlockSize"/> elements; each block is divided by its absolute maximum and every value replaced by the
/// index of the nearest of the 16 <see cref="CodeValues"/>. Two indices share a byte, the first (even) element in the
/// high nibble, as bitsandbytes packs them. A weight of n elements takes ⌈n/64⌉·32 bytes of codes plus one float32
/// scale per block (0.5625 bytes per element), or with double quantisation one int8 per block plus a float32 per
/// 256 blocks (≈ 0.516 bytes per element).
/// </summary>
/// <remarks>
/// Double quantisation here is linear: scales minus their mean, int8 with one absmax per 256 scales. bitsandbytes
/// instead uses its dynamic 8-bit code for the scales; the memory is the same, the scale error differs slightly.
/// Not for: training the quantised weight (it has no gradient) or storing to disk in bitsandbytes' layout.
/// </remarks>
public sealed class Nf4Tensor : IDisposable
{
    public const int BlockSize = 64;

    /// <summary>Scales per second-level block under double quantisation (bitsandbytes uses 256 too).</summary>
    public const int ScaleBlockSize = 256;

    /// <summary>
    /// The NF4 code book: quantiles of N(0, 1) rescaled to [−1, 1] with an exact zero, from the QLoRA paper's
    /// Appendix E, identical to bitsandbytes' <c>get_4bit_type("nf4")</c> (bitsandbytes/functional.py). Ascending.
    /// </summary>
    public static IReadOnlyList<float> CodeValues { get; } =
    [
        -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
        -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
        0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
        0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f,
    ];

    /// <summary>The index of the zero code: padding elements and all-zero blocks encode to it.</summary>
    public const byte ZeroCode = 7;

    private Nf4Tensor(long[] shape, Tensor packed, Tensor? absmax, Tensor? quantizedAbsmax, Tensor? absmaxScales, Tensor? absmaxOffset)
    {
        Shape = shape;
        ElementCount = shape.Aggregate(1L, (a, b) => checked(a * b));
        Packed = packed;
        Absmax = absmax;
        QuantizedAbsmax = quantizedAbsmax;
        AbsmaxScales = absmaxScales;
        AbsmaxOffset = absmaxOffset;
    }

    /// <summary>Shape of the original weight.</summary>
    public IReadOnlyList<long> Shape { get; }

    public long ElementCount { get; }

    public long BlockCount => (ElementCount + BlockSize - 1) / BlockSize;

    /// <summary>uint8 (BlockCount · 32): two 4-bit codes per byte, even element in the high nibble.</summary>
    public Tensor Packed { get; }

    /// <summary>float32 (BlockCount) scales; null when double-quantised.</summary>
    public Tensor? Absmax { get; }

    /// <summary>int8 (BlockCount): (absmax − offset) / scale, rounded; null unless double-quantised.</summary>
    public Tensor? QuantizedAbsmax { get; }

    /// <summary>float32 (⌈BlockCount/256⌉): the step of each group of 256 quantised scales.</summary>
    public Tensor? AbsmaxScales { get; }

    /// <summary>float32 scalar: the mean scale, subtracted before quantising the scales.</summary>
    public Tensor? AbsmaxOffset { get; }

    public bool IsDoubleQuantized => QuantizedAbsmax is not null;

    /// <summary>Bytes held by this tensor's storage (codes plus scales): what replaces the dense weight in memory.</summary>
    public long StorageBytes =>
        new[] { Packed, Absmax, QuantizedAbsmax, AbsmaxScales, AbsmaxOffset }
            .Where(t => t is not null).Sum(t => t!.numel() * t.element_size());

    /// <summary>Named tensors to register as module buffers (so they move with the module and appear in its state dict).</summary>
    public IEnumerable<(string Suffix, Tensor Tensor)> Buffers()
    {
        yield return ("packed", Packed);
        if (Absmax is not null)
            yield return ("absmax", Absmax);
        if (QuantizedAbsmax is not null)
        {
            yield return ("absmax_quantized", QuantizedAbsmax);
            yield return ("absmax_scales", AbsmaxScales!);
            yield return ("absmax_offset", AbsmaxOffset!);
        }
    }

    /// <summary>Quantises a floating-point weight of any shape (float32, bf16, f16, f64) on its device.</summary>
    /// <exception cref="ArgumentException">Not floating point, empty, or holding NaN/Inf (whose block scale would be meaningless).</exception>
    public static Nf4Tensor Quantize(Tensor weight, bool doubleQuantize = false)
    {
        ArgumentNullException.ThrowIfNull(weight);
        if (!weight.is_floating_point())
            throw new ArgumentException($"NF4 quantises floating-point weights; got {weight.dtype}.", nameof(weight));
        if (weight.numel() == 0)
            throw new ArgumentException($"NF4 needs at least one element; got shape [{string.Join(", ", weight.shape)}].", nameof(weight));
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var flat = weight.detach().to_type(ScalarType.Float32).flatten();    // (n)
        if (!flat.isfinite().all().item<bool>())
            throw new ArgumentException(
                $"The weight [{string.Join(", ", weight.shape)}] holds NaN or Inf; NF4 scales blocks by their absolute maximum, " +
                "which would make the whole block meaningless. Fix the checkpoint or keep this weight unquantised.", nameof(weight));
        long n = flat.numel();
        long blocks = (n + BlockSize - 1) / BlockSize;
        long padding = blocks * BlockSize - n;
        if (padding > 0)
            flat = torch.cat([flat, torch.zeros(padding, dtype: ScalarType.Float32, device: flat.device)]);
        var grid = flat.view(blocks, BlockSize);                               // (blocks, 64)
        var absmax = grid.abs().amax([1]);                                     // (blocks)
        // An all-zero block divides by 1 instead of 0 and encodes to the zero code.
        var safeAbsmax = torch.where(absmax > 0, absmax, torch.ones_like(absmax));
        var normalized = grid / safeAbsmax.unsqueeze(1);                       // (blocks, 64) in [−1, 1]
        var codes = normalized.bucketize(Midpoints(flat.device), outInt32: true).to_type(ScalarType.Byte).view(-1, 2);   // (blocks·32, 2) in 0..15
        var packed = (codes.select(1, 0) * 16 + codes.select(1, 1)).to_type(ScalarType.Byte);           // (blocks·32)

        Tensor? keptAbsmax = doubleQuantize ? null : absmax, quantized = null, scales = null, offset = null;
        if (doubleQuantize)
        {
            offset = absmax.mean();                                            // ()
            var centered = absmax - offset;                                    // (blocks)
            long groups = (blocks + ScaleBlockSize - 1) / ScaleBlockSize;
            long groupPadding = groups * ScaleBlockSize - blocks;
            if (groupPadding > 0)
                centered = torch.cat([centered, torch.zeros(groupPadding, dtype: ScalarType.Float32, device: centered.device)]);
            var groupGrid = centered.view(groups, ScaleBlockSize);             // (groups, 256)
            var groupMax = groupGrid.abs().amax([1]);                          // (groups)
            scales = torch.where(groupMax > 0, groupMax / 127f, torch.ones_like(groupMax));
            quantized = (groupGrid / scales.unsqueeze(1)).round().clamp(-127, 127).to_type(ScalarType.Int8).flatten().narrow(0, 0, blocks);
        }

        return new Nf4Tensor(weight.shape.ToArray(), Keep(packed)!, Keep(keptAbsmax), Keep(quantized), Keep(scales), Keep(offset));
    }

    /// <summary>The weight as <paramref name="dtype"/> (float32 by default), original shape: code value × block scale, the multiplication done in float32.</summary>
    public Tensor Dequantize(ScalarType dtype = ScalarType.Float32)
    {
        if (Packed.is_cpu() && dtype is ScalarType.Float32 or ScalarType.BFloat16)
            return DequantizeWithKernel(dtype);
        return DequantizeWithTensorOps(dtype);
    }

    // Hand-written because QLoRA dequantises every frozen weight twice per step (forward and backward): as tensor
    // operations that is five passes over the weight with three weight-sized temporaries; here it is one pass.
    private unsafe Tensor DequantizeWithKernel(ScalarType dtype)
    {
        using var scope = torch.NewDisposeScope();
        var scales = BlockScales().contiguous();                                // (blocks) float32
        var weight = torch.empty(Shape.ToArray(), dtype: dtype);
        long n = ElementCount, blocks = BlockCount;
        bool bf16 = dtype == ScalarType.BFloat16;
        fixed (byte* packedBytes = Packed.bytes, scaleBytes = scales.bytes, outBytes = weight.bytes)
        {
            nint packed = (nint)packedBytes, scale = (nint)scaleBytes, output = (nint)outBytes;
            const long BlocksPerChunk = 1024;
            long chunks = (blocks + BlocksPerChunk - 1) / BlocksPerChunk;
            Parallel.For(0L, chunks, new ParallelOptions { MaxDegreeOfParallelism = chunks > 1 ? -1 : 1 }, chunk =>
            {
                var codes = CodeTable;
                long firstBlock = chunk * BlocksPerChunk, end = Math.Min(blocks, firstBlock + BlocksPerChunk);
                long chunkStart = firstBlock * BlockSize;
                int chunkCount = (int)(Math.Min(n, end * BlockSize) - chunkStart);
                // bf16: the chunk in float32 first (a pooled buffer), then rounded a vector at a time.
                float[]? staging = bf16 ? ArrayPool<float>.Shared.Rent(chunkCount) : null;
                try
                {
                    fixed (float* stagingStart = staging)
                    {
                        float* target = bf16 ? stagingStart - chunkStart : (float*)output;   // indexed by element number
                        for (long block = firstBlock; block < end; block++)
                        {
                            float blockScale = ((float*)scale)[block];
                            byte* pairs = (byte*)packed + block * (BlockSize / 2);
                            long first = block * BlockSize;
                            int count = (int)Math.Min(BlockSize, n - first);
                            int whole = count >> 1;   // bytes whose two elements both exist (only the last block can end mid-byte)
                            float* o = target + first;
                            for (int k = 0; k < whole; k++)
                            {
                                o[2 * k] = codes[pairs[k] >> 4] * blockScale;
                                o[2 * k + 1] = codes[pairs[k] & 15] * blockScale;
                            }
                            if ((count & 1) != 0)
                                o[count - 1] = codes[pairs[whole] >> 4] * blockScale;
                        }
                        if (bf16)
                            BFloat16Rounding.Round(new ReadOnlySpan<float>(stagingStart, chunkCount), new Span<ushort>((ushort*)output + chunkStart, chunkCount));
                    }
                }
                finally
                {
                    if (staging is not null)
                        ArrayPool<float>.Shared.Return(staging);
                }
            });
        }
        return weight.MoveToOuterDisposeScope();
    }

    private static readonly float[] CodeTable = [.. CodeValues];

    /// <summary>The general path (any device and dtype), as tensor operations; tests compare the kernel with it.</summary>
    internal Tensor DequantizeWithTensorOps(ScalarType dtype)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var device = Packed.device;
        // Byte b stands for the pair (code[b >> 4], code[b & 15]): one lookup per byte, no int64 code tensor per element.
        var pairs = PairTable(device);                                          // (256, 2)
        var values = pairs.index_select(0, Packed.to_type(ScalarType.Int32));   // (blocks·32, 2)
        var grid = values.view(BlockCount, BlockSize);                          // (blocks, 64)
        var scaled = grid * BlockScales().unsqueeze(1);                         // (blocks, 64)
        var weight = scaled.flatten().narrow(0, 0, ElementCount).view(Shape.ToArray()).to_type(dtype);
        return weight.MoveToOuterDisposeScope();
    }

    /// <summary>float32 (BlockCount): the scales, reconstructed from int8 when double-quantised.</summary>
    public Tensor BlockScales()
    {
        if (Absmax is not null)
            return Absmax.alias();
        using var scope = torch.NewDisposeScope();
        var perBlockScale = AbsmaxScales!.repeat_interleave(ScaleBlockSize).narrow(0, 0, BlockCount);   // (blocks)
        var scales = QuantizedAbsmax!.to_type(ScalarType.Float32) * perBlockScale + AbsmaxOffset!;
        return scales.MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        Packed.Dispose();
        Absmax?.Dispose();
        QuantizedAbsmax?.Dispose();
        AbsmaxScales?.Dispose();
        AbsmaxOffset?.Dispose();
    }

    private static Tensor? Keep(Tensor? tensor) => tensor?.contiguous().DetachFromDisposeScope();

    /// <summary>The 15 points halfway between neighbouring codes; bucketize sends a value equal to one to the lower code, like bitsandbytes' <c>x &gt; threshold</c> tests.</summary>
    private static Tensor Midpoints(Device device)
    {
        var midpoints = new float[CodeValues.Count - 1];
        for (int i = 0; i < midpoints.Length; i++)
            midpoints[i] = (float)(((double)CodeValues[i] + CodeValues[i + 1]) / 2);
        return torch.tensor(midpoints, device: device);
    }

    private static Tensor PairTable(Device device)
    {
        var table = new float[256 * 2];
        for (int b = 0; b < 256; b++)
        {
            table[2 * b] = CodeValues[b >> 4];
            table[2 * b + 1] = CodeValues[b & 15];
        }
        return torch.tensor(table, device: device).view(256, 2);
    }
}
