// Writes and reads the `unfrozen_parameters` YAML that Axolotl uses to train only the selected modules.
using Spectrum.Checkpoints;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Spectrum.Selection;

/// <summary>
/// The reference's layout: <c>unfrozen_parameters:</c>, then one <c>- ^name$</c> line per extra parameter (the
/// embedding and output head), then per type a <c># &lt;type&gt; layers</c> comment followed by the selected module
/// names, best first. A module name works as a pattern because Axolotl matches from the start of each parameter name
/// with dots escaped, so <c>model.layers.1.mlp.down_proj</c> covers its <c>.weight</c> and <c>.bias</c> only.
/// </summary>
public static class AxolotlYaml
{
    public const string ListKey = "unfrozen_parameters";

    /// <summary>The extras the reference always writes, whether or not the model has them (tied embeddings, GPT-2 names).</summary>
    public static IReadOnlyList<string> ReferenceExtraParameterNames { get; } = ["lm_head.weight", "model.embed_tokens.weight"];

    /// <summary>The reference's file name: <c>snr_results_&lt;slug&gt;_unfrozenparameters_&lt;percent&gt;percent.yaml</c>.</summary>
    public static string FileName(string modelId, double percent) =>
        $"snr_results_{ScanResultsJson.ModelSlug(modelId)}_unfrozenparameters_{percent.ToString("R", CultureInfo.InvariantCulture)}percent.yaml";

    /// <summary>
    /// A regex that Axolotl matches against a module's parameters and nothing that merely starts the same way with a
    /// different character: regex metacharacters other than <c>.</c> are backslash-escaped (Axolotl escapes dots
    /// itself, and would turn an escaped <c>\.</c> into "backslash, any character").
    /// </summary>
    public static string ModulePattern(string moduleName)
    {
        ArgumentException.ThrowIfNullOrEmpty(moduleName);
        var builder = new StringBuilder(moduleName.Length);
        foreach (char c in moduleName)
        {
            if (@"\^$|?*+()[]{}".Contains(c))
                builder.Append('\\');
            builder.Append(c);
        }
        return builder.ToString();
    }

    /// <summary><c>^name$</c> with the name escaped as in <see cref="ModulePattern"/>: unfreezes exactly that parameter.</summary>
    public static string ExactParameterPattern(string parameterName) => "^" + ModulePattern(parameterName) + "$";

    /// <summary>The patterns <see cref="Render"/> writes, in the same order: extras first, then each type's selected modules.</summary>
    public static IReadOnlyList<string> Patterns(SelectionResult selection, IReadOnlyList<string> extraParameterNames)
    {
        ArgumentNullException.ThrowIfNull(selection);
        ArgumentNullException.ThrowIfNull(extraParameterNames);
        return extraParameterNames.Select(ExactParameterPattern)
            .Concat(selection.SelectedModules.Select(ModulePattern))
            .ToList();
    }

    /// <summary>
    /// True when the YAML would list nothing — no selected module and no extra name — which Axolotl reads as "freeze
    /// nothing", training every parameter. Callers refuse to write such a list.
    /// </summary>
    public static bool UnfreezesNothing(SelectionResult selection, IReadOnlyList<string> extraParameterNames) =>
        extraParameterNames.Count == 0 && selection.Types.All(t => t.SelectedCount == 0);

