// The model half of a tokenizer (BPE or SentencePiece) that ModelTokenizer runs on the text between added tokens.
namespace Spectrum.Text;

internal interface ITokenModel
{
    /// <summary>Appends the ids of ordinary text, which never contains an added token when ModelTokenizer calls this.</summary>
    void Encode(string text, List<int> ids);

    /// <summary>Text of a run of the model's own ids (no added-token ids).</summary>
    string Decode(IReadOnlyList<int> ids);

    bool TryGetId(string token, out int id);

    bool IsKnownId(int id);

    /// <summary>The largest id the model itself defines; added tokens may lie above it.</summary>
    int MaxId { get; }

    /// <summary>Problems that do not stop loading but may change ids (for the trainer to print).</summary>
    IReadOnlyList<string> Warnings { get; }
}
