// Streams a checkpoint's weight matrices through the SNR engine: one tensor in memory at a time, reading overlapped with compute.
using System.Diagnostics;
using System.Threading.Channels;
using Spectrum.Analysis;
using Spectrum.Checkpoints;
using Spectrum.Selection;
using TorchSharp;

namespace Spectrum.Scanning;

/// <summary>The score of one module and how it was computed.</summary>
public sealed record ModuleResult(
    ScanCandidate Candidate,
    SnrScore Snr,
    GramPrecision Precision,
    bool Escalated,
    long NonFiniteValues,
    TimeSpan ComputeTime)
{
    public string Module => Candidate.Module;
    public string Type => Candidate.Type;
    public double Score => Snr.Score;
}

/// <summary>Where a running scan is; Work is in the units of <see cref="ScanCandidate.EstimatedWork"/> so the ETA follows compute, not tensor count.</summary>
public sealed record ScanProgress(int Done, int Total, string? LastModule, double WorkDone, double WorkTotal, TimeSpan Elapsed)
{
    public TimeSpan? EstimatedRemaining =>
        WorkDone <= 0 ? null : TimeSpan.FromSeconds(Elapsed.TotalSeconds * (WorkTotal - WorkDone) / WorkDone);
}

/// <summary>Everything one scan produced.</summary>
public sealed record ScanReport(
    IReadOnlyList<ModuleResult> Modules,
    TimeSpan Elapsed,
    TimeSpan WaitingForData)
{
    public IReadOnlyList<ModuleScore> Scores => Modules.Select(m => new ModuleScore(m.Module, m.Type, m.Score)).ToList();
}

public sealed class SpectrumScanner(SingularValueEngine engine)
{
    /// <summary>Scores each candidate in order. Reading and decoding the next tensor happen on another thread while this one computes.</summary>
    public ScanReport Scan(
        Checkpoint checkpoint,
        IReadOnlyList<ScanCandidate> candidates,
        IProgress<ScanProgress>? progress = null,
        CancellationToken cancellation = default)
    {
        var total = Stopwatch.StartNew();
        double workTotal = candidates.Sum(c => c.EstimatedWork), workDone = 0;
        // Capacity 1: at most one decoded tensor waits while one is computed, so memory stays at about two tensors.
        var loaded = Channel.CreateBounded<LoadedMatrix>(new BoundedChannelOptions(1) { SingleReader = true, SingleWriter = true });
        using var stopLoading = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        var loader = Task.Run(() => LoadAll(checkpoint, candidates, loaded.Writer, stopLoading.Token), stopLoading.Token);

        var results = new List<ModuleResult>(candidates.Count);
        var waiting = TimeSpan.Zero;
        try
        {
            for (int i = 0; i < candidates.Count; i++)
            {
                var waitStart = Stopwatch.GetTimestamp();
                LoadedMatrix next;
                try
                {
                    next = loaded.Reader.ReadAsync(cancellation).AsTask().GetAwaiter().GetResult();
                }
                catch (ChannelClosedException closed) when (closed.InnerException is not null)
                {
                    throw closed.InnerException;
                }
                waiting += Stopwatch.GetElapsedTime(waitStart);

                using (next.Matrix)
                {
                    var computeStart = Stopwatch.GetTimestamp();
                    var result = ScoreOne(next);
                    results.Add(result with { ComputeTime = Stopwatch.GetElapsedTime(computeStart) });
                }
                workDone += candidates[i].EstimatedWork;
                progress?.Report(new ScanProgress(i + 1, candidates.Count, candidates[i].Module, workDone, workTotal, total.Elapsed));
            }
        }
        finally
        {
            stopLoading.Cancel();
            try { loader.Wait(); } catch (AggregateException) { /* its error, if any, already surfaced through the channel */ }
            while (loaded.Reader.TryRead(out var left)) left.Matrix.Dispose();
        }
        return new ScanReport(results, total.Elapsed, waiting);
    }

    private ModuleResult ScoreOne(LoadedMatrix loaded)
    {
        using var scope = torch.NewDisposeScope();
        var candidate = loaded.Candidate;
        var score = engine.Score(loaded.Matrix);
        // Non-finite weights make every singular value NaN; only then is the extra pass to count them worth its time.
        long nonFinite = double.IsNaN(score.Snr.Score)
            ? loaded.Matrix.numel() - torch.isfinite(loaded.Matrix).sum().item<long>()
            : 0;
        return new ModuleResult(candidate, score.Snr, score.SingularValues.Precision, score.SingularValues.Escalated, nonFinite, TimeSpan.Zero);
    }

    private static void LoadAll(Checkpoint checkpoint, IReadOnlyList<ScanCandidate> candidates, ChannelWriter<LoadedMatrix> writer, CancellationToken cancellation)
    {
        Exception? failure = null;
        try
        {
            foreach (var candidate in candidates)
            {
                var matrix = MatrixLoader.Load(checkpoint, candidate);
                try
                {
                    writer.WriteAsync(new LoadedMatrix(candidate, matrix), cancellation).AsTask().GetAwaiter().GetResult();
                }
                catch
                {
                    matrix.Dispose();
                    throw;
                }
            }
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested) { }
        catch (Exception error) { failure = error; }
        finally { writer.TryComplete(failure); }
    }

    private sealed record LoadedMatrix(ScanCandidate Candidate, torch.Tensor Matrix);
}