    /// <summary>
    /// The YAML text. Every type gets its comment line, even one with no module selected (as the reference writes
    /// <c># lm_head layers</c> with nothing under it at 50% of one module).
    /// </summary>
    /// <exception cref="ArgumentException">
    /// Nothing would be unfrozen: Axolotl skips freezing when the list is empty and would train every parameter.
    /// </exception>
    public static string Render(SelectionResult selection, IReadOnlyList<string> extraParameterNames)
    {
        ArgumentNullException.ThrowIfNull(selection);
        ArgumentNullException.ThrowIfNull(extraParameterNames);
        if (UnfreezesNothing(selection, extraParameterNames))
            throw new ArgumentException(
                $"At {selection.Percent.ToString("R", CultureInfo.InvariantCulture)}% no module of any type is selected " +
                "(floor(count × percent / 100) is 0 for every type) and no extra parameter names were given. Axolotl reads an " +
                "empty unfrozen_parameters list as \"freeze nothing\" and would train every parameter. Raise the percent or keep the embedding/head names.",
                nameof(selection));

        var builder = new StringBuilder();
        builder.Append(ListKey).Append(":\n");
        foreach (string extra in extraParameterNames)
            builder.Append("- ").Append(YamlScalar(ExactParameterPattern(extra))).Append('\n');
        foreach (var type in selection.Types)
        {
            if (type.Type.Any(IsYamlBreakOrControl))
                throw new ArgumentException($"Type \"{type.Type}\" contains a line break or control character and cannot be written as a YAML comment.", nameof(selection));
            builder.Append("# ").Append(type.Type).Append(" layers\n");
            foreach (var module in type.Selected)
                builder.Append("- ").Append(YamlScalar(ModulePattern(module.Module))).Append('\n');
        }
        return builder.ToString();
    }

    /// <summary>Writes <see cref="Render"/>'s text atomically: the old file stays whole if anything fails.</summary>
    public static void Write(string path, SelectionResult selection, IReadOnlyList<string> extraParameterNames)
    {
        string text = Render(selection, extraParameterNames);
        AtomicFile.WriteText(path, writer => writer.Write(text));
    }

