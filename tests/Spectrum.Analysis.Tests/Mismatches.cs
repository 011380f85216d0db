// Collects numeric mismatches so a failing test prints the first few with their tolerance instead of just "false".
using System.Globalization;
using System.Text;

namespace Spectrum.Analysis.Tests;

/// <summary>Accumulates "what, got, expected, tolerance" lines; <see cref="AssertNone"/> fails with the first ones.</summary>
internal sealed class Mismatches(string context)
{
    private readonly List<string> _lines = [];
    private int _count;

    /// <summary>Records a mismatch when |actual − expected| > tolerance (NaN only matches NaN; ±inf only itself).</summary>
    public void Check(string what, double actual, double expected, double tolerance)
    {
        bool ok = double.IsNaN(expected) ? double.IsNaN(actual)
            : double.IsInfinity(expected) ? actual == expected
            : Math.Abs(actual - expected) <= tolerance;
        if (!ok) Add($"{what}: got {F(actual)}, expected {F(expected)}, |diff| {F(Math.Abs(actual - expected))} > tolerance {F(tolerance)}");
    }

    /// <summary>Relative check: |actual − expected| ≤ rtol·|expected|.</summary>
    public void CheckRelative(string what, double actual, double expected, double rtol) =>
        Check(what, actual, expected, rtol * Math.Abs(expected));

    public void Add(string line)
    {
        _count++;
        if (_lines.Count < 8) _lines.Add(line);
    }

    public void AssertNone()
    {
        if (_count == 0) return;
        var message = new StringBuilder($"{context}: {_count} mismatches; first {_lines.Count}:\n");
        foreach (var line in _lines) message.Append("  ").Append(line).Append('\n');
        Assert.Fail(message.ToString());
    }

    private static string F(double x) => x.ToString("G9", CultureInfo.InvariantCulture);
}
