// The glibc policy behind --keep-freed-memory: a freed large block comes back without new page faults.
using System.Runtime.InteropServices;

namespace Spectrum.Training.Tests;

public sealed class FreedMemoryPolicyTests
{
    /// <summary>
    /// A 48 MB block is above the largest mmap threshold glibc's defaults ever use (32 MB), so without the policy every
    /// allocation is a fresh mapping and touching it faults in all 12,288 pages, every time. With the policy a
    /// re-allocated block reuses the freed one's memory: (almost) no faults. The one exception is glibc's, not ours: a
    /// thread arena deletes a secondary heap that became entirely free, so a thread whose arena had to open a new heap
    /// for the block still faults. Which arena a thread uses is glibc's choice, so the rounds run on fresh threads until
    /// one shows the reuse (the main program thread of a training run always does; see the benchmark). Faults are
    /// counted per thread (/proc/thread-self/stat), so nothing else in the process disturbs the count.
    /// </summary>
    [Fact]
    public void AFreedBlockIsReusedWithoutNewPageFaults()
    {
        if (!OperatingSystem.IsLinux())
        {
            Assert.False(FreedMemoryPolicy.KeepFreedMemory());
            return;
        }
        Assert.True(FreedMemoryPolicy.KeepFreedMemory());
        const int Bytes = 48 << 20;
        var faults = new List<long>();
        for (int attempt = 0; attempt < 16 && (faults.Count == 0 || faults.Min() >= Bytes / Environment.SystemPageSize / 10); attempt++)
        {
            var thread = new Thread(() =>
            {
                TouchAndFree(Bytes);
                long before = MinorFaultsOfThisThread();
                TouchAndFree(Bytes);
                lock (faults)
                    faults.Add(MinorFaultsOfThisThread() - before);
            });
            thread.Start();
            thread.Join();
        }
        Assert.True(faults.Min() < Bytes / Environment.SystemPageSize / 10,
            $"page faults touching a re-allocated {Bytes >> 20} MB block, per thread: {string.Join(", ", faults)}");
    }

    private static unsafe void TouchAndFree(int bytes)
    {
        void* block = NativeMemory.Alloc((nuint)bytes);   // malloc
        try
        {
            new Span<byte>(block, bytes).Fill(1);
        }
        finally
        {
            NativeMemory.Free(block);
        }
    }

    /// <summary>Field 10 (minflt) of /proc/thread-self/stat; fields are counted after the parenthesised command name.</summary>
    private static long MinorFaultsOfThisThread()
    {
        string stat = File.ReadAllText("/proc/thread-self/stat");
        string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return long.Parse(fields[10 - 3], System.Globalization.CultureInfo.InvariantCulture);
    }
}
