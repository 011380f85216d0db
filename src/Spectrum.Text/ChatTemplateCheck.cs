// Warns before training when a chat format does not fit the model's tokenizer: markers that are not tokens, or a model whose own template is another format.
namespace Spectrum.Text;

public static class ChatTemplateCheck
{
    /// <summary>
    /// Warnings for training <paramref name="tokenizer"/>'s model on conversations rendered with <paramref name="template"/>,
    /// each a sentence that says what to do; empty when the format fits. A marker that is not one token still works,
    /// but as ordinary text pieces the model must learn from scratch; a model that ships its own chat template expects
    /// its own format at inference.
    /// </summary>
    public static IReadOnlyList<string> Warnings(ChatTemplate template, ModelTokenizer tokenizer)
    {
        ArgumentNullException.ThrowIfNull(template);
        ArgumentNullException.ThrowIfNull(tokenizer);
        var warnings = new List<string>();
        var missing = template.Markers.Where(marker => tokenizer.TokenToId(marker) is null).ToList();
        if (missing.Count > 0)
        {
            var fitting = ChatTemplate.BuiltIn.Where(t => t != template && t.Markers.All(m => tokenizer.TokenToId(m) is not null)).Select(t => t.Name).ToList();
            warnings.Add($"The {template.Name} chat template's {string.Join(", ", missing)} {(missing.Count == 1 ? "is not a token" : "are not tokens")} of this tokenizer, " +
                         "so they are encoded as ordinary text. " +
                         (fitting.Count > 0
                             ? $"--chat-template {string.Join(" or ", fitting)} uses special tokens this tokenizer has."
                             : "Add them to the tokenizer (and the embedding) first, or accept them as text."));
        }
        if (ChatTemplate.Recognise(tokenizer.ChatTemplateSource) is { } own && own != template)
            warnings.Add($"This model's own chat template (tokenizer_config.json) is in the {own.Name} format; pass --chat-template {own.Name} (or auto) " +
                         "to fine-tune in the format it is prompted with.");
        return warnings;
    }
}
