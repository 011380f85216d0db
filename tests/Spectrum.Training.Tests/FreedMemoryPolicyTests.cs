// The glibc policy behind --keep-freed-memory: a freed large block comes back without new page faults.
using System.Runtime.InteropServices;

namespace Spectrum.Training.Tests;

public sealed class FreedMemoryPolicyTests
{
    /// <summary>
    /// Under glibc's defaults a 48 MB block is a fresh mapping each time, so touching it again after free faults in all
    /// of its 12,288 pages. With the policy applied, the second block reuses the first one's memory: (almost) no faults.
    /// Faults are counted for this thread only (/proc/thread-self/stat), so parallel tests do not disturb the count.
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
        TouchAndFree(Bytes);
        long before = MinorFaultsOfThisThread();
        TouchAndFree(Bytes);
        long faults = MinorFaultsOfThisThread() - before;
        Assert.True(faults < Bytes / Environment.SystemPageSize / 10, $"{faults} page faults touching a re-allocated {Bytes >> 20} MB block");
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
