// AdamW over the trainable parameters only, with its state keyed by parameter name so checkpoints can store and check it.
using Spectrum.Selection;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Spectrum.Training;

/// <summary>Hugging Face Trainer's AdamW defaults, except the learning rate, which the paper sets per method.</summary>
public sealed record AdamWOptions(
    double LearningRate = 1e-5,
    double Beta1 = 0.9,
    double Beta2 = 0.999,
    double Eps = 1e-8,
    double WeightDecay = 0.0);

/// <param name="ExpAvg">First moment, same shape and dtype as the parameter.</param>
/// <param name="ExpAvgSq">Second moment, same shape and dtype as the parameter.</param>
/// <param name="Step">Updates applied to this parameter (PyTorch counts per parameter, skipping steps without a gradient).</param>
public sealed record AdamWParameterState(Tensor ExpAvg, Tensor ExpAvgSq, long Step);

/// <summary>
/// PyTorch's single-tensor AdamW (decoupled decay: <c>p *= 1 − lr·wd</c>, then the bias-corrected Adam step), written
/// here rather than taken from TorchSharp because TorchSharp keys its state by position and saves it in its own binary
/// format; a checkpoint needs it by name, in safetensors, with a check that names and shapes still match on resume.
/// State exists only for the parameters given, which must all require gradients: frozen parameters cost nothing.
/// Weight decay applies to tensors of rank ≥ 2 only (biases and norm gains are exempt, as in nanoGPT/HF).
/// A bf16/f16 parameter gets a float32 master copy (mixed precision, as DeepSpeed's bf16 mode keeps): its gradient is
/// added to the master's float32 gradient after each backward (<see cref="AccumulateGradients"/>), the update is applied
/// to the master, and the parameter receives the master rounded to its dtype — an update of ~1e-5 would otherwise round away.
/// </summary>
public sealed class AdamWOptimizer : IDisposable
{
    private readonly List<(string Name, Parameter Parameter, bool Decays)> _parameters;
    // Float32 master copy of each reduced-precision parameter; the update and the gradient live on it.
    private readonly Dictionary<string, Parameter> _masters = new(StringComparer.Ordinal);
    private readonly Dictionary<string, MutableState> _state = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Tensor> _rowMasks = new(StringComparer.Ordinal);
    // The same row ranges as (start, end) row pairs, clamped, ordered and merged: the rows the kernel updates.
    private readonly Dictionary<string, List<(long Start, long End)>> _rowRanges = new(StringComparer.Ordinal);
    // Set once a micro-batch gradient had to be summed in float32 (gradient accumulation): gradients then cost 4 bytes.
    private bool _accumulatedInFloat32;
    // Clipping's factor for the next step's gradients, from ClipGradientNorm; applied inside the update.
    private double _gradientScale = 1;

