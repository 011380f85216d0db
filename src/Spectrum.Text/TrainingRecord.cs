// One training record from a JSONL file, in the shape it was written: plain text, instruction, or conversation.
namespace Spectrum.Text;

public enum ChatRole
{
    System,
    User,
    Assistant,
}

public sealed record ChatMessage(ChatRole Role, string Content);

/// <summary>How a conversation record was written, kept so reports can say what a file contained.</summary>
public enum ConversationFormat
{
    /// <summary><c>{"messages": [{"role": "user", "content": …}]}</c> (OpenAI / Hugging Face chat).</summary>
    Messages,
    /// <summary><c>{"conversations": [{"from": "human", "value": …}]}</c> (ShareGPT).</summary>
    ShareGpt,
}

/// <summary>A record and where it came from, so later steps (tokenizing, packing) can point back at the line.</summary>
public abstract record TrainingRecord(string FilePath, int LineNumber);

/// <summary><c>{"text": …}</c>: continued pre-training; every token is trained.</summary>
public sealed record TextRecord(string Text, string FilePath, int LineNumber) : TrainingRecord(FilePath, LineNumber);

/// <summary><c>{"instruction", "input"?, "output"}</c> (Alpaca): a user turn and the assistant's answer.</summary>
public sealed record InstructionRecord(string Instruction, string? Input, string Output, string FilePath, int LineNumber)
    : TrainingRecord(FilePath, LineNumber);

/// <summary>A conversation with at least one assistant message.</summary>
public sealed record ConversationRecord(IReadOnlyList<ChatMessage> Messages, ConversationFormat Format, string FilePath,
    int LineNumber) : TrainingRecord(FilePath, LineNumber);
