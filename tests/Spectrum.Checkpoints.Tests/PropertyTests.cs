// Property tests: write→open round-trips exactly, and random or mutated bytes only ever give typed errors (item 15).
using System.Buffers.Binary;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Spectrum.Checkpoints.Tests.TestSupport;

namespace Spectrum.Checkpoints.Tests;

public sealed class PropertyTests : IDisposable
{
    private readonly TempFolder _folder = new();
    private int _caseNumber;

    public void Dispose() => _folder.Dispose();

    public sealed record GeneratedTensor(string Name, SafetensorsDType DType, long[] Shape, byte[] Data);

    // Quotes, backslashes, control characters, non-ASCII and a surrogate pair all have to survive JSON escaping.
    private static readonly char[] NameAlphabet = "abz09._-/\"\\ \t\u00e9\u5c42".ToCharArray();

    private static Gen<string> NameGen =>
        Gen.OneOf(
                Gen.Elements(NameAlphabet).Select(c => c.ToString()),
                Gen.Constant("\U0001F600"))
            .ListOf()
            .Where(parts => parts.Count is > 0 and < 12)
            .Select(parts => string.Concat(parts))
            .Where(name => name != "__metadata__");

    private static Gen<GeneratedTensor> TensorGen(string name) =>
        from dtype in Gen.Elements(Enum.GetValues<SafetensorsDType>())
        from rank in Gen.Choose(0, 3)
        from dimensions in Gen.Choose(0, 5).ArrayOf(rank)
        let shape = dimensions.Select(dimension => (long)dimension).ToArray()
        // Sub-byte dtypes need whole bytes; fall back to a shape that provides them.
        let usableShape = SafetensorsDTypes.TryByteLength(dtype, shape.Aggregate(1L, (a, b) => a * b)) is null
            ? new long[] { 4 }
            : shape
        let byteLength = (int)SafetensorsDTypes.TryByteLength(dtype, usableShape.Aggregate(1L, (a, b) => a * b))!.Value
        from data in Gen.Choose(0, 255).Select(value => (byte)value).ArrayOf(byteLength)
        select new GeneratedTensor(name, dtype, usableShape, data);

    private static Arbitrary<(List<GeneratedTensor> Tensors, Dictionary<string, string> Metadata)> CheckpointArb =>
        (from names in NameGen.ListOf().Select(list => list.Distinct(StringComparer.Ordinal).Take(6).ToList())
         from tensors in Gen.CollectToList(names, TensorGen)
         from metadata in Gen.Zip(NameGen, NameGen).ListOf()
         select (tensors.ToList(), metadata.DistinctBy(pair => pair.Item1).ToDictionary(pair => pair.Item1, pair => pair.Item2)))
        .ToArbitrary();

    private string NextPath() => _folder.File($"case-{Interlocked.Increment(ref _caseNumber)}.safetensors");

    [Property(MaxTest = 150)]
    public Property WrittenFilesReadBackWithIdenticalEntriesAndBytes() =>
        Prop.ForAll(CheckpointArb, generated =>
        {
            string path = NextPath();
            SafetensorsWriter.Write(path,
                generated.Tensors.Select(t => TensorToWrite.FromBytes(t.Name, t.DType, t.Shape, t.Data)).ToList(),
                generated.Metadata);

            using (var file = SafetensorsFile.Open(path))
            {
                Assert.Equal(generated.Tensors.Count, file.Tensors.Count);
                Assert.Equal(generated.Metadata, file.Metadata);
                long offset = 0;
                foreach (var tensor in generated.Tensors)
                {
                    var expected = new TensorEntry(tensor.Name, tensor.DType, tensor.Shape, offset, offset + tensor.Data.Length,
                        path);
                    Assert.Equal(expected, file.GetEntry(tensor.Name));
                    using var bytes = file.ReadBytes(tensor.Name);
                    Assert.Equal(tensor.Data, bytes.Span.ToArray());
                    offset += tensor.Data.Length;
                }
            }
            File.Delete(path);
        });

    [Property(MaxTest = 300)]
    public Property RandomBytesGiveSuccessOrATypedError() =>
        Prop.ForAll(Gen.Choose(0, 255).Select(value => (byte)value).ArrayOf().ToArbitrary(), bytes =>
            OpenAndReadEverything(bytes));

    [Property(MaxTest = 300)]
    public Property RandomHeaderTextGivesSuccessOrATypedError() =>
        Prop.ForAll(Gen.Elements("{}[]\":,0123456789-.e \"dtype\" \"shape\" \"data_offsets\" \"F32\" \"__metadata__\" null true".Split(' '))
                .ListOf().Select(parts => string.Join("", parts)).ToArbitrary(),
            header => OpenAndReadEverything(SafetensorsBytes.Build(header, header.Length % 9)));

