// Asserts that an action fails with a DataFormatException pointing at the expected file, line and field.
namespace Spectrum.Text.Tests.TestSupport;

internal static class Rejection
{
    public static DataFormatException Assert(Action action, string filePath, int? lineNumber, string? field)
    {
        var error = Xunit.Assert.Throws<DataFormatException>(action);
        Xunit.Assert.Equal(filePath, error.FilePath);
        Xunit.Assert.Equal(lineNumber, error.LineNumber);
        Xunit.Assert.Equal(field, error.Field);
        // Every message states the place first and carries expected/found, so a user can find and fix the problem.
        Xunit.Assert.StartsWith(lineNumber is { } line ? $"{filePath}:{line}:" : $"{filePath}:", error.Message);
        Xunit.Assert.Contains("expected ", error.Message);
        Xunit.Assert.Contains("found ", error.Message);
        return error;
    }

    public static DataFormatException Assert(Func<object?> action, string filePath, int? lineNumber, string? field) =>
        Assert(() => { action(); }, filePath, lineNumber, field);
}
