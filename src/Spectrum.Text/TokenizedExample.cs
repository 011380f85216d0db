// A record as token ids plus the loss mask that says which ids are training targets.
namespace Spectrum.Text;

/// <summary>
/// <see cref="LossMask"/>[i] is true when InputIds[i] is a target the model should learn to predict (from the ids
/// before it). Both arrays have the same, non-zero length; every example built by <see cref="ExampleTokenizer"/> ends
/// with EOS, which is what separates examples once packed.
/// </summary>
public sealed record TokenizedExample
{
    public TokenizedExample(int[] inputIds, bool[] lossMask)
    {
        if (inputIds.Length != lossMask.Length)
        {
            throw new ArgumentException($"InputIds has {inputIds.Length} ids but LossMask has {lossMask.Length} flags; they must match.");
        }
        if (inputIds.Length == 0)
        {
            throw new ArgumentException("A tokenized example needs at least one id.", nameof(inputIds));
        }
        InputIds = inputIds;
        LossMask = lossMask;
    }

    public int[] InputIds { get; }

    public bool[] LossMask { get; }

    public int Length => InputIds.Length;

    public int TrainedTokenCount => LossMask.Count(trained => trained);
}
