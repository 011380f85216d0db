// The reference's JSON layouts: Python-identical text, bit-exact round trips, strict errors with lines, atomic writes.
using Spectrum.Checkpoints;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Spectrum.Selection.Tests.Support;

namespace Spectrum.Selection.Tests;

public class ScanResultsJsonTests
{
    [Theory]
    [InlineData("meta-llama/Meta-Llama-3-8B", "meta-llama-Meta-Llama-3-8B")]
    [InlineData("HuggingFaceTB/SmolLM_135M", "HuggingFaceTB-SmolLM-135M")]
    [InlineData("local_model", "local-model")]
    public void ModelSlug_replaces_slashes_and_underscores_with_dashes(string modelId, string slug)
    {
        Assert.Equal(slug, ScanResultsJson.ModelSlug(modelId));
        Assert.Equal($"snr_results_{slug}.json", ScanResultsJson.FlatFileName(modelId));
        Assert.Equal($"snr_results_{slug}_sorted.json", ScanResultsJson.SortedFileName(modelId));
    }

    // Expected strings are Python 3's repr(float), i.e. what json.dump writes.
    [Theory]
    [InlineData(13.589866638183594, "13.589866638183594")]
    [InlineData(1.0, "1.0")]
    [InlineData(0.1, "0.1")]
    [InlineData(-0.0, "-0.0")]
    [InlineData(0.0, "0.0")]
    [InlineData(1e-05, "1e-05")]
    [InlineData(0.0001, "0.0001")]
    [InlineData(1e16, "1e+16")]
    [InlineData(1e15, "1000000000000000.0")]
    [InlineData(1.5e16, "1.5e+16")]
    [InlineData(123456789.125, "123456789.125")]
    [InlineData(5e-324, "5e-324")]
    [InlineData(1.7976931348623157e308, "1.7976931348623157e+308")]
    [InlineData(-2.5e-7, "-2.5e-07")]
    [InlineData(double.PositiveInfinity, "Infinity")]
    [InlineData(double.NegativeInfinity, "-Infinity")]
    [InlineData(double.NaN, "NaN")]
    public void Numbers_are_written_as_python_repr(double value, string python) =>
        Assert.Equal(python, PythonJsonWriter.FormatNumber(value));

    [Fact]
    public void FormatFlat_is_byte_identical_to_python_json_dump_with_indent_4()
    {
        // Output of: print(json.dumps({...}, indent=4)) in Python 3.11, pasted verbatim.
        const string python = """
            {
                "a": {
                    "snr": Infinity,
                    "type": "t"
                },
                "b": {
                    "snr": -Infinity,
                    "type": "t"
                },
                "c": {
                    "snr": NaN,
                    "type": "t"
                },
                "d": {
                    "snr": 1e-05,
                    "type": "t\u00e9\"\\\n"
                },
                "e": {
                    "snr": 1e+16,
                    "type": "t"
                }
            }
            """;
        var scores = new[]
        {
            new ModuleScore("a", "t", double.PositiveInfinity), new ModuleScore("b", "t", double.NegativeInfinity),
            new ModuleScore("c", "t", double.NaN), new ModuleScore("d", "t\u00e9\"\\\n", 1e-05), new ModuleScore("e", "t", 1e16),
        };

        Assert.Equal(python, ScanResultsJson.FormatFlat(scores));
        Assert.Equal("{}", ScanResultsJson.FormatFlat([]));
    }

    [Fact]
    public void FormatSorted_writes_each_type_best_first()
    {
        var selection = TopPercentSelection.Select(
            [new ModuleScore("m.0.a", "a", 1), new ModuleScore("m.1.a", "a", double.PositiveInfinity), new ModuleScore("m.0.b", "b", 0.5)], 50);

        Assert.Equal("""
            {
                "a": {
                    "m.1.a": Infinity,
                    "m.0.a": 1.0
                },
                "b": {
                    "m.0.b": 0.5
                }
            }
            """, ScanResultsJson.FormatSorted(selection));
    }

