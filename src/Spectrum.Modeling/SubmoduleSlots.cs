// Swaps one registered child module for another while keeping registration order (so named_parameters() order is stable); nothing else.
using TorchSharp;
using TorchSharp.Utils;

namespace Spectrum.Modeling;

internal static class SubmoduleSlots
{
    /// <summary>
    /// TorchSharp's register_module appends and refuses existing names, so the old entry is removed, the replacement
    /// registered (which also registers its own children), and the original order restored.
    /// </summary>
    public static void Replace(OrderedDict<string, torch.nn.Module> registry, torch.nn.Module owner, string name,
        torch.nn.Module replacement)
    {
        var order = registry.Keys.ToList();
        if (!registry.ContainsKey(name))
        {
            throw new InvalidOperationException(
                $"No child module named '{name}' is registered in {owner.GetType().Name}; registered: " +
                $"{string.Join(", ", order)}.");
        }
        registry.Remove(name);
        owner.register_module(name, replacement);
        var entries = order.Select(key => (key, registry[key])).ToList();
        registry.Clear();
        foreach (var (key, module) in entries)
        {
            registry.Add(key, module);
        }
    }
}