    /// <param name="parameters">The trainable parameters (e.g. <see cref="Trainable"/>); each must require gradients.</param>
    /// <param name="rowRanges">From <see cref="FreezeReport.RowRanges"/>: rows outside the ranges never change.</param>
    /// <exception cref="TrainingConfigurationException">A frozen or repeated parameter, no parameters, or invalid hyper-parameters.</exception>
    public AdamWOptimizer(IEnumerable<(string Name, Parameter Parameter)> parameters, AdamWOptions options,
        IReadOnlyDictionary<string, IReadOnlyList<RowRange>>? rowRanges = null)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(options);
        ValidateOptions(options);
        Options = options;
        LearningRate = options.LearningRate;
        _parameters = [];
        foreach (var (name, parameter) in parameters)
        {
            if (!parameter.requires_grad)
                throw new TrainingConfigurationException(
                    $"Parameter \"{name}\" is frozen (requires_grad is false) but was given to the optimizer; pass only trainable " +
                    "parameters (AdamWOptimizer.Trainable(model)) so frozen ones get no optimizer state.");
            if (_state.ContainsKey(name) || _parameters.Any(p => ReferenceEquals(p.Parameter, parameter)))
                throw new TrainingConfigurationException(
                    $"Parameter \"{name}\" was given to the optimizer twice (or is tied to one already given); list each tensor once, as Trainable(model) does.");
            _parameters.Add((name, parameter, parameter.dim() >= 2));
            if (NeedsMaster(parameter.dtype))
            {
                // Requires grad only so it can carry a .grad; it is never part of an autograd graph.
                _masters[name] = new Parameter(parameter.detach().to_type(ScalarType.Float32).DetachFromDisposeScope(), requires_grad: true);
            }
            var optimized = Optimized(name, parameter);
            // Detached: the optimizer outlives any dispose scope its creator happens to be in.
            _state[name] = new MutableState(torch.zeros_like(optimized).DetachFromDisposeScope(),
                torch.zeros_like(optimized).DetachFromDisposeScope(), 0);
        }
        if (_parameters.Count == 0)
            throw new TrainingConfigurationException(
                "The optimizer got no trainable parameter; every parameter is frozen. Unfreeze some (ParameterFreezer) before training.");
        foreach (var (name, ranges) in rowRanges ?? new Dictionary<string, IReadOnlyList<RowRange>>())
        {
            var parameter = _parameters.FirstOrDefault(p => p.Name == name).Parameter
                ?? throw new TrainingConfigurationException($"A row range is given for \"{name}\", which is not among the optimizer's trainable parameters.");
            _rowRanges[name] = MergedRows(parameter.shape[0], ranges);
            _rowMasks[name] = RowMask(Optimized(name, parameter), _rowRanges[name]);
        }
    }

    /// <summary>Every parameter of <paramref name="model"/> that requires gradients, with its full name; a tied parameter once, under its first name.</summary>
    public static IReadOnlyList<(string Name, Parameter Parameter)> Trainable(nn.Module model) =>
        UniqueParameters.Of(model).Where(p => p.Parameter.requires_grad).ToList();

    public AdamWOptions Options { get; }

    /// <summary>The rate the next <see cref="Step"/> uses; the schedule sets it before each step.</summary>
    public double LearningRate { get; set; }

    /// <summary>Names of the optimized parameters, in the order given.</summary>
    public IReadOnlyList<string> ParameterNames => _parameters.Select(p => p.Name).ToList();

    public bool HasState(string parameterName) => _state.ContainsKey(parameterName);

    /// <summary>True when <paramref name="parameterName"/> is bf16/f16 and trained through a float32 master copy.</summary>
    public bool HasMasterWeight(string parameterName) => _masters.ContainsKey(parameterName);

    /// <summary>
    /// Bytes this optimizer makes training hold beyond the model's own weights, read off its live tensors: both AdamW
    /// moments, the float32 masters of reduced-precision parameters, and the gradient each parameter carries after a
    /// backward (float32 where micro-batches are summed in float32, else the parameter's own dtype). Activations are
    /// not included: they depend on the batch, not the method.
    /// </summary>
    public long TrainingStateBytes
    {
        get
        {
            long bytes = 0;
            foreach (var (name, parameter, _) in _parameters)
            {
                var optimized = Optimized(name, parameter);
                var state = _state[name];
                bytes += TensorBytes(state.ExpAvg) + TensorBytes(state.ExpAvgSq);
                if (_masters.ContainsKey(name))
                    bytes += TensorBytes(optimized) + (_accumulatedInFloat32 ? TensorBytes(optimized) : TensorBytes(parameter));
                else
                    bytes += TensorBytes(optimized);
            }
            return bytes;
        }
    }

    private static long TensorBytes(Tensor tensor) => tensor.numel() * tensor.ElementSize;

    /// <summary>
    /// The weight as trained (live, not a copy): the float32 master of a reduced-precision parameter, else the parameter
    /// itself. This is what a checkpoint must hold for an exact resume.
    /// </summary>
    public Tensor TrainedWeight(string parameterName)
    {
        var entry = _parameters.FirstOrDefault(p => p.Name == parameterName);
        return entry.Parameter is null
            ? throw new KeyNotFoundException($"The optimizer has no parameter \"{parameterName}\".")
            : Optimized(parameterName, entry.Parameter);
    }

    /// <summary>Sets a trained weight (the master and, rounded, the parameter) from <paramref name="value"/>, e.g. on resume.</summary>
    public void SetTrainedWeight(string parameterName, Tensor value)
    {
        ArgumentNullException.ThrowIfNull(value);
        var entry = _parameters.FirstOrDefault(p => p.Name == parameterName);
        if (entry.Parameter is null)
            throw new KeyNotFoundException($"The optimizer has no parameter \"{parameterName}\".");
        using var noGrad = torch.no_grad();
        var target = Optimized(parameterName, entry.Parameter);
        target.copy_(value);
        if (!ReferenceEquals(target, entry.Parameter))
            entry.Parameter.copy_(target);
    }

    /// <summary>
    /// Sums each reduced-precision parameter's gradient into its float32 master's (so micro-batches accumulate in
    /// float32) and drops the bf16/f16 one. Call after every backward; a no-op for float32 parameters. With
    /// <paramref name="lastMicroBatch"/>, a gradient with no earlier micro-batch to add to is left where it is: the step
    /// reads bf16 gradients directly (widening is exact), which spares a float32 copy of every such gradient.
    /// </summary>
    public void AccumulateGradients(bool lastMicroBatch = false)
    {
        if (_masters.Count == 0)
            return;
        // The scope disposes every handle made here (the .grad getters' and the cast's): a gradient is kept alive by
        // the parameter it is attached to, and a stray handle would pin hundreds of MB until the next GC.
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        foreach (var (name, parameter, _) in _parameters)
        {
            if (!_masters.TryGetValue(name, out var master) || parameter.grad is not { } grad)
                continue;
            if (master.grad is { } sum)
            {
                sum.add_(grad);
            }
            else if (lastMicroBatch)
            {
                continue;
            }
            else
            {
                master.grad = grad.to_type(ScalarType.Float32);
                _accumulatedInFloat32 = true;
            }
            parameter.grad = null;
        }
    }

    /// <summary>
    /// The gradient the next step uses: a reduced-precision parameter's float32 sum over micro-batches, or else the
    /// parameter's own gradient (float32, or bf16/f16 left by the last micro-batch); null when it has none.
    /// </summary>
    private Tensor? GradientOf(string name, Parameter parameter) =>
        _masters.TryGetValue(name, out var master) && master.grad is { } summed ? summed : parameter.grad;

    /// <summary>The live state tensors (not copies); read them before the next step changes them.</summary>
    public AdamWParameterState StateOf(string parameterName) =>
        _state.TryGetValue(parameterName, out var s)
            ? new AdamWParameterState(s.ExpAvg, s.ExpAvgSq, s.Step)
            : throw new KeyNotFoundException($"The optimizer has no state for \"{parameterName}\"; it optimizes only: {string.Join(", ", _state.Keys.Take(5))}...");

    /// <summary>Zeroes the gradient rows that a row range leaves frozen; call after backward and before clipping so the norm ignores them.</summary>
    public void MaskFrozenRowGradients()
    {
        AccumulateGradients(lastMicroBatch: true);
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        foreach (var (name, parameter, _) in _parameters)
        {
            if (_rowMasks.TryGetValue(name, out var mask) && GradientOf(name, parameter) is { } grad)
                grad.mul_(grad.dtype == mask.dtype ? mask : mask.to_type(grad.dtype));   // 0 and 1 are exact in every dtype
        }
    }

    /// <summary>
    /// The global L2 norm of the gradients the next <see cref="Step"/> uses (as if concatenated into one vector), and
    /// with <paramref name="maxNorm"/> the clipping factor that step applies to every gradient: max / (norm + 1e-6),
    /// at most 1, as torch.nn.utils.clip_grad_norm_ computes it. The factor is applied as the update reads each
    /// gradient instead of by a separate pass over them; the gradients themselves are left unscaled. The squares are
    /// summed in double, so the norm is exact to double rounding rather than float32's. Reads the gradients as
    /// <see cref="AccumulateGradients"/> left them after the last backward.
    /// </summary>
    /// <returns>The norm before clipping.</returns>
    public double ClipGradientNorm(double? maxNorm)
    {
        if (maxNorm is { } max && !(max > 0))
            throw new ArgumentOutOfRangeException(nameof(maxNorm), maxNorm, "The clipping norm must be positive.");
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        double squares = 0;
        foreach (var (name, parameter, _) in _parameters)
        {
            if (GradientOf(name, parameter) is { } grad)
                squares += SumOfSquares(grad);
        }
        double norm = Math.Sqrt(squares);
        _gradientScale = maxNorm is { } limit ? Math.Min(1.0, limit / (norm + 1e-6)) : 1.0;
        return norm;
    }

    private static unsafe double SumOfSquares(Tensor grad)
    {
        if (grad.is_cpu() && grad.is_contiguous() && grad.dtype is ScalarType.Float32 or ScalarType.BFloat16)
        {
            fixed (byte* bytes = grad.bytes)
            {
                return grad.dtype == ScalarType.Float32
                    ? FusedAdamW.SumOfSquares((float*)bytes, null, grad.numel())
                    : FusedAdamW.SumOfSquares(null, (ushort*)bytes, grad.numel());
            }
        }
        return grad.to_type(ScalarType.Float64).pow(2).sum().item<double>();
    }

    /// <summary>
    /// False makes <see cref="Step"/> use tensor operations for every parameter instead of the one-pass kernel
    /// (<see cref="FusedAdamW"/>), which it otherwise uses wherever the tensors allow (CPU, contiguous, float32); the two
    /// agree to rounding, and tests compare them.
    /// </summary>
    internal bool UseFusedKernel { get; set; } = true;

    /// <summary>One AdamW update of every parameter that has a gradient; parameters without one are skipped entirely, as in PyTorch.</summary>
    public void Step()
    {
        AccumulateGradients(lastMicroBatch: true);
        using var noGrad = torch.no_grad();
        foreach (var (name, modelParameter, decays) in _parameters)
        {
            using var scope = torch.NewDisposeScope();
            var parameter = Optimized(name, modelParameter);
            var grad = GradientOf(name, modelParameter);
            if (grad is null)
                continue;
            var state = _state[name];
            state.Step++;
            var constants = AdamWConstants.For(Options, LearningRate, decays, state.Step, _gradientScale);
            if (UseFusedKernel && CanFuse(parameter, grad, state, modelParameter))
                FusedStep(name, parameter, grad, state, modelParameter, constants);
            else
                TensorOpsStep(name, parameter, grad, state, modelParameter, decays);
        }
        _gradientScale = 1;
    }

    /// <summary>The kernel needs flat float32 CPU memory for the weight as trained and both moments, and a float32 or bf16 gradient.</summary>
    private static bool CanFuse(Tensor parameter, Tensor grad, MutableState state, Parameter modelParameter)
    {
        static bool Flat(Tensor t) => t.is_cpu() && t.dtype == ScalarType.Float32 && t.is_contiguous();
        bool roundedTargetOk = ReferenceEquals(parameter, modelParameter)
            || (modelParameter.dtype is ScalarType.BFloat16 or ScalarType.Float16 && modelParameter.is_cpu() && modelParameter.is_contiguous());
        bool gradientOk = Flat(grad) || (grad.is_cpu() && grad.dtype == ScalarType.BFloat16 && grad.is_contiguous());
        return Flat(parameter) && gradientOk && Flat(state.ExpAvg) && Flat(state.ExpAvgSq) && grad.numel() == parameter.numel() && roundedTargetOk;
    }

    private unsafe void FusedStep(string name, Tensor parameter, Tensor grad, MutableState state, Parameter modelParameter, in AdamWConstants constants)
    {
        bool master = !ReferenceEquals(parameter, modelParameter);
        bool writeBf16 = master && modelParameter.dtype == ScalarType.BFloat16;
        bool bf16Gradient = grad.dtype == ScalarType.BFloat16;
        long rowElements = parameter.dim() == 0 ? 1 : parameter.numel() / Math.Max(1, parameter.shape[0]);
        fixed (byte* p = parameter.bytes, g = grad.bytes, m = state.ExpAvg.bytes, v = state.ExpAvgSq.bytes)
        fixed (byte* rounded = writeBf16 ? modelParameter.bytes : Span<byte>.Empty)
        {
            // Rows a row range leaves frozen are skipped: their weights and (zero) moments stay exactly as they are.
            foreach (var (startRow, rows) in ActiveRows(name, parameter))
            {
                FusedAdamW.Update((float*)p, bf16Gradient ? null : (float*)g, bf16Gradient ? (ushort*)g : null, (float*)m, (float*)v,
                    writeBf16 ? (ushort*)rounded : null, startRow * rowElements, rows * rowElements, constants);
            }
        }
        if (master && !writeBf16)
            modelParameter.copy_(parameter);   // float16: rounded by LibTorch's conversion
    }

    /// <summary>(first row, row count) of each stretch the optimizer updates: all rows, or the unfrozen ones of a row range.</summary>
    private IEnumerable<(long StartRow, long Rows)> ActiveRows(string name, Tensor parameter)
    {
        long rows = parameter.dim() == 0 ? 1 : parameter.shape[0];
        if (!_rowRanges.TryGetValue(name, out var ranges))
        {
            yield return (0, rows);
            yield break;
        }
        foreach (var (start, end) in ranges)
            yield return (start, end - start);
    }

    /// <summary>The same update as tensor operations (PyTorch's single-tensor AdamW, op for op): the general path and the kernel's cross-check.</summary>
    private void TensorOpsStep(string name, Tensor parameter, Tensor grad, MutableState state, Parameter modelParameter, bool decays)
    {
        // Scalars stay double here (not AdamWConstants' float32): this path also serves float64 weights.
        double lr = LearningRate, beta1 = Options.Beta1, beta2 = Options.Beta2;
        if (grad.dtype != parameter.dtype)
            grad = grad.to_type(parameter.dtype);   // a bf16/f16 gradient left by the last micro-batch; exact
        if (_gradientScale != 1)
            grad = grad.mul(_gradientScale);   // in the gradient's dtype, as clip_grad_norm_'s multiply
        _rowMasks.TryGetValue(name, out var mask);
        if (mask is not null)
            grad.mul_(mask);   // usually masked already (MaskFrozenRowGradients); 0/1 masks are idempotent
        if (decays && Options.WeightDecay != 0)
        {
            // Masked rows are multiplied by exactly 1.0, so they stay bit-identical.
            if (mask is null)
                parameter.mul_(1 - lr * Options.WeightDecay);
            else
                parameter.mul_(mask * (-lr * Options.WeightDecay) + 1.0);
        }
        state.ExpAvg.mul_(beta1).add_(grad, alpha: 1 - beta1);
        state.ExpAvgSq.mul_(beta2).addcmul_(grad, grad, value: 1 - beta2);
        double biasCorrection1 = 1 - Math.Pow(beta1, state.Step);
        double biasCorrection2Sqrt = Math.Sqrt(1 - Math.Pow(beta2, state.Step));
        var denominator = state.ExpAvgSq.sqrt().div_(biasCorrection2Sqrt).add_(Options.Eps);   // one temporary, not two
        // Masked rows have zero moments, so their update is exactly (−)0.
        parameter.addcdiv_(state.ExpAvg, denominator, value: -lr / biasCorrection1);
        if (!ReferenceEquals(parameter, modelParameter))
            modelParameter.copy_(parameter);   // round to nearest bf16/f16
    }

    /// <summary>Drops every gradient (set to none, as PyTorch and HF do), so an unused parameter skips the next step.</summary>
    public void ZeroGrad()
    {
        foreach (var (name, parameter, _) in _parameters)
        {
            parameter.grad = null;
            if (_masters.TryGetValue(name, out var master))
                master.grad = null;
        }
    }

    /// <summary>
    /// Replaces the state with <paramref name="state"/> (copied), which must cover exactly the optimized parameters with
    /// matching shapes and dtypes.
    /// </summary>
    /// <exception cref="TrainingConfigurationException">Names, shapes or dtypes differ.</exception>
    public void LoadState(IReadOnlyDictionary<string, AdamWParameterState> state)
    {
        ArgumentNullException.ThrowIfNull(state);
        var missing = _state.Keys.Where(k => !state.ContainsKey(k)).ToList();
        var extra = state.Keys.Where(k => !_state.ContainsKey(k)).ToList();
        if (missing.Count > 0 || extra.Count > 0)
            throw new TrainingConfigurationException(
                "The saved optimizer state is for different parameters than are trainable now" +
                (missing.Count > 0 ? $"; missing: {string.Join(", ", missing.Take(5))}" : "") +
                (extra.Count > 0 ? $"; not trainable now: {string.Join(", ", extra.Take(5))}" : "") +
                ". Resume with the same freezing (same unfrozen_parameters or LoRA targets) as the run that saved it.");
        foreach (var (name, target) in _state)
        {
            var source = state[name];
            RequireSameLayout(name, "exp_avg", target.ExpAvg, source.ExpAvg);
            RequireSameLayout(name, "exp_avg_sq", target.ExpAvgSq, source.ExpAvgSq);
            if (source.Step < 0)
                throw new TrainingConfigurationException($"The saved optimizer step of \"{name}\" is {source.Step}; expected at least 0.");
        }
        using var noGrad = torch.no_grad();
        foreach (var (name, target) in _state)
        {
            target.ExpAvg.copy_(state[name].ExpAvg);
            target.ExpAvgSq.copy_(state[name].ExpAvgSq);
            target.Step = state[name].Step;
        }
    }

    public void Dispose()
    {
        foreach (var s in _state.Values)
        {
            s.ExpAvg.Dispose();
            s.ExpAvgSq.Dispose();
        }
        foreach (var mask in _rowMasks.Values)
            mask.Dispose();
        foreach (var master in _masters.Values)
            master.Dispose();
        _masters.Clear();
        _state.Clear();
        _rowMasks.Clear();
        _rowRanges.Clear();
    }

    private static void RequireSameLayout(string name, string what, Tensor expected, Tensor found)
    {
        if (!expected.shape.SequenceEqual(found.shape) || expected.dtype != found.dtype)
            throw new TrainingConfigurationException(
                $"The saved {what} of \"{name}\" is {found.dtype} [{string.Join(", ", found.shape)}]; the parameter is " +
                $"{expected.dtype} [{string.Join(", ", expected.shape)}]. Resume with the same model and dtype.");
    }

    private static bool NeedsMaster(ScalarType dtype) => dtype is ScalarType.BFloat16 or ScalarType.Float16;

    private Parameter Optimized(string name, Parameter parameter) => _masters.TryGetValue(name, out var master) ? master : parameter;

    /// <summary>(rows, 1, …, 1) with 1 on the unfrozen rows, broadcasting over the parameter.</summary>
    private static Tensor RowMask(Parameter parameter, List<(long Start, long End)> mergedRows)
    {
        long rows = parameter.shape[0];
        var mask = torch.zeros(rows, dtype: parameter.dtype, device: parameter.device);
        foreach (var (start, end) in mergedRows)
            mask.narrow(0, start, end - start).fill_(1);
        var shape = new long[parameter.dim()];
        Array.Fill(shape, 1L);
        shape[0] = rows;
        return mask.reshape(shape).DetachFromDisposeScope();
    }

    /// <summary>Row ranges clamped to the tensor, sorted and merged, so no row is updated twice.</summary>
    private static List<(long Start, long End)> MergedRows(long rows, IReadOnlyList<RowRange> ranges)
    {
        var merged = new List<(long Start, long End)>();
        foreach (var (start, end) in ranges.Select(r => (r.Start, End: Math.Min(r.End ?? rows, rows))).Where(r => r.End > r.Start).OrderBy(r => r.Start))
        {
            if (merged.Count > 0 && start <= merged[^1].End)
                merged[^1] = (merged[^1].Start, Math.Max(merged[^1].End, end));
            else
                merged.Add((start, end));
        }
        return merged;
    }

    /// <exception cref="TrainingConfigurationException">A hyper-parameter AdamW cannot use.</exception>
    internal static void ValidateOptions(AdamWOptions o)
    {
        if (!(o.LearningRate >= 0) || double.IsInfinity(o.LearningRate))
            throw new TrainingConfigurationException($"LearningRate is {o.LearningRate}; expected a finite value ≥ 0.");
        if (!(o.Beta1 is >= 0 and < 1) || !(o.Beta2 is >= 0 and < 1))
            throw new TrainingConfigurationException($"Beta1 is {o.Beta1} and Beta2 is {o.Beta2}; both must lie in [0, 1).");
        if (!(o.Eps > 0))
            throw new TrainingConfigurationException($"Eps is {o.Eps}; expected a value > 0 (it keeps the Adam denominator away from zero).");
        if (!(o.WeightDecay >= 0) || double.IsInfinity(o.WeightDecay))
            throw new TrainingConfigurationException($"WeightDecay is {o.WeightDecay}; expected a finite value ≥ 0.");
        if (o.LearningRate * o.WeightDecay > 1)
            throw new TrainingConfigurationException(
                $"LearningRate ({o.LearningRate}) × WeightDecay ({o.WeightDecay}) exceeds 1, so decoupled decay would flip the weights' sign. Lower one of them.");
    }

    private sealed class MutableState(Tensor expAvg, Tensor expAvgSq, long step)
    {
        public Tensor ExpAvg { get; } = expAvg;
        public Tensor ExpAvgSq { get; } = expAvgSq;
        public long Step { get; set; } = step;
    }
}