    private static readonly byte[] ValidFile = BuildValidFile();

    private static byte[] BuildValidFile()
    {
        using var folder = new TempFolder();
        string path = folder.File("valid.safetensors");
        SafetensorsWriter.Write(path, [
            TensorToWrite.FromFloat32("model.embed_tokens.weight", SafetensorsDType.BF16, [3, 4], new float[12]),
            TensorToWrite.FromFloat32("scalar", SafetensorsDType.F32, [], [1.5f]),
            TensorToWrite.FromBytes("empty", SafetensorsDType.F16, [0, 7], Array.Empty<byte>()),
            TensorToWrite.FromBytes("nibbles", SafetensorsDType.F4, [2, 2], new byte[] { 0x12, 0x34 }),
            TensorToWrite.FromFloat32("norm", SafetensorsDType.F16, [5], [1f, 2f, 3f, 4f, 5f]),
        ], new Dictionary<string, string> { ["format"] = "pt" });
        return File.ReadAllBytes(path);
    }

    public enum MutationKind { FlipByte, Truncate, Insert, ReplaceDigit, RewriteLengthPrefix }

    public sealed record Mutation(MutationKind Kind, int Position, int Value);

    private static Arbitrary<Mutation[]> MutationsArb =>
        (from kind in Gen.Elements(Enum.GetValues<MutationKind>())
         from position in Gen.Choose(0, ValidFile.Length - 1)
         from value in Gen.Choose(0, 255)
         select new Mutation(kind, position, value))
        .ArrayOf().Where(mutations => mutations.Length is > 0 and <= 4).ToArbitrary();

    [Property(MaxTest = 400)]
    public Property MutatedValidFilesGiveSuccessOrATypedError() =>
        Prop.ForAll(MutationsArb, mutations =>
        {
            var bytes = ValidFile.ToList();
            foreach (var mutation in mutations)
            {
                int position = Math.Min(mutation.Position, Math.Max(bytes.Count - 1, 0));
                switch (mutation.Kind)
                {
                    case MutationKind.FlipByte when bytes.Count > 0:
                        bytes[position] ^= (byte)(1 << (mutation.Value % 8));
                        break;
                    case MutationKind.Truncate:
                        bytes.RemoveRange(position, bytes.Count - position);
                        break;
                    case MutationKind.Insert:
                        bytes.Insert(position, (byte)mutation.Value);
                        break;
                    case MutationKind.ReplaceDigit:
                        // Digits in the header are shapes and offsets: the fields the layout rules guard.
                        int digit = bytes.FindIndex(position, b => b is >= (byte)'0' and <= (byte)'9');
                        if (digit >= 0)
                        {
                            bytes[digit] = (byte)('0' + mutation.Value % 10);
                        }
                        break;
                    case MutationKind.RewriteLengthPrefix when bytes.Count >= 8:
                        var prefix = new byte[8];
                        BinaryPrimitives.WriteUInt64LittleEndian(prefix,
                            BinaryPrimitives.ReadUInt64LittleEndian(bytes.Take(8).ToArray()) + (ulong)(mutation.Value - 128));
                        for (int i = 0; i < 8; i++)
                        {
                            bytes[i] = prefix[i];
                        }
                        break;
                }
            }
            OpenAndReadEverything(bytes.ToArray());
        });

    [Fact]
    public void TheUnmutatedFuzzSeedIsValid()
    {
        OpenAndReadEverything(ValidFile);
        string path = NextPath();
        File.WriteAllBytes(path, ValidFile);
        using var file = SafetensorsFile.Open(path);
        Assert.Equal(5, file.Tensors.Count);
    }

    /// <summary>Opening and reading every tensor may fail only with <see cref="CheckpointException"/>.</summary>
    private void OpenAndReadEverything(byte[] bytes)
    {
        string path = NextPath();
        File.WriteAllBytes(path, bytes);
        try
        {
            using var file = SafetensorsFile.Open(path);
            foreach (var tensor in file.Tensors)
            {
                using var tensorBytes = file.ReadBytes(tensor.Name);
                Assert.Equal(tensor.ByteLength, tensorBytes.Span.Length);
                if (SafetensorsDTypes.CanDecodeToFloat(tensor.DType))
                {
                    Assert.Equal(tensor.ElementCount, file.ReadFloat32(tensor.Name).Length);
                }
            }
        }
        catch (CheckpointException error)
        {
            Assert.Equal(path, error.FilePath);
            Assert.Contains(path, error.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
