// Crash-safe training checkpoints: each written whole in a temporary folder, renamed into place, then marked complete.
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Spectrum.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Spectrum.Training;

/// <param name="Step">Optimizer steps completed when it was saved.</param>
/// <param name="Folder">Absolute path of <c>checkpoint-&lt;step&gt;</c>.</param>
public sealed record CheckpointInfo(int Step, string Folder);

/// <param name="Folder">The folder passed over.</param>
/// <param name="Reason">Why it is not used, e.g. "no completion marker: the save was interrupted".</param>
public sealed record SkippedCheckpoint(string Folder, string Reason);

/// <param name="Complete">Checkpoints with a valid marker and every listed file at its recorded size, by ascending step.</param>
/// <param name="Skipped">Checkpoint-like folders that are not usable, with the reason.</param>
public sealed record CheckpointScan(IReadOnlyList<CheckpointInfo> Complete, IReadOnlyList<SkippedCheckpoint> Skipped);

/// <summary>
/// A folder of <c>checkpoint-&lt;step&gt;</c> subfolders (HF's naming). <see cref="Save"/> writes every file into
/// <c>.checkpoint-&lt;step&gt;.tmp-…</c> in the same folder (so the rename cannot cross file systems), flushes files
/// and folders, renames it to <c>checkpoint-&lt;step&gt;</c> and only then writes the completion marker
/// <see cref="MarkerFileName"/> listing every file's size and SHA-256. A crash at any point leaves either no
/// <c>checkpoint-&lt;step&gt;</c> or one without a marker, which <see cref="Scan"/> skips; earlier checkpoints are never
/// touched before the new one is complete. One writer per folder.
/// </summary>
/// <remarks>
/// Files: <c>trainable.safetensors</c> (parameters by name), <c>optimizer.safetensors</c>
/// (<c>exp_avg.&lt;name&gt;</c>, <c>exp_avg_sq.&lt;name&gt;</c>, <c>step.&lt;name&gt;</c> as I64 scalar),
/// <c>rng.safetensors</c> (generator states, U8), <c>trainer_state.json</c> (step, epoch, scheduler step, data
/// position, log history, settings).
/// </remarks>
public sealed class TrainingCheckpointStore
{
    public const string MarkerFileName = "checkpoint_complete.json";
    public const string WeightsFileName = "trainable.safetensors";
    public const string OptimizerFileName = "optimizer.safetensors";
    public const string RngFileName = "rng.safetensors";
    public const string StateFileName = "trainer_state.json";

