// Renders chat templates with Debian's python3-jinja2 the way transformers does (tests/reference/render_chat_template.py); skips visibly where it is missing.
using System.Text.Json;
using System.Text.Json.Nodes;
using Spectrum.Tests.Shared;

namespace Spectrum.Text.Tests.TestSupport;

internal static class PythonJinja
{
    /// <summary>Null when python3 can import jinja2 (CI installs python3-jinja2), else why not.</summary>
    public static string? Unavailable { get; } = ReferencePython.CannotImport("jinja2", "python3-jinja2");

    /// <summary>Each case rendered: (text, null), or (null, the template's error message) when it raised.</summary>
    public static IReadOnlyList<(string? Text, string? Error)> Render(string template, string bosToken,
        IReadOnlyList<(IReadOnlyList<ChatMessage> Messages, bool AddGenerationPrompt)> cases)
    {
        using var folder = new TempFolder();
        var request = new JsonObject
        {
            ["template"] = template,
            ["bos_token"] = bosToken,
            ["cases"] = new JsonArray(cases.Select(c => (JsonNode)new JsonObject
            {
                ["messages"] = new JsonArray(c.Messages.Select(m => (JsonNode)new JsonObject
                {
                    ["role"] = m.Role.ToString().ToLowerInvariant(),
                    ["content"] = m.Content,
                }).ToArray()),
                ["add_generation_prompt"] = c.AddGenerationPrompt,
            }).ToArray()),
        };
        string requestPath = folder.WriteText("request.json", request.ToJsonString());
        var (exitCode, output) = ReferencePython.Run([Path.Combine(Fixtures.RepositoryRoot, "tests", "reference", "render_chat_template.py"), requestPath]);
        if (exitCode != 0)
            throw new InvalidOperationException($"render_chat_template.py failed ({exitCode}): {output}");
        using var document = JsonDocument.Parse(output);
        return document.RootElement.EnumerateArray()
            .Select(r => (r.TryGetProperty("text", out var t) ? t.GetString() : null, r.TryGetProperty("error", out var e) ? e.GetString() : null))
            .ToList();
    }
}

/// <summary>A theory that needs python3 with jinja2; skipped, with the reason, where that is missing.</summary>
public sealed class PythonJinjaTheoryAttribute : TheoryAttribute
{
    public PythonJinjaTheoryAttribute()
    {
        if (PythonJinja.Unavailable is { } reason)
            Skip = reason;
    }
}
