// Deterministic pseudo-random numbers (SplitMix64) for shuffles, splits and synthetic data that must replay exactly.
namespace Spectrum.Text;

/// <summary>
/// SplitMix64 rather than <see cref="Random"/>: its sequence is fixed by this code alone, so a saved seed reproduces
/// the same split, epoch order or corpus on any .NET version, which resuming a training run depends on.
/// </summary>
internal sealed class SeededRandom
{
    private ulong _state;

    public SeededRandom(ulong seed) => _state = seed;

    /// <summary>A generator for one of several independent streams (an epoch, a task) derived from one user seed.</summary>
    public static SeededRandom ForStream(int seed, int stream) =>
        new(Mix(unchecked((ulong)seed) ^ Mix(unchecked((ulong)stream) + 0x632BE59BD9B4E019UL)));

    public ulong NextUInt64()
    {
        _state += 0x9E3779B97F4A7C15UL;
        return Mix(_state);
    }

    /// <summary>Uniform in [0, exclusiveMax) without modulo bias (rejection of the short last interval).</summary>
    public int NextInt(int exclusiveMax)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(exclusiveMax);
        ulong bound = (ulong)exclusiveMax;
        ulong limit = ulong.MaxValue - ulong.MaxValue % bound;
        ulong value;
        do
        {
            value = NextUInt64();
        }
        while (value >= limit);
        return (int)(value % bound);
    }

    public int NextInt(int inclusiveMin, int exclusiveMax) => inclusiveMin + NextInt(exclusiveMax - inclusiveMin);

    public T Pick<T>(IReadOnlyList<T> items) => items[NextInt(items.Count)];

    /// <summary>A uniformly random ordering of 0..count-1 (Fisher–Yates).</summary>
    public int[] Permutation(int count)
    {
        int[] order = Enumerable.Range(0, count).ToArray();
        for (int i = count - 1; i > 0; i--)
        {
            int j = NextInt(i + 1);
            (order[i], order[j]) = (order[j], order[i]);
        }
        return order;
    }

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
