// The error for a checkpoint that does not fit a model: every missing, unexpected, mis-shaped and wrongly typed tensor at once.
using Spectrum.Checkpoints;

namespace Spectrum.Modeling;

/// <summary>One tensor that stops a load; which fields are set depends on the list it is in.</summary>
/// <param name="ExpectedShape">The model's shape (null for unexpected tensors).</param>
/// <param name="FoundShape">The checkpoint's shape (null for missing tensors).</param>
/// <param name="FoundDType">The checkpoint's dtype (null for missing tensors).</param>
/// <param name="FilePath">The safetensors file holding it (the checkpoint folder for missing tensors).</param>
/// <param name="Detail">Extra explanation, e.g. why a tied head does not match.</param>
public sealed record TensorLoadProblem(
    string Name,
    IReadOnlyList<long>? ExpectedShape,
    IReadOnlyList<long>? FoundShape,
    SafetensorsDType? FoundDType,
    string FilePath,
    string? Detail = null);

/// <summary>
/// Thrown before any weight is copied, so a failed load leaves the model untouched. The message lists every problem
/// (tensor, expected vs found, file) and what to do; the lists let code react to each kind.
/// </summary>
public sealed class ModelLoadException : Exception
{
    private const int ListedPerKind = 12;

    public ModelLoadException(string checkpointPath, IReadOnlyList<TensorLoadProblem> missing,
        IReadOnlyList<TensorLoadProblem> unexpected, IReadOnlyList<TensorLoadProblem> misshaped,
        IReadOnlyList<TensorLoadProblem> wrongDType, IReadOnlyList<TensorLoadProblem> conflicting)
        : base(Describe(checkpointPath, missing, unexpected, misshaped, wrongDType, conflicting))
    {
        CheckpointPath = checkpointPath;
        Missing = missing;
        Unexpected = unexpected;
        Misshaped = misshaped;
        WrongDType = wrongDType;
        Conflicting = conflicting;
    }

    public string CheckpointPath { get; }

    /// <summary>Tensors the model needs that the checkpoint lacks.</summary>
    public IReadOnlyList<TensorLoadProblem> Missing { get; }

    /// <summary>Tensors the checkpoint holds that the model has no place for.</summary>
    public IReadOnlyList<TensorLoadProblem> Unexpected { get; }

    /// <summary>Tensors present in both, with different shapes.</summary>
    public IReadOnlyList<TensorLoadProblem> Misshaped { get; }

    /// <summary>Tensors stored in a dtype other than BF16, F16 or F32.</summary>
    public IReadOnlyList<TensorLoadProblem> WrongDType { get; }

    /// <summary>Tensors that contradict the config, e.g. an lm_head.weight differing from the tied embedding.</summary>
    public IReadOnlyList<TensorLoadProblem> Conflicting { get; }

    private static string Describe(string checkpointPath, IReadOnlyList<TensorLoadProblem> missing,
        IReadOnlyList<TensorLoadProblem> unexpected, IReadOnlyList<TensorLoadProblem> misshaped,
        IReadOnlyList<TensorLoadProblem> wrongDType, IReadOnlyList<TensorLoadProblem> conflicting)
    {
        var text = new System.Text.StringBuilder();
        text.Append($"{checkpointPath}: the checkpoint does not fit the model; nothing was loaded.");
        void Section(IReadOnlyList<TensorLoadProblem> problems, string title, Func<TensorLoadProblem, string> line)
        {
            if (problems.Count == 0)
            {
                return;
            }
            text.Append($"\n{problems.Count} {title}:");
            foreach (var problem in problems.Take(ListedPerKind))
            {
                text.Append("\n  ").Append(line(problem));
            }
            if (problems.Count > ListedPerKind)
            {
                text.Append($"\n  … and {problems.Count - ListedPerKind} more");
            }
        }
        Section(missing, "missing tensor(s) (the model needs them, the checkpoint lacks them)",
            p => $"{p.Name}: expected shape {Shape(p.ExpectedShape)}");
        Section(unexpected, "unexpected tensor(s) (the checkpoint holds them, the model has no place for them)",
            p => $"{p.Name} {Shape(p.FoundShape)} in {p.FilePath}");
        Section(misshaped, "mis-shaped tensor(s)",
            p => $"{p.Name}: expected {Shape(p.ExpectedShape)}, found {Shape(p.FoundShape)} in {p.FilePath}");
        Section(wrongDType, "tensor(s) in an unsupported dtype (expected BF16, F16 or F32)",
            p => $"{p.Name}: {(p.FoundDType is { } dtype ? SafetensorsDTypes.HeaderName(dtype) : "?")} in {p.FilePath}");
        Section(conflicting, "conflicting tensor(s)", p => $"{p.Name} in {p.FilePath}: {p.Detail}");
        var advice = new List<string>();
        if (missing.Count + unexpected.Count + misshaped.Count > 0)
        {
            advice.Add("Make sure config.json belongs to these weights and the model type is what you meant (missing " +
                "and unexpected names usually mean another architecture or a partial download; mis-shaped ones a " +
                "config with other dimensions).");
        }
        if (wrongDType.Count > 0)
        {
            advice.Add("Convert quantised or integer weights to BF16/F16/F32 first.");
        }
        if (conflicting.Count > 0)
        {
            advice.Add("Fix tie_word_embeddings in config.json to match the weights.");
        }
        text.Append("\nWhat to do: ").Append(string.Join(" ", advice));
        return text.ToString();
    }

    private static string Shape(IReadOnlyList<long>? shape) => shape is null ? "?" : TensorEntry.FormatShape(shape);
}