    private const string Prefix = "checkpoint-";
    private const string MarkerFormat = "spectrum-training-checkpoint";
    private const string StateFormat = "spectrum-training-state";
    private const int FormatVersion = 1;
    private static readonly string[] DataFiles = [WeightsFileName, OptimizerFileName, RngFileName, StateFileName];
    private static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false);

    public TrainingCheckpointStore(string folder)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        Folder = Path.GetFullPath(folder);
    }

    public string Folder { get; }

    /// <summary>Test seam: called with "files-written" (all files in the temporary folder) and "renamed" (before the marker).</summary>
    internal Action<string>? OnSavePhase { get; set; }

    /// <summary>Writes <paramref name="state"/> as <c>checkpoint-&lt;Step&gt;</c>, replacing an existing folder of that step only once the new one is fully written.</summary>
    /// <exception cref="TrainingCheckpointException"><see cref="TrainingCheckpointError.WriteFailed"/>; earlier checkpoints are intact.</exception>
    public CheckpointInfo Save(TrainingState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentOutOfRangeException.ThrowIfNegative(state.Step);
        Directory.CreateDirectory(Folder);
        RemoveLeftoverTemporaryFolders();
        string finalFolder = FolderOf(state.Step);
        string temporary = Path.Combine(Folder, $".{Prefix}{state.Step}.tmp-{Guid.NewGuid():N}");
        bool renamed = false;
        try
        {
            Directory.CreateDirectory(temporary);
            WriteFiles(temporary, state);
            OnSavePhase?.Invoke("files-written");
            var manifest = DataFiles.Select(name => (name, Describe(Path.Combine(temporary, name)))).ToList();
            DirectorySync.Flush(temporary);

            if (Directory.Exists(finalFolder))
                RemoveFolder(finalFolder);
            Directory.Move(temporary, finalFolder);
            renamed = true;
            DirectorySync.Flush(Folder);
            OnSavePhase?.Invoke("renamed");

            AtomicFile.WriteText(Path.Combine(finalFolder, MarkerFileName), writer => writer.Write(MarkerJson(state.Step, manifest)));
            DirectorySync.Flush(finalFolder);
            return new CheckpointInfo(state.Step, finalFolder);
        }
        catch (Exception e)
        {
            TryRemove(temporary);
            if (renamed)
                TryRemove(finalFolder);
            if (e is TrainingCheckpointException)
                throw;
            throw new TrainingCheckpointException(TrainingCheckpointError.WriteFailed, finalFolder,
                $"Saving checkpoint step {state.Step} to {finalFolder} failed: {CauseOf(e)} Earlier checkpoints in {Folder} are " +
                "unchanged. Fix the cause (e.g. free disk space); resuming continues from the last complete one.", e);
        }
    }

    /// <summary>
    /// What went wrong, for the save's message: a file writer's failure as its file (and tensor) and the system's reason,
    /// without the writer's own advice, which the save's message would repeat.
    /// </summary>
    internal static string CauseOf(Exception failure) => failure is CheckpointException { InnerException: { } inner } written
        ? $"{Path.GetFileName(written.FilePath)}{(written.TensorName is { } tensor ? $" (tensor '{tensor}')" : "")}: {inner.Message}"
        : failure.Message;

    /// <summary>Every <c>checkpoint-&lt;step&gt;</c> folder, sorted into usable ones and skipped ones (without reading the tensors).</summary>
    public CheckpointScan Scan()
    {
        var complete = new List<CheckpointInfo>();
        var skipped = new List<SkippedCheckpoint>();
        if (!Directory.Exists(Folder))
            return new CheckpointScan(complete, skipped);
        foreach (string folder in Directory.EnumerateDirectories(Folder))
        {
            string name = Path.GetFileName(folder);
            if (name.StartsWith('.') && name.Contains(Prefix, StringComparison.Ordinal))
            {
                skipped.Add(new SkippedCheckpoint(folder, "temporary folder of a save that did not finish"));
                continue;
            }
            if (!TryParseStep(name, out int step))
                continue;
            try
            {
                ReadMarker(folder, step);
                complete.Add(new CheckpointInfo(step, folder));
            }
            catch (TrainingCheckpointException e)
            {
                skipped.Add(new SkippedCheckpoint(folder, e.Message));
            }
        }
        complete.Sort((a, b) => a.Step.CompareTo(b.Step));
        return new CheckpointScan(complete, skipped);
    }

    /// <summary>The checkpoint with the highest step among complete ones; null when there is none.</summary>
    public CheckpointInfo? LatestComplete() => Scan().Complete.LastOrDefault();

    /// <summary>Loads a checkpoint, checking every file against the marker's size and SHA-256 first.</summary>
    /// <exception cref="TrainingCheckpointException">Missing or invalid marker, missing, truncated or corrupted file, or unusable content.</exception>
    public TrainingState Load(CheckpointInfo checkpoint)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        string folder = checkpoint.Folder;
        var manifest = ReadMarker(folder, checkpoint.Step);
        foreach (var (file, bytes, sha256) in manifest)
        {
            string path = Path.Combine(folder, file);
            string actual = Sha256Of(path);
            if (!string.Equals(actual, sha256, StringComparison.OrdinalIgnoreCase))
                throw new TrainingCheckpointException(TrainingCheckpointError.ChecksumMismatch, path,
                    $"{path}: SHA-256 is {actual} but the completion marker recorded {sha256} ({bytes} bytes); the file is corrupted. " +
                    "Resume from an earlier checkpoint (delete this folder) or restart.");
        }

        var opened = new List<Dictionary<string, Tensor>>();
        try
        {
            var weights = ReadTensors(Path.Combine(folder, WeightsFileName), opened);
            var optimizerTensors = ReadTensors(Path.Combine(folder, OptimizerFileName), opened);
            var rng = ReadTensors(Path.Combine(folder, RngFileName), opened);
            var optimizer = OptimizerStateFrom(Path.Combine(folder, OptimizerFileName), weights, optimizerTensors);
            var rngStates = rng.ToDictionary(p => p.Key, p => p.Value.bytes.ToArray(), StringComparer.Ordinal);
            foreach (var tensor in rng.Values)
                tensor.Dispose();
            var json = ReadStateJson(Path.Combine(folder, StateFileName), checkpoint.Step);
            return new TrainingState
            {
                Step = checkpoint.Step,
                Epoch = json.Epoch,
                SchedulerStep = json.SchedulerStep,
                TrainableWeights = weights,
                OptimizerState = optimizer,
                RngStates = rngStates,
                DataPosition = json.DataPosition,
                LogHistory = json.LogHistory,
                Settings = json.Settings,
                OwnsTensors = true,
            };
        }
        catch (Exception e)
        {
            foreach (var tensor in opened.SelectMany(d => d.Values))
                tensor.Dispose();
            if (e is TrainingCheckpointException)
                throw;
            throw new TrainingCheckpointException(TrainingCheckpointError.ContentInvalid, folder,
                $"{folder}: {e.Message} The files match their checksums, so they were written this way; resume from another checkpoint.", e);
        }
    }

    /// <summary>Deletes all but the newest <paramref name="keepLast"/> complete checkpoints, and interrupted saves older than the newest complete one.</summary>
    public void Prune(int keepLast)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(keepLast, 1);
        var scan = Scan();
        foreach (var old in scan.Complete.Take(Math.Max(0, scan.Complete.Count - keepLast)))
            RemoveFolder(old.Folder);
        int newest = scan.Complete.Count > 0 ? scan.Complete[^1].Step : -1;
        foreach (var skipped in scan.Skipped)
        {
            if (TryParseStep(Path.GetFileName(skipped.Folder), out int step) && step < newest)
                RemoveFolder(skipped.Folder);
        }
    }

    private string FolderOf(int step) => Path.Combine(Folder, Prefix + step.ToString(CultureInfo.InvariantCulture));

    private static bool TryParseStep(string name, out int step)
    {
        step = -1;
        return name.StartsWith(Prefix, StringComparison.Ordinal)
            && name.Length > Prefix.Length
            && name.AsSpan(Prefix.Length).IndexOfAnyExceptInRange('0', '9') < 0
            && int.TryParse(name.AsSpan(Prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out step);
    }

    private static void WriteFiles(string folder, TrainingState state)
    {
        var names = state.TrainableWeights.Keys.ToList();
        var missing = names.Where(n => !state.OptimizerState.ContainsKey(n)).Concat(state.OptimizerState.Keys.Where(n => !state.TrainableWeights.ContainsKey(n))).ToList();
        if (missing.Count > 0)
            throw new ArgumentException(
                $"The state's trainable weights and optimizer state cover different parameters ({string.Join(", ", missing.Take(5))}); capture both from the same trainer.");
        TensorFiles.Write(Path.Combine(folder, WeightsFileName), names.Select(n => (n, state.TrainableWeights[n])).ToList());

        var optimizer = new List<(string, Tensor)>();
        var steps = new List<Tensor>();
        try
        {
            foreach (string name in names)
            {
                var s = state.OptimizerState[name];
                var step = torch.tensor(s.Step, dtype: ScalarType.Int64);
                steps.Add(step);
                optimizer.Add(("exp_avg." + name, s.ExpAvg));
                optimizer.Add(("exp_avg_sq." + name, s.ExpAvgSq));
                optimizer.Add(("step." + name, step));
            }
            TensorFiles.Write(Path.Combine(folder, OptimizerFileName), optimizer);
        }
        finally
        {
            foreach (var step in steps)
                step.Dispose();
        }

        var rng = state.RngStates.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => (p.Key, torch.tensor(p.Value, dtype: ScalarType.Byte))).ToList();
        try
        {
            TensorFiles.Write(Path.Combine(folder, RngFileName), rng);
        }
        finally
        {
            foreach (var (_, tensor) in rng)
                tensor.Dispose();
        }
        AtomicFile.WriteText(Path.Combine(folder, StateFileName), writer => writer.Write(StateJson(state)));
    }

    private static string StateJson(TrainingState state)
    {
        var settings = new JsonObject();
        foreach (var (key, value) in state.Settings.OrderBy(p => p.Key, StringComparer.Ordinal))
            settings[key] = value;
        var root = new JsonObject
        {
            ["format"] = StateFormat,
            ["version"] = FormatVersion,
            ["step"] = state.Step,
            ["epoch"] = state.Epoch,
            ["scheduler_step"] = state.SchedulerStep,
            ["data_position"] = state.DataPosition,
            // Kept as the exact text written to the metrics log, so a resumed log is byte-identical.
            ["log_history"] = new JsonArray(state.LogHistory.Select(line => (JsonNode?)JsonValue.Create(line)).ToArray()),
            ["settings"] = settings,
        };
        return root.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    private sealed record StateJsonContent(double Epoch, int SchedulerStep, string DataPosition, IReadOnlyList<string> LogHistory,
        IReadOnlyDictionary<string, string> Settings);

    private static StateJsonContent ReadStateJson(string path, int step)
    {
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(File.ReadAllText(path, Utf8));
        }
        catch (JsonException e)
        {
            throw Invalid(path, $"is not valid JSON ({e.Message})");
        }
        try
        {
            if (root?["format"]?.GetValue<string>() != StateFormat || root["version"]?.GetValue<int>() != FormatVersion)
                throw Invalid(path, $"is not a version-{FormatVersion} {StateFormat} file");
            if (root["step"]!.GetValue<int>() != step)
                throw Invalid(path, $"records step {root["step"]} but belongs to checkpoint step {step}");
            var settings = root["settings"]!.AsObject().ToDictionary(p => p.Key, p => p.Value!.GetValue<string>(), StringComparer.Ordinal);
            return new StateJsonContent(
                root["epoch"]!.GetValue<double>(),
                root["scheduler_step"]!.GetValue<int>(),
                root["data_position"]!.GetValue<string>(),
                root["log_history"]!.AsArray().Select(n => n!.GetValue<string>()).ToList(),
                settings);
        }
        catch (Exception e) when (e is InvalidOperationException or NullReferenceException or FormatException or KeyNotFoundException)
        {
            throw Invalid(path, $"lacks a field or has one of the wrong type ({e.Message})");
        }
    }

    private static Dictionary<string, Tensor> ReadTensors(string path, List<Dictionary<string, Tensor>> opened)
    {
        try
        {
            var tensors = TensorFiles.Read(path);
            opened.Add(tensors);
            return tensors;
        }
        catch (CheckpointException e)
        {
            throw new TrainingCheckpointException(TrainingCheckpointError.ContentInvalid, path, $"{e.Message} Resume from another checkpoint.", e);
        }
    }

    private static Dictionary<string, AdamWParameterState> OptimizerStateFrom(string path, IReadOnlyDictionary<string, Tensor> weights,
        IReadOnlyDictionary<string, Tensor> tensors)
    {
        var result = new Dictionary<string, AdamWParameterState>(StringComparer.Ordinal);
        foreach (string name in weights.Keys)
        {
            if (!tensors.TryGetValue("exp_avg." + name, out var expAvg) || !tensors.TryGetValue("exp_avg_sq." + name, out var expAvgSq)
                || !tensors.TryGetValue("step." + name, out var step) || step.dtype != ScalarType.Int64 || step.numel() != 1)
                throw Invalid(path, $"lacks exp_avg, exp_avg_sq or an I64 step for trainable parameter \"{name}\"");
            result[name] = new AdamWParameterState(expAvg, expAvgSq, step.item<long>());
        }
        int expected = weights.Count * 3;
        if (tensors.Count != expected)
            throw Invalid(path, $"holds {tensors.Count} tensors; expected {expected} (exp_avg, exp_avg_sq, step for each of {weights.Count} trainable parameters)");
        return result;
    }

    private static string MarkerJson(int step, IReadOnlyList<(string Name, (long Bytes, string Sha256) File)> manifest)
    {
        var files = new JsonArray();
        foreach (var (name, (bytes, sha256)) in manifest)
            files.Add(new JsonObject { ["name"] = name, ["bytes"] = bytes, ["sha256"] = sha256 });
        var root = new JsonObject { ["format"] = MarkerFormat, ["version"] = FormatVersion, ["step"] = step, ["files"] = files };
        return root.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    /// <summary>The marker's file list after checking that it parses, names this step, and that every file exists at its recorded size.</summary>
    private static List<(string File, long Bytes, string Sha256)> ReadMarker(string folder, int step)
    {
        if (!Directory.Exists(folder))
            throw new TrainingCheckpointException(TrainingCheckpointError.NotFound, folder, $"{folder} does not exist.");
        string markerPath = Path.Combine(folder, MarkerFileName);
        if (!File.Exists(markerPath))
            throw new TrainingCheckpointException(TrainingCheckpointError.MarkerMissing, folder,
                $"{folder} has no {MarkerFileName}: its save was interrupted, so its files may be incomplete. It is ignored; delete it or let pruning remove it.");
        var files = new List<(string, long, string)>();
        try
        {
            var root = JsonNode.Parse(File.ReadAllText(markerPath, Utf8));
            if (root?["format"]?.GetValue<string>() != MarkerFormat || root["version"]?.GetValue<int>() != FormatVersion)
                throw MarkerInvalid(markerPath, $"is not a version-{FormatVersion} {MarkerFormat} marker");
            if (root["step"]!.GetValue<int>() != step)
                throw MarkerInvalid(markerPath, $"names step {root["step"]} but sits in the folder of step {step}");
            foreach (var entry in root["files"]!.AsArray())
                files.Add((entry!["name"]!.GetValue<string>(), entry["bytes"]!.GetValue<long>(), entry["sha256"]!.GetValue<string>()));
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or NullReferenceException or FormatException)
        {
            throw MarkerInvalid(markerPath, $"cannot be read ({e.Message})");
        }
        var listed = files.Select(f => f.Item1).ToHashSet(StringComparer.Ordinal);
        if (!DataFiles.All(listed.Contains) || listed.Count != DataFiles.Length)
            throw MarkerInvalid(markerPath, $"lists [{string.Join(", ", listed)}]; expected exactly [{string.Join(", ", DataFiles)}]");
        foreach (var (file, bytes, _) in files)
        {
            string path = Path.Combine(folder, file);
            if (!File.Exists(path))
                throw new TrainingCheckpointException(TrainingCheckpointError.FileMissing, path,
                    $"{path} is missing although the completion marker lists it. The checkpoint is unusable; resume from an earlier one.");
            long actual = new FileInfo(path).Length;
            if (actual != bytes)
                throw new TrainingCheckpointException(TrainingCheckpointError.FileSizeMismatch, path,
                    $"{path} is {actual} bytes but the completion marker recorded {bytes}; it was truncated or replaced. Resume from an earlier checkpoint.");
        }
        return files;
    }

    private static TrainingCheckpointException MarkerInvalid(string path, string what) =>
        new(TrainingCheckpointError.MarkerInvalid, path, $"{path} {what}. The checkpoint is ignored; delete it if it is not needed.");

    private static TrainingCheckpointException Invalid(string path, string what) =>
        new(TrainingCheckpointError.ContentInvalid, path, $"{path} {what}. Resume from another checkpoint.");

    private static (long Bytes, string Sha256) Describe(string path) => (new FileInfo(path).Length, Sha256Of(path));

    private static string Sha256Of(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    private void RemoveLeftoverTemporaryFolders()
    {
        foreach (string folder in Directory.EnumerateDirectories(Folder, "." + Prefix + "*"))
            TryRemove(folder);
    }

    /// <summary>Marker first, so a half-deleted folder is never taken for a complete checkpoint.</summary>
    private static void RemoveFolder(string folder)
    {
        string marker = Path.Combine(folder, MarkerFileName);
        if (File.Exists(marker))
            File.Delete(marker);
        Directory.Delete(folder, recursive: true);
    }

    private static void TryRemove(string folder)
    {
        try
        {
            if (Directory.Exists(folder))
                RemoveFolder(folder);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The original failure matters more; a leftover folder without a marker is skipped and removed later.
        }
    }
}
