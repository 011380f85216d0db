// Every JSONL record format TrainingRecords.Load accepts, and each malformed record with the line and field it names.
using Spectrum.Text.Tests.TestSupport;

namespace Spectrum.Text.Tests;

public sealed class TrainingRecordsTests : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    private string WriteLines(params string[] lines) => _folder.WriteText("data.jsonl", string.Join("\n", lines) + "\n");

    [Fact]
    public void PlainTextRecord()
    {
        string path = WriteLines("{\"text\": \"The cat sat.\"}");

        var record = Assert.IsType<TextRecord>(Assert.Single(TrainingRecords.Load(path)));

        Assert.Equal(new TextRecord("The cat sat.", path, 1), record);
    }

    [Fact]
    public void InstructionRecordWithAndWithoutInput()
    {
        string path = WriteLines(
            "{\"instruction\": \"Add.\", \"input\": \"2+2\", \"output\": \"4\"}",
            "{\"instruction\": \"Say hi.\", \"output\": \"hi\"}",
            "{\"instruction\": \"Say yo.\", \"input\": null, \"output\": \"yo\"}");

        IReadOnlyList<TrainingRecord> records = TrainingRecords.Load(path);

        Assert.Equal(new InstructionRecord("Add.", "2+2", "4", path, 1), records[0]);
        Assert.Equal(new InstructionRecord("Say hi.", null, "hi", path, 2), records[1]);
        Assert.Equal(new InstructionRecord("Say yo.", null, "yo", path, 3), records[2]);
    }

    [Fact]
    public void MessagesRecord()
    {
        string path = WriteLines(
            "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": \"Hi\"}, " +
            "{\"role\": \"assistant\", \"content\": \"Hello\"}], \"id\": 17}");

        var record = Assert.IsType<ConversationRecord>(Assert.Single(TrainingRecords.Load(path)));

        Assert.Equal(ConversationFormat.Messages, record.Format);
        Assert.Equal(
            [new ChatMessage(ChatRole.System, "Be brief."), new ChatMessage(ChatRole.User, "Hi"), new ChatMessage(ChatRole.Assistant, "Hello")],
            record.Messages);
    }

    [Fact]
    public void ShareGptRecordMapsHumanAndGptToUserAndAssistant()
    {
        string path = WriteLines(
            "{\"conversations\": [{\"from\": \"system\", \"value\": \"S\"}, {\"from\": \"human\", \"value\": \"Q\"}, " +
            "{\"from\": \"gpt\", \"value\": \"A\"}]}");

        var record = Assert.IsType<ConversationRecord>(Assert.Single(TrainingRecords.Load(path)));

        Assert.Equal(ConversationFormat.ShareGpt, record.Format);
        Assert.Equal(
            [new ChatMessage(ChatRole.System, "S"), new ChatMessage(ChatRole.User, "Q"), new ChatMessage(ChatRole.Assistant, "A")],
            record.Messages);
    }

    [Fact]
    public void FormatsMayBeMixedAndBlankLinesAreSkippedButCounted()
    {
        string path = WriteLines(
            "{\"text\": \"one\"}",
            "",
            "   ",
            "{\"instruction\": \"i\", \"output\": \"o\"}",
            "{\"messages\": [{\"role\": \"assistant\", \"content\": \"a\"}]}");

        IReadOnlyList<TrainingRecord> records = TrainingRecords.Load(path);

        Assert.Equal([1, 4, 5], records.Select(r => r.LineNumber));
        Assert.IsType<TextRecord>(records[0]);
        Assert.IsType<InstructionRecord>(records[1]);
        Assert.IsType<ConversationRecord>(records[2]);
    }

    [Fact]
    public void WindowsLineEndingsAndAByteOrderMarkAreAccepted()
    {
        string path = _folder.WriteBytes("data.jsonl", [0xEF, 0xBB, 0xBF, .. "{\"text\": \"a\"}\r\n{\"text\": \"b\"}\r\n"u8]);

        Assert.Equal(["a", "b"], TrainingRecords.Load(path).Cast<TextRecord>().Select(r => r.Text));
    }

    [Fact]
    public void BadJsonNamesTheLineAndCharacter()
    {
        string path = WriteLines("{\"text\": \"ok\"}", "{\"text\": \"unterminated}");

        var error = Rejection.Assert(() => TrainingRecords.Load(path), path, 2, null);

        Assert.Contains("invalid JSON at character", error.Message);
        Assert.Contains("Fix or remove that line", error.Message);
    }

    [Fact]
    public void LineThatIsNotAnObject()
    {
        string path = WriteLines("[\"text\", \"x\"]");

        var error = Rejection.Assert(() => TrainingRecords.Load(path), path, 1, null);

        Assert.Contains("found an array of 2 items", error.Message);
    }

    [Fact]
    public void RecordOfNoKnownFormatListsItsFields()
    {
        string path = WriteLines("{\"prompt\": \"p\", \"completion\": \"c\"}");

        var error = Rejection.Assert(() => TrainingRecords.Load(path), path, 1, null);

        Assert.Contains("only the fields prompt, completion", error.Message);
    }

    [Fact]
    public void RecordMatchingTwoFormatsIsAmbiguous()
    {
        string path = WriteLines("{\"text\": \"t\", \"messages\": []}");

        var error = Rejection.Assert(() => TrainingRecords.Load(path), path, 1, null);

        Assert.Contains("all of text, messages", error.Message);
    }

    [Fact]
    public void InstructionWithoutOutput()
    {
        string path = WriteLines("{\"text\": \"fine\"}", "{\"instruction\": \"Do it.\"}");

        var error = Rejection.Assert(() => TrainingRecords.Load(path), path, 2, "output");

        Assert.Contains("no such field", error.Message);
    }

    [Fact]
    public void InstructionInputThatIsNotAString()
    {
        string path = WriteLines("{\"instruction\": \"Add.\", \"input\": [2, 2], \"output\": \"4\"}");

        var error = Rejection.Assert(() => TrainingRecords.Load(path), path, 1, "input");

        Assert.Contains("a string or null", error.Message);
    }

    [Fact]
    public void ShareGptTurnWithoutValue()
    {
        string path = WriteLines("{\"conversations\": [{\"from\": \"human\", \"value\": \"q\"}, {\"from\": \"gpt\", \"text\": \"a\"}]}");

        Rejection.Assert(() => TrainingRecords.Load(path), path, 1, "conversations[1].value");
    }

    [Fact]
    public void TextThatIsNotAString()
    {
        string path = WriteLines("{\"text\": 42}");

        var error = Rejection.Assert(() => TrainingRecords.Load(path), path, 1, "text");

        Assert.Contains("found the number 42", error.Message);
    }

    [Fact]
    public void EmptyText()
    {
        string path = WriteLines("{\"text\": \"\"}");

        Rejection.Assert(() => TrainingRecords.Load(path), path, 1, "text");
    }

    [Fact]
    public void MessageWithoutContent()
    {
        string path = WriteLines("{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}, {\"role\": \"assistant\"}]}");

        Rejection.Assert(() => TrainingRecords.Load(path), path, 1, "messages[1].content");
    }

    [Fact]
    public void UnknownMessageRole()
    {
        string path = WriteLines(
            "{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}, {\"role\": \"tool\", \"content\": \"r\"}, {\"role\": \"assistant\", \"content\": \"a\"}]}");

        var error = Rejection.Assert(() => TrainingRecords.Load(path), path, 1, "messages[1].role");

        Assert.Contains("system, user or assistant", error.Message);
        Assert.Contains("\"tool\"", error.Message);
    }

    [Fact]
    public void UnknownShareGptSpeaker()
    {
        string path = WriteLines("{\"conversations\": [{\"from\": \"user\", \"value\": \"q\"}, {\"from\": \"gpt\", \"value\": \"a\"}]}");

        var error = Rejection.Assert(() => TrainingRecords.Load(path), path, 1, "conversations[0].from");

        Assert.Contains("human, gpt or system", error.Message);
    }

    [Fact]
    public void EmptyMessages()
    {
        string path = WriteLines("{\"messages\": []}");

        var error = Rejection.Assert(() => TrainingRecords.Load(path), path, 1, "messages");

        Assert.Contains("empty array", error.Message);
    }

    [Fact]
    public void MessagesThatAreNotAList()
    {
        string path = WriteLines("{\"messages\": {\"role\": \"user\"}}");

        Rejection.Assert(() => TrainingRecords.Load(path), path, 1, "messages");
    }

    [Fact]
    public void ConversationWithoutAnAssistantTurn()
    {
        string path = WriteLines("{\"messages\": [{\"role\": \"system\", \"content\": \"s\"}, {\"role\": \"user\", \"content\": \"q\"}]}");

        var error = Rejection.Assert(() => TrainingRecords.Load(path), path, 1, "messages");

        Assert.Contains("only system, user messages", error.Message);
    }

    [Fact]
    public void InvalidUtf8NamesTheLine()
    {
        string path = _folder.WriteBytes("data.jsonl", [.. "{\"text\": \"ok\"}\n{\"text\": \""u8, 0xC3, 0x28, .. "\"}\n"u8]);

        Rejection.Assert(() => TrainingRecords.Load(path), path, 2, null);
    }

    [Fact]
    public void FileWithOnlyBlankLines()
    {
        string path = WriteLines("", "  ");

        var error = Rejection.Assert(() => TrainingRecords.Load(path), path, null, null);

        Assert.Contains("only blank lines", error.Message);
    }

    [Fact]
    public void MissingFile()
    {
        string path = _folder.File("absent.jsonl");

        Rejection.Assert(() => TrainingRecords.Load(path), path, null, null);
    }
}
