// LoRA hyper-parameters; the defaults are the Spectrum paper's QLoRA settings (r 32, alpha 16, dropout 0.05).
namespace Spectrum.Training;

/// <param name="Rank">r: inner dimension of the low-rank update B·A.</param>
/// <param name="Alpha">The update is scaled by Alpha / Rank (PEFT without rsLoRA), 0.5 with the defaults.</param>
/// <param name="Dropout">Dropout on the adapter's input only, as in PEFT; the frozen path sees the undropped input.</param>
/// <param name="TargetModules">
/// Module names to wrap, PEFT list semantics: an entry matches a module whose dotted name equals it or ends with
/// <c>.</c> + entry (<c>q_proj</c> matches every layer's; <c>model.layers.3.mlp.down_proj</c> one module). Null means
/// every linear module except <c>lm_head</c> (Axolotl's <c>lora_target_linear</c>, the paper's "all linear").
/// For Spectrum + QLoRA use <see cref="LoraInjection.ModulesSelectedBy"/> to turn unfrozen_parameters into targets.
/// </param>
public sealed record LoraOptions(int Rank = 32, double Alpha = 16, double Dropout = 0.05, IReadOnlyList<string>? TargetModules = null)
{
    public double Scaling => Alpha / Rank;

    /// <exception cref="TrainingConfigurationException">A value that LoRA cannot use.</exception>
    public void Validate()
    {
        if (Rank < 1)
            throw new TrainingConfigurationException($"LoRA Rank is {Rank}; expected at least 1.");
        if (!(Alpha > 0) || double.IsInfinity(Alpha))
            throw new TrainingConfigurationException($"LoRA Alpha is {Alpha}; expected a finite value > 0 (the update is scaled by Alpha / Rank).");
        if (!(Dropout is >= 0 and < 1))
            throw new TrainingConfigurationException($"LoRA Dropout is {Dropout}; expected a probability in [0, 1).");
        if (TargetModules is { Count: 0 })
            throw new TrainingConfigurationException(
                "LoRA TargetModules is an empty list, which would wrap nothing; pass null for every linear module, or name the modules.");
    }
}
