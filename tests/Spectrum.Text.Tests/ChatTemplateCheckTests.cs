// Warnings before training when a chat format does not fit the tokenizer or the model's own template.
using Spectrum.Text.Tests.TestSupport;

namespace Spectrum.Text.Tests;

public sealed class ChatTemplateCheckTests
{
    [Fact]
    public void AFormatWhoseMarkersAreTokensOfTheModelsOwnTemplateHasNoWarnings()
    {
        ModelTokenizer tokenizer = Fixtures.Tokenizer(Fixtures.ByteLevelBpe);   // ChatML tokens and a ChatML chat_template

        Assert.Empty(ChatTemplateCheck.Warnings(ChatTemplate.ChatMl, tokenizer));
    }

    [Fact]
    public void MarkersThatAreNotTokensAreNamedWithAFormatThatFits()
    {
        ModelTokenizer tokenizer = Fixtures.Tokenizer(Fixtures.ByteLevelBpe);

        var warnings = ChatTemplateCheck.Warnings(ChatTemplate.Llama3, tokenizer);

        Assert.Equal(2, warnings.Count);
        Assert.Contains("<|start_header_id|>, <|end_header_id|>, <|eot_id|> are not tokens", warnings[0]);
        Assert.Contains("--chat-template chatml", warnings[0]);
        Assert.Contains("own chat template (tokenizer_config.json) is in the chatml format", warnings[1]);
    }

    [Fact]
    public void AModelWithoutItsOwnTemplateGetsOnlyTheTokenWarning()
    {
        ModelTokenizer tokenizer = Fixtures.Tokenizer(Fixtures.ByteLevelBpe);
        string folder = Path.Combine(Path.GetTempPath(), $"spectrum-chat-check-{Guid.NewGuid():N}");
        try
        {
            Directory.CreateDirectory(folder);
            foreach (string file in Directory.EnumerateFiles(tokenizer.ModelFolder))
                File.Copy(file, Path.Combine(folder, Path.GetFileName(file)));
            string config = Path.Combine(folder, "tokenizer_config.json");
            var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(config))!.AsObject();
            json.Remove("chat_template");
            File.WriteAllText(config, json.ToJsonString());

            var warnings = ChatTemplateCheck.Warnings(ChatTemplate.Gemma, ModelTokenizer.Load(folder));

            var warning = Assert.Single(warnings);
            Assert.Contains("<start_of_turn>, <end_of_turn> are not tokens", warning);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
