// Reads the process's current and peak resident memory, for benchmarks comparing full, Spectrum and QLoRA training.
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;

namespace Spectrum.Training;

/// <param name="CurrentRssBytes">Resident set size now (Linux VmRSS).</param>
/// <param name="PeakRssBytes">Highest resident set size so far (Linux VmHWM, the "high water mark").</param>
public readonly record struct MemorySnapshot(long CurrentRssBytes, long PeakRssBytes);

public static class MemoryMeter
{
    private const string StatusPath = "/proc/self/status";

    /// <summary>From /proc/self/status on Linux; elsewhere from <see cref="Process"/> (working set, peak working set).</summary>
    public static MemorySnapshot Read()
    {
        if (File.Exists(StatusPath))
            return Parse(File.ReadAllText(StatusPath));
        using var process = Process.GetCurrentProcess();
        return new MemorySnapshot(process.WorkingSet64, process.PeakWorkingSet64);
    }

    /// <summary>
    /// Resets the peak to the current RSS (Linux ≥ 4.0: writing "5" to /proc/self/clear_refs), so a benchmark can
    /// measure one phase's peak. Returns false where that is not possible; the peak then covers the whole process.
    /// </summary>
    public static bool TryResetPeak()
    {
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>
    /// Collects managed garbage (finalizing undisposed TorchSharp handles) and asks glibc to return freed heap pages to
    /// the OS (malloc_trim), so that RSS before a phase reflects live memory. Without it, a phase that follows a larger
    /// one reuses pages the allocator kept and its peak looks smaller than it is. Returns false where glibc is absent.
    /// </summary>
    public static bool TryReturnFreedMemory()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        if (!OperatingSystem.IsLinux())
            return false;
        try
        {
            // Its result says whether pages were released; either way the call worked.
            MallocTrim(0);
            return true;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }

    [DllImport("libc", EntryPoint = "malloc_trim")]
    private static extern int MallocTrim(nuint pad);

    /// <summary>Reads the VmRSS and VmHWM lines ("VmHWM:   123456 kB") of a /proc status text.</summary>
    /// <exception cref="FormatException">Either line is missing or not in kB.</exception>
    public static MemorySnapshot Parse(string statusText)
    {
        ArgumentNullException.ThrowIfNull(statusText);
        long? current = null, peak = null;
        foreach (string line in statusText.Split('\n'))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                current = Kilobytes(line);
            else if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                peak = Kilobytes(line);
        }
        if (current is null || peak is null)
            throw new FormatException($"Expected VmRSS and VmHWM lines in {StatusPath}; found {(current is null ? "no VmRSS" : "")}{(current is null && peak is null ? " and " : "")}{(peak is null ? "no VmHWM" : "")}.");
        return new MemorySnapshot(current.Value, peak.Value);
    }

    private static long Kilobytes(string line)
    {
        var parts = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length != 3 || parts[2] != "kB" || !long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out long kb))
            throw new FormatException($"Expected \"<name>: <number> kB\", found \"{line.Trim()}\".");
        return checked(kb * 1024);
    }
}