    /// <summary>The <c>unfrozen_parameters</c> list of a YAML file (an Axolotl config or our file), each entry checked as Axolotl would compile it.</summary>
    /// <exception cref="ScanResultsException">Missing file, malformed YAML, no list, or an entry Axolotl could not use; with the line.</exception>
    public static IReadOnlyList<string> ReadPatterns(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path))
            throw new ScanResultsException(ScanResultsErrorKind.FileNotFound, path, null, null,
                $"Expected a YAML file with an {ListKey} list, found no file. Check the path.");
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ScanResultsException(ScanResultsErrorKind.FileUnreadable, path, null, null,
                $"Could not read the file: {e.Message} Check its permissions.", e);
        }
        return ParsePatterns(text, path);
    }

    /// <summary>As <see cref="ReadPatterns"/>, for YAML text in memory; <paramref name="sourceName"/> is used in errors.</summary>
    public static IReadOnlyList<string> ParsePatterns(string yaml, string sourceName)
    {
        ArgumentNullException.ThrowIfNull(yaml);
        ArgumentNullException.ThrowIfNull(sourceName);
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(yaml));
        }
        catch (YamlException e)
        {
            throw new ScanResultsException(ScanResultsErrorKind.MalformedYaml, sourceName, LineOf(e.Start), null,
                $"Not valid YAML: {e.Message} Fix the syntax at this line.", e);
        }

        if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is not YamlMappingNode root)
            throw new ScanResultsException(ScanResultsErrorKind.MissingUnfrozenParameters, sourceName,
                stream.Documents.Count == 0 ? null : LineOf(stream.Documents[0].RootNode.Start), null,
                $"Expected a mapping with the key \"{ListKey}:\" at the top, found {(stream.Documents.Count == 0 ? "an empty file" : "something else")}. " +
                "Write the list as in `spectrum select` output.");
        var entry = root.Children.FirstOrDefault(pair => pair.Key is YamlScalarNode { Value: ListKey });
        if (entry.Key is null)
            throw new ScanResultsException(ScanResultsErrorKind.MissingUnfrozenParameters, sourceName, LineOf(root.Start), ListKey,
                $"Expected the key \"{ListKey}:\", found only {string.Join(", ", root.Children.Keys.Select(k => $"\"{k}\""))}. " +
                "Without it Axolotl trains every parameter; add the list produced by `spectrum select`.");
        if (entry.Value is not YamlSequenceNode list || list.Children.Count == 0)
            throw new ScanResultsException(ScanResultsErrorKind.MissingUnfrozenParameters, sourceName, LineOf(entry.Value.Start), ListKey,
                $"Expected a non-empty list of patterns (\"- <pattern>\" lines), found {DescribeNode(entry.Value)}. " +
                "Axolotl skips freezing when the list is empty and would train every parameter.");

        var patterns = new List<string>(list.Children.Count);
        foreach (var item in list.Children)
        {
            int line = LineOf(item.Start);
            if (item is not YamlScalarNode { Value: { } value } scalar)
                throw new ScanResultsException(ScanResultsErrorKind.InvalidPattern, sourceName, line, ListKey,
                    $"Expected a pattern string, found {DescribeNode(item)}. Write one pattern per \"- \" line.");
            if (scalar.Style == ScalarStyle.Plain && PythonYamlNonString(value) is { } kind)
                throw new ScanResultsException(ScanResultsErrorKind.InvalidPattern, sourceName, line, ListKey,
                    $"Expected a pattern string, found the plain value \"{value}\", which PyYAML (Axolotl's YAML reader) reads as {kind}. Quote it.");
            try
            {
                _ = new AxolotlPatternMatcher(value);
            }
            catch (ArgumentException e)
            {
                throw new ScanResultsException(ScanResultsErrorKind.InvalidPattern, sourceName, line, ListKey, e.Message, e);
            }
            patterns.Add(value);
        }
        return patterns;
    }

    // YamlDotNet's marks are 1-based; a missing mark (0) means "somewhere in the file".
    private static int LineOf(Mark mark) => (int)Math.Max(1, mark.Line);

    private static string DescribeNode(YamlNode node) => node switch
    {
        YamlScalarNode { Value: null or "" or "~" or "null" } => "nothing",
        YamlScalarNode scalar => $"the single value \"{scalar.Value}\"",
        YamlSequenceNode => "a nested list",
        YamlMappingNode => "a mapping",
        _ => node.NodeType.ToString(),
    };

    // PyYAML's YAML 1.1 resolvers for plain scalars; a pattern resolved to one of these never reaches re.compile as text.
    private static readonly (string Kind, Regex Rule)[] PythonYamlResolvers =
    [
        ("null", new Regex(@"^(?:~|null|Null|NULL|)$", RegexOptions.CultureInvariant)),
        ("a boolean", new Regex(@"^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$", RegexOptions.CultureInvariant)),
        ("an integer", new Regex(@"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$", RegexOptions.CultureInvariant)),
        ("a number", new Regex(@"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9_]+(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$", RegexOptions.CultureInvariant)),
    ];

    private static string? PythonYamlNonString(string plain) =>
        PythonYamlResolvers.FirstOrDefault(r => r.Rule.IsMatch(plain)).Kind;

    // Plain scalars stay unquoted like the reference's lines; anything PyYAML could read as another type, or
    // that YAML gives meaning to, is double-quoted.
    private static readonly Regex SafePlainScalar = new(@"^[A-Za-z_^\\/$][A-Za-z0-9_.\-/\\^$]*$", RegexOptions.CultureInvariant);

    private static readonly HashSet<string> YamlWords = new(StringComparer.OrdinalIgnoreCase) { "y", "n", "yes", "no", "true", "false", "on", "off", "null" };

    private static string YamlScalar(string text)
    {
        if (SafePlainScalar.IsMatch(text) && !YamlWords.Contains(text))
            return text;
        var builder = new StringBuilder(text.Length + 2).Append('"');
        foreach (char c in text)
        {
            if (c is '"' or '\\')
                builder.Append('\\').Append(c);
            else if (IsYamlBreakOrControl(c) || c == '\uFEFF')
                builder.Append("\\u").Append(((int)c).ToString("X4", CultureInfo.InvariantCulture));
            else
                builder.Append(c);
        }
        return builder.Append('"').ToString();
    }

    private static bool IsYamlBreakOrControl(char c) => char.IsControl(c) || c is '\u2028' or '\u2029';
}
