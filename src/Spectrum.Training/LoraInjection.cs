// Puts LoRA (or QLoRA) adapters in place of a model's target linear modules, through the model's own replace hook.
using Spectrum.Selection;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Spectrum.Training;

/// <param name="WrappedModules">Dotted names of the modules replaced, in the model's module order.</param>
public sealed record LoraInjectionReport(IReadOnlyList<string> WrappedModules);

public static class LoraInjection
{
    /// <summary>
    /// Replaces each target <see cref="Linear"/> of <paramref name="model"/> with a <see cref="LoraLinear"/>
    /// (or, with <paramref name="quantizeBase"/>, an <see cref="Nf4LoraLinear"/>; a target that is already an
    /// <see cref="Nf4Linear"/>, quantised while loading, is wrapped as it is) by calling
    /// <paramref name="replaceModule"/>(dotted name, adapter) — the model's <c>ReplaceModule</c>, since a TorchSharp
    /// module's forward reads its own fields and cannot be rewired from outside. Freezing is left to the caller:
    /// <c>ParameterFreezer.FreezeAllExcept(model, LoraLinear.IsAdapterParameter)</c> trains the adapters only.
    /// </summary>
    /// <param name="generator">Draws every adapter's lora_A in module order, for reproducible adapters.</param>
    /// <exception cref="TrainingConfigurationException">Invalid options, or targets that name no linear module.</exception>
    public static LoraInjectionReport Apply(nn.Module model, LoraOptions options, Action<string, nn.Module<Tensor, Tensor>> replaceModule,
        bool quantizeBase = false, bool doubleQuantize = false, Generator? generator = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(replaceModule);
        options.Validate();
        if (doubleQuantize && !quantizeBase)
            throw new TrainingConfigurationException(
                "doubleQuantize is set but quantizeBase is not: double quantisation compresses NF4 scales, which exist only with an NF4 base. Set both or neither.");

        // Depth-first, like PyTorch's named_modules (TorchSharp's lists breadth-first): the order adapters draw lora_A in.
        var linears = DepthFirstModules(model, "").Where(m => m.Module is Linear or Nf4Linear).ToList();
        var targets = linears.Where(m => IsTarget(m.Name, options.TargetModules)).ToList();
        if (targets.Count == 0)
            throw new TrainingConfigurationException(
                $"LoRA TargetModules [{string.Join(", ", options.TargetModules ?? ["<all linear except lm_head>"])}] match none of the model's " +
                $"{linears.Count} linear modules (e.g. {string.Join(", ", linears.Take(4).Select(l => l.Name))}). Name modules as the model does.");
        if (options.TargetModules is not null)
        {
            var unmatched = options.TargetModules.Where(t => !linears.Any(l => IsTarget(l.Name, [t]))).ToList();
            if (unmatched.Count > 0)
                throw new TrainingConfigurationException(
                    $"LoRA TargetModules entries {string.Join(", ", unmatched.Select(u => $"\"{u}\""))} match no linear module; " +
                    "remove them or fix the names (a misspelt target would silently leave that module untrained).");
        }

        var alreadyQuantized = targets.Where(t => t.Module is Nf4Linear).Select(t => t.Name).ToList();
        if (alreadyQuantized.Count > 0 && !quantizeBase)
            throw new TrainingConfigurationException(
                $"{alreadyQuantized[0]} is already NF4-quantised, so a dense LoRA base cannot be built from it. Use quantizeBase (QLoRA), or load the model without quantising.");

        foreach (var (name, module) in targets)
        {
            nn.Module<Tensor, Tensor> adapter = module switch
            {
                Nf4Linear quantized => new Nf4LoraLinear(quantized, options, generator),
                Linear linear when quantizeBase => Nf4LoraLinear.FromLinear(linear, options, doubleQuantize, generator),
                Linear linear => new LoraLinear(linear, options, generator),
                _ => throw new InvalidOperationException($"{name} is neither a Linear nor an Nf4Linear."),
            };
            replaceModule(name, adapter);
            if (quantizeBase && module is Linear dense)
                dense.Dispose();   // The NF4 copy replaces it; keeping the dense weight would defeat QLoRA.
        }
        return new LoraInjectionReport(targets.Select(t => t.Name).ToList());
    }

    /// <summary>Every descendant module with its dotted name, parent before children, children in registration order.</summary>
    private static IEnumerable<(string Name, nn.Module Module)> DepthFirstModules(nn.Module module, string prefix)
    {
        foreach (var (childName, child) in module.named_children())
        {
            string name = prefix.Length == 0 ? childName : $"{prefix}.{childName}";
            yield return (name, child);
            foreach (var descendant in DepthFirstModules(child, name))
                yield return descendant;
        }
    }

    /// <summary>
    /// The modules whose <c>.weight</c> an <c>unfrozen_parameters</c> pattern unfreezes (Axolotl's rule), among
    /// <paramref name="moduleNames"/>: Spectrum + QLoRA in the paper is QLoRA targeting exactly these.
    /// </summary>
    public static IReadOnlyList<string> ModulesSelectedBy(IReadOnlyList<string> axolotlPatterns, IEnumerable<string> moduleNames)
    {
        ArgumentNullException.ThrowIfNull(axolotlPatterns);
        ArgumentNullException.ThrowIfNull(moduleNames);
        if (axolotlPatterns.Count == 0)
            throw new TrainingConfigurationException(
                "The unfrozen_parameters list is empty, which Axolotl reads as \"train everything\"; it selects no LoRA targets. Pass the patterns from `spectrum select`.");
        var names = moduleNames.ToList();
        var weightNames = names.Select(n => n + ".weight").ToList();
        var unfrozen = SelectionVerifier.UnfrozenParameters(axolotlPatterns, weightNames).ToHashSet(StringComparer.Ordinal);
        return names.Where(n => unfrozen.Contains(n + ".weight")).ToList();
    }

    /// <summary>PEFT's list rule (exact name or ends with "." + entry); null targets = every linear except <c>lm_head</c>.</summary>
    public static bool IsTarget(string moduleName, IReadOnlyList<string>? targetModules)
    {
        if (targetModules is null)
            return moduleName != "lm_head" && !moduleName.EndsWith(".lm_head", StringComparison.Ordinal);
        return targetModules.Any(t => moduleName == t || moduleName.EndsWith("." + t, StringComparison.Ordinal));
    }
}