    private static Gen<double> AnyDouble() =>
        Gen.OneOf(
            Gen.Elements(double.NaN, double.PositiveInfinity, double.NegativeInfinity, -0.0, 0.0, double.Epsilon, double.MaxValue, 1e16, 1e-5),
            Gen.Choose(int.MinValue, int.MaxValue).SelectMany(high => Gen.Choose(int.MinValue, int.MaxValue),
                (high, low) => BitConverter.Int64BitsToDouble(((long)high << 32) | (uint)low)));

    // Characters that stress escaping: quotes, backslashes, control characters, non-ASCII, a surrogate pair.
    private static Gen<string> AwkwardName() =>
        Gen.Elements("a", "b", ".", "0", "7", "_", "\"", "\\", "\n", "\t", "\u0001", "\u007f", "é", "\u2028", "😀", " ", "/", "Infinity")
            .ArrayOf().Where(parts => parts.Length > 0).Select(parts => string.Concat(parts));

    [Property(MaxTest = 150)]
    public Property WriteFlat_then_Read_gives_every_score_back_bit_for_bit() =>
        Prop.ForAll(
            (from module in AwkwardName() from type in AwkwardName() from score in AnyDouble() select new ModuleScore(module, type, score))
                .ArrayOf().ToArbitrary(),
            entries =>
            {
                var scores = entries.DistinctBy(s => s.Module).ToList();
                using var folder = new TempFolder();
                string path = folder.File("scan.json");

                ScanResultsJson.WriteFlat(path, scores);
                var read = ScanResultsJson.Read(path, groupExperts: false);

                Assert.Equal(scores.Select(s => (s.Module, s.Type)), read.Select(s => (s.Module, s.Type)));
                for (int i = 0; i < scores.Count; i++)
                {
                    if (double.IsNaN(scores[i].Score))
                        Assert.True(double.IsNaN(read[i].Score), $"{scores[i].Module}: NaN came back as {read[i].Score}");
                    else
                        Assert.Equal(BitConverter.DoubleToInt64Bits(scores[i].Score), BitConverter.DoubleToInt64Bits(read[i].Score));
                }
                Assert.Equal(["scan.json"], folder.FileNames());
            });

    [Fact]
    public void WriteSorted_then_Read_gives_the_ranked_scores_with_their_types()
    {
        using var folder = new TempFolder();
        var scores = new[]
        {
            new ModuleScore("model.layers.0.mlp.up_proj", "mlp.up_proj", 0.5),
            new ModuleScore("model.layers.1.mlp.up_proj", "mlp.up_proj", double.NaN),
            new ModuleScore("model.layers.2.mlp.up_proj", "mlp.up_proj", 2),
            new ModuleScore("model.layers.0.input_layernorm", "input_layernorm", double.PositiveInfinity),
        };

        ScanResultsJson.WriteSorted(folder.File("sorted.json"), scores);
        var read = ScanResultsJson.Read(folder.File("sorted.json"));

        Assert.Equal(
            ["model.layers.2.mlp.up_proj", "model.layers.0.mlp.up_proj", "model.layers.1.mlp.up_proj", "model.layers.0.input_layernorm"],
            read.Select(s => s.Module));
        Assert.Equal(["mlp.up_proj", "mlp.up_proj", "mlp.up_proj", "input_layernorm"], read.Select(s => s.Type));
        Assert.True(double.IsNaN(read[2].Score));
    }

    [Fact]
    public void Read_regroups_experts_only_when_asked_and_otherwise_keeps_the_file_types()
    {
        const string json = """
            {
                "model.layers.0.block_sparse_moe.experts.3.w1": {"snr": 1.5, "type": "block_sparse_moe.experts.3.w1"},
                "model.layers.0.self_attn.q_proj": {"snr": 0.5, "type": "q_proj_as_written"}
            }
            """;

        var grouped = ScanResultsJson.Parse(json, "moe.json");
        var perExpert = ScanResultsJson.Parse(json, "moe.json", groupExperts: false);

        Assert.Equal(["block_sparse_moe.experts.*.w1", "q_proj_as_written"], grouped.Select(s => s.Type));
        Assert.Equal(["block_sparse_moe.experts.3.w1", "q_proj_as_written"], perExpert.Select(s => s.Type));
    }

