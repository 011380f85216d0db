// Peak and current RSS from /proc/self/status.
namespace Spectrum.Training.Tests;

public sealed class MemoryMeterTests
{
    [Fact]
    public void ParsesVmRssAndVmHwmInKilobytes()
    {
        const string status = "Name:\ttesthost\nVmPeak:\t 9999 kB\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\nThreads:\t8\n";
        Assert.Equal(new MemorySnapshot(102400L * 1024, 204800L * 1024), MemoryMeter.Parse(status));
    }

    [Theory]
    [InlineData("VmRSS:\t 1 kB\n")]
    [InlineData("VmHWM:\t 1 kB\nVmRSS:\t 1 MB\n")]
    public void MissingOrMalformedLinesAreFormatErrors(string status) =>
        Assert.Throws<FormatException>(() => MemoryMeter.Parse(status));

    [Fact]
    public void ThePeakCoversAnAllocationThatWasTouched()
    {
        var before = MemoryMeter.Read();
        Assert.True(before.CurrentRssBytes > 0);
        Assert.True(before.PeakRssBytes >= before.CurrentRssBytes);
        var block = GC.AllocateUninitializedArray<byte>(64 << 20, pinned: true);
        Array.Fill(block, (byte)1);   // touch every page so it becomes resident
        var after = MemoryMeter.Read();
        Assert.True(after.PeakRssBytes >= before.CurrentRssBytes + (48L << 20), $"peak {after.PeakRssBytes} after touching 64 MiB from {before.CurrentRssBytes}");
        GC.KeepAlive(block);
    }
}
