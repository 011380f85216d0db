// GPT-2's reversible byte-to-character map, which byte-level BPE vocabularies are written in (space is 'Ġ').
namespace Spectrum.Text;

/// <summary>
/// Needed only to look a whole pre-token up in the vocabulary (ignore_merges); the BPE itself runs in
/// Microsoft.ML.Tokenizers, which applies the same map internally.
/// </summary>
internal static class ByteLevelAlphabet
{
    private static readonly char[] CharOfByte = BuildMap();

    public static char Map(byte value) => CharOfByte[value];

    public static string Map(string text)
    {
        byte[] bytes = System.Text.Encoding.UTF8.GetBytes(text);
        var chars = new char[bytes.Length];
        for (int i = 0; i < bytes.Length; i++)
        {
            chars[i] = CharOfByte[bytes[i]];
        }
        return new string(chars);
    }

    private static char[] BuildMap()
    {
        // Printable Latin-1 bytes stand for themselves; the rest (controls, space, soft hyphen...) move to 256 and up,
        // in byte order, so every byte has a visible, distinct character.
        static bool StandsForItself(int b) => b is >= '!' and <= '~' or >= '¡' and <= '¬' or >= '®' and <= 'ÿ';
        var map = new char[256];
        int shifted = 0;
        for (int b = 0; b < 256; b++)
        {
            map[b] = StandsForItself(b) ? (char)b : (char)(256 + shifted++);
        }
        return map;
    }
}