    [Theory]
    [InlineData("", ScanResultsErrorKind.MalformedJson, 1, null, "empty file")]
    [InlineData("{\n  \"a\": {\"snr\": 1, \"type\": \"t\"},\n}", ScanResultsErrorKind.MalformedJson, 3, null, "expected a quoted key")]
    [InlineData("{\"a\": {\"snr\": infinity, \"type\": \"t\"}}", ScanResultsErrorKind.MalformedJson, 1, null, "Infinity, -Infinity or NaN")]
    [InlineData("{\"a\": {\"snr\": 1, \"type\": \"t\"}} x", ScanResultsErrorKind.MalformedJson, 1, null, "end of the file")]
    [InlineData("{\"a\": {\"snr\": 01, \"type\": \"t\"}}", ScanResultsErrorKind.MalformedJson, 1, null, "expected ',' or '}'")]
    [InlineData("[1, 2]", ScanResultsErrorKind.UnrecognizedLayout, 1, null, "found an array")]
    [InlineData("{\"a\": 3}", ScanResultsErrorKind.UnrecognizedLayout, 1, "a", "found the number 3")]
    [InlineData("{\n\"a\": {\"snr\": 1, \"type\": \"t\"},\n\"b\": {\"type\": \"t\"}\n}", ScanResultsErrorKind.InvalidEntry, 3, "b", "found no \"snr\"")]
    [InlineData("{\n\"a\": {\"snr\": 1, \"type\": \"t\"},\n\"b\": {\"snr\":\n \"high\", \"type\": \"t\"}\n}", ScanResultsErrorKind.InvalidEntry, 4, "b", "found the string \"high\"")]
    [InlineData("{\"a\": {\"snr\": null, \"type\": \"t\"}}", ScanResultsErrorKind.InvalidEntry, 1, "a", "write NaN or rescan")]
    [InlineData("{\"a\": {\"snr\": 1, \"type\": 5}}", ScanResultsErrorKind.InvalidEntry, 1, "a", "non-empty string")]
    [InlineData("{\"a\": {\"snr\": 1, \"type\": \"t\", \"rank\": 2}}", ScanResultsErrorKind.InvalidEntry, 1, "a", "found \"rank\"")]
    [InlineData("{\n\"a\": {\"snr\": 1, \"type\": \"t\"},\n\"a\": {\"snr\": 2, \"type\": \"t\"}\n}", ScanResultsErrorKind.DuplicateModule, 3, "a", "first at line 2")]
    [InlineData("{\n\"t\": {\"m.0.x\": 1},\n\"u\": {\"m.0.x\": 2}\n}", ScanResultsErrorKind.DuplicateModule, 3, "m.0.x", "first at line 2")]
    [InlineData("{\n\"t\": {\"m.0.x\": 1},\n\"u\": {\"m.1.x\": [2]}\n}", ScanResultsErrorKind.InvalidEntry, 3, "m.1.x", "found an array")]
    [InlineData("{\n\"t\": {\"m.0.x\": 1},\n\"u\": 7\n}", ScanResultsErrorKind.InvalidEntry, 3, "u", "sorted layout (detected from the first entry, line 2)")]
    public void Parse_reports_what_was_expected_what_was_found_and_where(
        string json, ScanResultsErrorKind kind, int line, string? key, string messagePart)
    {
        var e = Assert.Throws<ScanResultsException>(() => ScanResultsJson.Parse(json, "bad.json"));

        Assert.Equal((kind, line, key), (e.Kind, e.Line, e.Key));
        Assert.StartsWith($"bad.json:{line}: ", e.Message);
        Assert.Contains(messagePart, e.Message);
    }

