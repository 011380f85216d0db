// Reads and writes the reference scanner's result files (flat snr_results_<slug>.json and its _sorted.json).
using Spectrum.Checkpoints;
using System.Text;

namespace Spectrum.Selection;

/// <summary>
/// The two layouts Python's reference writes (and the published scans use), kept compatible both ways:
/// <list type="bullet">
/// <item>flat: <c>{ "&lt;module&gt;": {"snr": &lt;number&gt;, "type": "&lt;type&gt;"}, ... }</c></item>
/// <item>sorted: <c>{ "&lt;type&gt;": { "&lt;module&gt;": &lt;number&gt;, ... best first }, ... }</c></item>
/// </list>
/// Numbers are written shortest-round-trip in Python's float layout, and non-finite scores as Python's bare
/// <c>Infinity</c>, <c>-Infinity</c>, <c>NaN</c>, so Python's json module reads our files and we read its files.
/// </summary>
public static class ScanResultsJson
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>The reference's file-name slug: <c>meta-llama/Meta_Llama</c> → <c>meta-llama-Meta-Llama</c>.</summary>
    public static string ModelSlug(string modelId)
    {
        ArgumentNullException.ThrowIfNull(modelId);
        return modelId.Replace('/', '-').Replace('_', '-');
    }

    /// <summary><c>snr_results_&lt;slug&gt;.json</c>, the reference's name for the flat file.</summary>
    public static string FlatFileName(string modelId) => $"snr_results_{ModelSlug(modelId)}.json";

    /// <summary><c>snr_results_&lt;slug&gt;_sorted.json</c>, the reference's name for the sorted file.</summary>
    public static string SortedFileName(string modelId) => $"snr_results_{ModelSlug(modelId)}_sorted.json";

    /// <summary>Writes the flat layout atomically (see <see cref="FormatFlat"/>).</summary>
    public static void WriteFlat(string path, IReadOnlyList<ModuleScore> scores)
    {
        string text = FormatFlat(scores);
        AtomicFile.WriteText(path, writer => writer.Write(text));
    }

    /// <summary>The flat layout, in the order given, laid out as the reference's <c>json.dump(..., indent=4)</c>.</summary>
    /// <exception cref="ArgumentException">A module appears twice (a JSON object cannot hold it twice).</exception>
    public static string FormatFlat(IReadOnlyList<ModuleScore> scores)
    {
        ArgumentNullException.ThrowIfNull(scores);
        RejectDuplicates(scores);
        var members = scores.Select(s => KeyValuePair.Create(s.Module, s)).ToList();
        var writer = new StringWriter { NewLine = "\n" };
        PythonJsonWriter.WriteObject(writer, members, (w, score, level) =>
        {
            string inner = new(' ', 4 * (level + 1));
            w.Write("{\n");
            w.Write($"{inner}\"snr\": {PythonJsonWriter.FormatNumber(score.Score)},\n");
            w.Write($"{inner}\"type\": {PythonJsonWriter.FormatString(score.Type)}\n");
            w.Write(new string(' ', 4 * level));
            w.Write('}');
        }, level: 0);
        return writer.ToString();
    }

    /// <summary>Writes the sorted layout of every module of <paramref name="selection"/> (not only the selected ones).</summary>
    public static void WriteSorted(string path, SelectionResult selection)
    {
        string text = FormatSorted(selection);
        AtomicFile.WriteText(path, writer => writer.Write(text));
    }

    /// <summary>Ranks <paramref name="scores"/> per type (<see cref="ScoreOrder"/>) and writes the sorted layout.</summary>
    public static void WriteSorted(string path, IReadOnlyList<ModuleScore> scores) =>
        WriteSorted(path, TopPercentSelection.Select(scores, 100));

    /// <summary>The sorted layout: types in first-seen order, each type's modules best first.</summary>
    public static string FormatSorted(SelectionResult selection)
    {
        ArgumentNullException.ThrowIfNull(selection);
        RejectDuplicates(selection.Types.SelectMany(t => t.Ranked).ToList());
        var duplicateType = selection.Types.GroupBy(t => t.Type, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (duplicateType is not null)
            throw new ArgumentException($"Type \"{duplicateType.Key}\" appears twice in the selection; the sorted layout needs one object per type.", nameof(selection));
        var members = selection.Types.Select(t => KeyValuePair.Create(t.Type, t.Ranked)).ToList();
        var writer = new StringWriter { NewLine = "\n" };
        PythonJsonWriter.WriteObject(writer, members, (w, ranked, level) =>
            PythonJsonWriter.WriteObject(w, ranked.Select(s => KeyValuePair.Create(s.Module, s.Score)).ToList(),
                (inner, score, _) => inner.Write(PythonJsonWriter.FormatNumber(score)), level), level: 0);
        return writer.ToString();
    }

    /// <summary>
    /// Reads either layout (detected from the first entry) and returns the scores in file order.
    /// Types are kept as the file gives them (the flat layout's <c>"type"</c> field, or the sorted layout's type key),
    /// so a file's grouping survives a round trip; the one exception is that with <paramref name="groupExperts"/>
    /// a module with a number below its layer number (an expert) is regrouped with <see cref="ModuleTypes.TypeOf"/>,
    /// because the reference made each expert its own type (Mixtral: <c>block_sparse_moe.experts.0.w1</c>, ...).
    /// </summary>
    /// <exception cref="ScanResultsException">The file is missing, unreadable, not JSON, or not one of the layouts.</exception>
    public static IReadOnlyList<ModuleScore> Read(string path, bool groupExperts = true)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path))
            throw new ScanResultsException(ScanResultsErrorKind.FileNotFound, path, null, null,
                "Expected a scan result file (the reference's snr_results_<model>.json or its _sorted.json), found no file. " +
                (Directory.Exists(path) ? "This is a folder; name the JSON file inside it." : "Check the path."));
        string text;
        try
        {
            text = File.ReadAllText(path, StrictUtf8);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or DecoderFallbackException)
        {
            throw new ScanResultsException(ScanResultsErrorKind.FileUnreadable, path, null, null,
                $"Could not read the file as UTF-8 text: {e.Message} Check its permissions and that it is a JSON file.", e);
        }
        return Parse(text, path, groupExperts);
    }

    /// <summary>As <see cref="Read"/>, for JSON text already in memory; <paramref name="sourceName"/> is used in errors.</summary>
    public static IReadOnlyList<ModuleScore> Parse(string json, string sourceName, bool groupExperts = true)
    {
        ArgumentNullException.ThrowIfNull(json);
        ArgumentNullException.ThrowIfNull(sourceName);
        var root = PythonJsonReader.Parse(json.TrimStart('\uFEFF'), sourceName);
        if (root is not JsonObjectNode rootObject)
            throw new ScanResultsException(ScanResultsErrorKind.UnrecognizedLayout, sourceName, root.Line, null,
                $"Expected a JSON object of modules or of types at the top level, found {root.Describe()}. " +
                "Use a scan result written by `spectrum scan` or by the reference scanner.");
        if (rootObject.Members.Count == 0)
            return [];

        var first = rootObject.Members[0];
        var scores = first.Value switch
        {
            JsonObjectNode firstEntry when firstEntry.Members.Any(m => m.Key == "snr") => ReadFlat(rootObject, sourceName, first),
            JsonObjectNode => ReadSorted(rootObject, sourceName, first),
            var other => throw new ScanResultsException(ScanResultsErrorKind.UnrecognizedLayout, sourceName, first.Line, first.Key,
                $"Expected an object here: {{\"snr\": <number>, \"type\": \"<type>\"}} (flat layout) or " +
                $"{{\"<module>\": <number>, ...}} (sorted layout), found {other.Describe()}. " +
                "Use a scan result written by `spectrum scan` or by the reference scanner."),
        };
        return groupExperts ? scores.Select(RegroupExperts).ToList() : scores;
    }

    private static ModuleScore RegroupExperts(ModuleScore score) =>
        ModuleTypes.HasNumberBelowLayer(score.Module) ? score with { Type = ModuleTypes.TypeOf(score.Module) } : score;

    private static List<ModuleScore> ReadFlat(JsonObjectNode root, string source, JsonMember first)
    {
        string layoutNote = $"the flat layout (detected from the first entry, line {first.Line})";
        var lines = new Dictionary<string, int>(StringComparer.Ordinal);
        var scores = new List<ModuleScore>(root.Members.Count);
        foreach (var member in root.Members)
        {
            RequireModuleName(member, source, lines);
            if (member.Value is not JsonObjectNode entry)
                throw InvalidEntry(source, member, $"Expected {{\"snr\": <number>, \"type\": \"<type>\"}} as in {layoutNote}, found {member.Value.Describe()}.");
            JsonNode? snr = null;
            JsonNode? type = null;
            foreach (var field in entry.Members)
            {
                switch (field.Key)
                {
                    case "snr" when snr is null: snr = field.Value; break;
                    case "type" when type is null: type = field.Value; break;
                    case "snr" or "type":
                        throw InvalidEntry(source, member, field.Line, $"Expected one \"{field.Key}\" field, found a second one. Remove one of them.");
                    default:
                        throw InvalidEntry(source, member, field.Line,
                            $"Expected only the fields \"snr\" and \"type\" of {layoutNote}, found \"{field.Key}\". Remove it or check that this is a scan result file.");
                }
            }
            if (snr is null || type is null)
                throw InvalidEntry(source, member, $"Expected both \"snr\" and \"type\" as in {layoutNote}, found no \"{(snr is null ? "snr" : "type")}\". Rescan, or add the missing field.");
            double value = RequireScore(snr, source, member);
            if (type is not JsonStringNode { Value.Length: > 0 } typeName)
                throw InvalidEntry(source, member, type.Line, $"Expected \"type\" to be a non-empty string such as \"mlp.down_proj\", found {type.Describe()}.");
            scores.Add(new ModuleScore(member.Key, typeName.Value, value));
        }
        return scores;
    }

    private static List<ModuleScore> ReadSorted(JsonObjectNode root, string source, JsonMember first)
    {
        string layoutNote = $"the sorted layout (detected from the first entry, line {first.Line})";
        var typeLines = new Dictionary<string, int>(StringComparer.Ordinal);
        var moduleLines = new Dictionary<string, int>(StringComparer.Ordinal);
        var scores = new List<ModuleScore>();
        foreach (var typeMember in root.Members)
        {
            if (typeMember.Key.Length == 0)
                throw InvalidEntry(source, typeMember, "Expected a type name such as \"mlp.down_proj\", found an empty key.");
            if (!typeLines.TryAdd(typeMember.Key, typeMember.Line))
                throw new ScanResultsException(ScanResultsErrorKind.DuplicateModule, source, typeMember.Line, typeMember.Key,
                    $"Expected each type once, found it again (first at line {typeLines[typeMember.Key]}). Merge or remove one of them.");
            if (typeMember.Value is not JsonObjectNode modules)
                throw InvalidEntry(source, typeMember, $"Expected {{\"<module>\": <number>, ...}} as in {layoutNote}, found {typeMember.Value.Describe()}.");
            foreach (var module in modules.Members)
            {
                RequireModuleName(module, source, moduleLines);
                double value = RequireScore(module.Value, source, module);
                scores.Add(new ModuleScore(module.Key, typeMember.Key, value));
            }
        }
        return scores;
    }

    private static void RequireModuleName(JsonMember member, string source, Dictionary<string, int> lines)
    {
        if (member.Key.Length == 0)
            throw InvalidEntry(source, member, "Expected a module name such as \"model.layers.0.mlp.down_proj\", found an empty key.");
        if (!lines.TryAdd(member.Key, member.Line))
            throw new ScanResultsException(ScanResultsErrorKind.DuplicateModule, source, member.Line, member.Key,
                $"Expected each module once, found it again (first at line {lines[member.Key]}); Python would silently keep the last. Remove one of them.");
    }

    private static double RequireScore(JsonNode node, string source, JsonMember owner) => node switch
    {
        JsonNumberNode number => number.Value,
        JsonLiteralNode { Text: "null" } => throw InvalidEntry(source, owner, node.Line,
            "Expected a score (a number, Infinity, -Infinity or NaN), found null. The reference writes NaN for modules it could not score; write NaN or rescan the module."),
        _ => throw InvalidEntry(source, owner, node.Line,
            $"Expected a score (a number, Infinity, -Infinity or NaN), found {node.Describe()}. Rescan, or correct the value."),
    };

    private static ScanResultsException InvalidEntry(string source, JsonMember member, string message) =>
        InvalidEntry(source, member, member.Line, message);

    private static ScanResultsException InvalidEntry(string source, JsonMember member, int line, string message) =>
        new(ScanResultsErrorKind.InvalidEntry, source, line, member.Key, message);

    private static void RejectDuplicates(IReadOnlyList<ModuleScore> scores)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var score in scores)
        {
            if (score?.Module is null || score.Type is null)
                throw new ArgumentException("A score is null or has no module or type name; every entry needs both.", nameof(scores));
            if (!seen.Add(score.Module))
                throw new ArgumentException($"Module \"{score.Module}\" appears twice; a scan result holds one score per module. Remove the duplicate.", nameof(scores));
        }
    }
}
