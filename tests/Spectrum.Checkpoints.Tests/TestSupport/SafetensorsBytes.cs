// Builds safetensors files byte by byte, independently of the library's writer, for the bad-input tests.
using System.Buffers.Binary;
using System.Text;

namespace Spectrum.Checkpoints.Tests.TestSupport;

internal static class SafetensorsBytes
{
    /// <summary>8-byte little-endian length of the header as given, the header bytes, then the data.</summary>
    public static byte[] Build(string headerJson, byte[] data) => Build(Encoding.UTF8.GetBytes(headerJson), data);

    public static byte[] Build(string headerJson, int dataLength) => Build(headerJson, new byte[dataLength]);

    public static byte[] Build(byte[] header, byte[] data) =>
        WithDeclaredHeaderLength((ulong)header.Length, [.. header, .. data]);

    /// <summary>An arbitrary (possibly lying) header length prefix followed by <paramref name="rest"/>.</summary>
    public static byte[] WithDeclaredHeaderLength(ulong declaredLength, byte[] rest)
    {
        var bytes = new byte[8 + rest.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, declaredLength);
        rest.CopyTo(bytes, 8);
        return bytes;
    }

    public static byte[] Float32(params float[] values)
    {
        var bytes = new byte[values.Length * 4];
        for (int i = 0; i < values.Length; i++)
        {
            BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), values[i]);
        }
        return bytes;
    }

    public static byte[] UInt16(params ushort[] values)
    {
        var bytes = new byte[values.Length * 2];
        for (int i = 0; i < values.Length; i++)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(i * 2), values[i]);
        }
        return bytes;
    }
}