    [Fact]
    public void Read_of_a_missing_file_says_so_and_names_the_path()
    {
        using var folder = new TempFolder();
        var e = Assert.Throws<ScanResultsException>(() => ScanResultsJson.Read(folder.File("nope.json")));
        Assert.Equal(ScanResultsErrorKind.FileNotFound, e.Kind);
        Assert.Contains("nope.json", e.Message);
        Assert.Equal(ScanResultsErrorKind.FileNotFound, Assert.Throws<ScanResultsException>(() => ScanResultsJson.Read(folder.Path)).Kind);
    }

    [Fact]
    public void Read_rejects_bytes_that_are_not_utf8()
    {
        using var folder = new TempFolder();
        File.WriteAllBytes(folder.File("binary.json"), [0x7B, 0xFF, 0xFE, 0x7D]);
        Assert.Equal(ScanResultsErrorKind.FileUnreadable, Assert.Throws<ScanResultsException>(() => ScanResultsJson.Read(folder.File("binary.json"))).Kind);
    }

    [Fact]
    public void Read_of_an_empty_object_is_an_empty_scan()
    {
        Assert.Empty(ScanResultsJson.Parse("{}", "empty.json"));
    }

    [Fact]
    public void A_failed_write_leaves_the_older_file_intact_and_no_temporary_file()
    {
        using var folder = new TempFolder();
        string path = folder.File("snr_results.json");
        var original = new[] { new ModuleScore("model.layers.0.mlp.up_proj", "mlp.up_proj", 1.25) };
        ScanResultsJson.WriteFlat(path, original);
        string before = File.ReadAllText(path);

        var e = Assert.Throws<IOException>(() => AtomicFile.WriteText(path, writer =>
        {
            writer.Write(new string('x', 100_000));
            throw new IOException("disk full (simulated)");
        }));

        Assert.Equal("disk full (simulated)", e.Message);
        Assert.Equal(before, File.ReadAllText(path));
        Assert.Equal(["snr_results.json"], folder.FileNames());
        Assert.Throws<ArgumentException>(() => ScanResultsJson.WriteFlat(path, [original[0], original[0]]));
        Assert.Equal(before, File.ReadAllText(path));
    }

    [Fact]
    public void A_write_replaces_an_older_file_whole()
    {
        using var folder = new TempFolder();
        string path = folder.File("snr_results.json");
        ScanResultsJson.WriteFlat(path, Enumerable.Range(0, 50).Select(i => new ModuleScore($"m.{i}.a", "a", i)).ToList());

        ScanResultsJson.WriteFlat(path, [new ModuleScore("m.0.a", "a", 2)]);

        Assert.Equal([new ModuleScore("m.0.a", "a", 2)], ScanResultsJson.Read(path));
        Assert.Equal(["snr_results.json"], folder.FileNames());
    }

    // Fuzzing in the safetensors-crate spirit: any mangled file must give scores or a typed error, nothing else.
    [Property(MaxTest = 400)]
    public Property Parse_of_mangled_text_gives_scores_or_a_ScanResultsException() =>
        Prop.ForAll(
            Gen.Zip(Gen.Choose(0, 10_000), Gen.Elements("", "{", "}", "[", "]", ",", ":", "\"", "\\", "-", "Infinity", "NaN", "1e", "\n", "null", "{\"snr\": 1}"))
                .ArrayOf().ToArbitrary(),
            edits =>
            {
                const string valid = "{\n    \"model.layers.0.mlp.up_proj\": {\n        \"snr\": -Infinity,\n        \"type\": \"mlp.up_proj\"\n    },\n" +
                                     "    \"m.0.x\": {\"snr\": 1.5e-07, \"type\": \"x\"}\n}";
                Assert.Equal(2, ScanResultsJson.Parse(valid, "valid.json").Count);
                var text = new System.Text.StringBuilder(valid);
                foreach (var (position, insert) in edits)
                {
                    int at = position % (text.Length + 1);
                    if (insert.Length == 0 && at < text.Length)
                        text.Remove(at, 1);
                    else
                        text.Insert(at, insert);
                }
                try
                {
                    ScanResultsJson.Parse(text.ToString(), "fuzz.json");
                }
                catch (ScanResultsException)
                {
                }
            });
}
