// Module names from tensor names, and the module "type" that Spectrum ranks within (the name below the layer number).
namespace Spectrum.Selection;

/// <summary>
/// Spectrum compares a module only with modules of the same type, e.g. every layer's <c>mlp.down_proj</c>.
/// A type is the dotted name after the first all-digit component, found by splitting on dots; the reference
/// instead tests <c>type in name</c> (substring), which puts BERT's <c>attention.output.dense</c> under
/// <c>output.dense</c>. Grouping here is by exact components only.
/// </summary>
public static class ModuleTypes
{
    /// <summary>The string that stands for every expert number when experts are grouped.</summary>
    public const string ExpertWildcard = "*";

    /// <summary><c>model.layers.0.mlp.down_proj.weight</c> → <c>model.layers.0.mlp.down_proj</c>; other names unchanged.</summary>
    public static string ModuleNameOf(string tensorName)
    {
        ArgumentNullException.ThrowIfNull(tensorName);
        foreach (string suffix in (ReadOnlySpan<string>)[".weight", ".bias"])
        {
            if (tensorName.Length > suffix.Length && tensorName.EndsWith(suffix, StringComparison.Ordinal))
                return tensorName[..^suffix.Length];
        }
        return tensorName;
    }

    /// <summary>
    /// <c>model.layers.12.mlp.down_proj</c> → <c>mlp.down_proj</c>. With <paramref name="groupExperts"/>, later
    /// all-digit components become <c>*</c>, so <c>model.layers.3.block_sparse_moe.experts.7.w1</c> →
    /// <c>block_sparse_moe.experts.*.w1</c> (every expert's w1 ranked together); without it the type is per expert,
    /// like the reference. A name with no all-digit component, or whose only one is its last component
    /// (<c>head.0</c>), is its own type: there is nothing below a layer number to compare across layers.
    /// </summary>
    public static string TypeOf(string moduleName, bool groupExperts = true)
    {
        ArgumentNullException.ThrowIfNull(moduleName);
        string[] parts = moduleName.Split('.');
        int layerIndex = FirstLayerNumberIndex(parts);
        if (layerIndex < 0)
            return moduleName;
        var below = parts[(layerIndex + 1)..];
        if (groupExperts)
        {
            for (int i = 0; i < below.Length; i++)
            {
                if (IsAllDigits(below[i]))
                    below[i] = ExpertWildcard;
            }
        }
        return string.Join('.', below);
    }

    /// <summary>True when the name has an all-digit component with something after it (<c>model.layers.3.mlp</c>).</summary>
    public static bool IsInsideNumberedLayer(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return FirstLayerNumberIndex(name.Split('.')) >= 0;
    }

    /// <summary>True when the type has a numbered component below the layer number, e.g. an expert index.</summary>
    internal static bool HasNumberBelowLayer(string moduleName) =>
        TypeOf(moduleName, groupExperts: true) != TypeOf(moduleName, groupExperts: false);

    private static int FirstLayerNumberIndex(string[] parts)
    {
        for (int i = 0; i < parts.Length - 1; i++)
        {
            if (IsAllDigits(parts[i]))
                return i;
        }
        return -1;
    }

    // ASCII digits only: Python's str.isdigit also accepts e.g. '²', which never occurs in checkpoint names.
    private static bool IsAllDigits(string part) => part.Length > 0 && part.All(char.IsAsciiDigit);
}
