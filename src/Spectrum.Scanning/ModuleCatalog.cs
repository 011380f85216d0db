// Finds the weight matrices of a checkpoint that a scan can score, grouped by module type.
using Spectrum.Checkpoints;
using Spectrum.Selection;

namespace Spectrum.Scanning;

/// <summary>One tensor the scan will score. Rows/Cols are the matrix as scored (1-D tensors become 1×d).</summary>
public sealed record ScanCandidate(string Module, string Type, TensorEntry Tensor, long Rows, long Cols)
{
    /// <summary>Multiply-adds of the Gram product plus the eigen solve: what the scan's time is proportional to.</summary>
    public double EstimatedWork
    {
        get
        {
            double small = Math.Min(Rows, Cols), large = Math.Max(Rows, Cols);
            return small * small * large + 4.0 / 3.0 * small * small * small;
        }
    }
}

/// <summary>The scannable modules of a checkpoint and their types, in checkpoint order.</summary>
public sealed class ModuleCatalog
{
    private ModuleCatalog(IReadOnlyList<ScanCandidate> all, IReadOnlyList<string> defaultTypes)
    {
        All = all;
        DefaultTypes = defaultTypes;
        Types = all.Select(c => c.Type).Distinct().ToList();
    }

    /// <summary>Every floating-point weight that could be scored (rank 2, plus rank 1 when vectors are included).</summary>
    public IReadOnlyList<ScanCandidate> All { get; }

    /// <summary>Every type found, in first-seen order.</summary>
    public IReadOnlyList<string> Types { get; }

    /// <summary>Rank-2 weight types inside numbered layers: the attention and MLP projections.</summary>
    public IReadOnlyList<string> DefaultTypes { get; }

    public static ModuleCatalog Discover(Checkpoint checkpoint, bool includeVectors, bool groupExperts)
    {
        var candidates = new List<ScanCandidate>();
        var defaultTypes = new List<string>();
        foreach (var tensor in checkpoint.Tensors)
        {
            if (!tensor.Name.EndsWith(".weight", StringComparison.Ordinal)) continue;
            if (!SafetensorsDTypes.IsFloatingPoint(tensor.DType)) continue;
            bool isMatrix = tensor.Rank == 2;
            bool isVector = tensor.Rank == 1;
            if (!isMatrix && !(isVector && includeVectors)) continue;
            if (tensor.ElementCount == 0) continue;

            string module = ModuleTypes.ModuleNameOf(tensor.Name);
            string type = ModuleTypes.TypeOf(module, groupExperts);
            long rows = isMatrix ? tensor.Shape[0] : 1;
            long cols = isMatrix ? tensor.Shape[1] : tensor.Shape[0];
            candidates.Add(new ScanCandidate(module, type, tensor, rows, cols));
            if (isMatrix && ModuleTypes.IsInsideNumberedLayer(module) && !defaultTypes.Contains(type))
                defaultTypes.Add(type);
        }
        return new ModuleCatalog(candidates, defaultTypes);
    }

    /// <summary>The candidates of the requested types (null: the default types), failing on a type the checkpoint lacks.</summary>
    public IReadOnlyList<ScanCandidate> Choose(IReadOnlyList<string>? requestedTypes)
    {
        var types = requestedTypes ?? DefaultTypes;
        var unknown = types.Where(t => !Types.Contains(t)).ToList();
        if (unknown.Count > 0)
            throw new ScanException(
                $"Unknown module type{(unknown.Count > 1 ? "s" : "")} {string.Join(", ", unknown.Select(t => $"'{t}'"))}: " +
                $"this checkpoint has {string.Join(", ", Types)}. Pass types exactly as listed (comma-separated).");
        if (types.Count == 0)
            throw new ScanException(
                "No module types to scan: the checkpoint has no rank-2 weights inside numbered layers " +
                $"(types found: {(Types.Count == 0 ? "none" : string.Join(", ", Types))}). Name types with --types.");
        var wanted = new HashSet<string>(types, StringComparer.Ordinal);
        return All.Where(c => wanted.Contains(c.Type)).ToList();
    }
}
