using System.Text;
using System.Text.Json;

namespace SafeCoDe.Eval.Runs;

/// <summary>A RUN folder does not fit the command: other options, a missing run.json, or a broken file.</summary>
public sealed class RunStoreException(string message) : InvalidOperationException(message);

/// <summary>
/// A run folder: run.json, records.jsonl (one finished sample per line) and problems.jsonl. Records are appended
/// and flushed one at a time, so a process killed at any moment leaves complete lines plus at most one torn tail,
/// which opening the store cuts off; finished ids (records and problems) are skipped when a run resumes.
/// </summary>
public sealed class RunStore : IDisposable
{
    /// <summary>File names inside a RUN folder.</summary>
    public const string ManifestFile = "run.json", RecordsFile = "records.jsonl", ProblemsFile = "problems.jsonl";

    private readonly FileStream _records;
    private readonly FileStream _problems;
    private readonly HashSet<string> _recordIds;
    private readonly HashSet<string> _problemIds;

    /// <summary>The RUN folder.</summary>
    public string Dir { get; }
    /// <summary>The run's manifest.</summary>
    public RunManifest Manifest { get; private set; }
    /// <summary>Bytes of a torn last line (and broken or repeated lines) removed when the store was opened.</summary>
    public long RepairedBytes { get; }
    /// <summary>Ids with a record.</summary>
    public IReadOnlySet<string> RecordIds => _recordIds;
    /// <summary>Ids reported as problems.</summary>
    public IReadOnlySet<string> ProblemIds => _problemIds;

    /// <summary>True when the id has a record or a problem (it is not run again).</summary>
    public bool IsFinished(string id) => _recordIds.Contains(id) || _problemIds.Contains(id);

    private RunStore(string dir, RunManifest manifest, long repaired, HashSet<string> recordIds, HashSet<string> problemIds)
    {
        Dir = dir; Manifest = manifest; RepairedBytes = repaired; _recordIds = recordIds; _problemIds = problemIds;
        _records = new FileStream(Path.Combine(dir, RecordsFile), FileMode.Append, FileAccess.Write, FileShare.Read);
        _problems = new FileStream(Path.Combine(dir, ProblemsFile), FileMode.Append, FileAccess.Write, FileShare.Read);
    }

    /// <summary>
    /// Creates the RUN folder for <paramref name="manifest"/>, or reopens it to resume when its run.json has the same
    /// options hash. A different hash (or scorer) is refused with a message naming the options that differ.
    /// </summary>
    public static RunStore OpenOrCreate(string dir, RunManifest manifest)
    {
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, ManifestFile);
        if (File.Exists(path))
        {
            var existing = ReadManifest(dir);
            if (existing.OptionsHash != manifest.OptionsHash)
                throw new RunStoreException($"{dir} holds a run with other options (hash {existing.OptionsHash}, this command {manifest.OptionsHash}): {Differences(existing, manifest)}. Use another --out, or rerun with the same options to resume");
            if (existing.Scorer != manifest.Scorer)
                throw new RunStoreException($"{dir} was scored with '{existing.Scorer ?? "none"}', this command asks for '{manifest.Scorer ?? "none"}': resume with the same --scorer, or re-score the finished run with 'safecode eval score {dir} --scorer {manifest.Scorer}'");
            manifest = existing with { Shard = manifest.Shard ?? existing.Shard };
        }
        else if (File.Exists(Path.Combine(dir, RecordsFile)) && new FileInfo(Path.Combine(dir, RecordsFile)).Length > 0)
            throw new RunStoreException($"{dir} has records.jsonl but no run.json: not a run folder this command can resume");
        WriteManifest(dir, manifest);
        return Open(dir, manifest);
    }

    /// <summary>Opens an existing RUN folder (to append scores or read it), repairing a torn tail.</summary>
    public static RunStore OpenExisting(string dir) => Open(dir, ReadManifest(dir));

    private static RunStore Open(string dir, RunManifest manifest)
    {
        long repaired = Repair(Path.Combine(dir, RecordsFile), l => JsonSerializer.Deserialize<RunRecord>(l, EvalJson.Line)?.Id, out var recordIds);
        repaired += Repair(Path.Combine(dir, ProblemsFile), l => JsonSerializer.Deserialize<ProblemRecord>(l, EvalJson.Line)?.Id, out var problemIds);
        return new RunStore(dir, manifest, repaired, recordIds, problemIds);
    }

    /// <summary>Appends one finished sample and flushes it (one write of one complete line).</summary>
    public void Append(RunRecord record)
    {
        if (!_recordIds.Add(record.Id)) throw new InvalidOperationException($"sample '{record.Id}' is already in {RecordsFile}");
        WriteLine(_records, JsonSerializer.Serialize(record, EvalJson.Line));
    }

    /// <summary>Appends one problem (once per id) and flushes it.</summary>
    public void AddProblem(ProblemRecord problem)
    {
        if (_recordIds.Contains(problem.Id) || !_problemIds.Add(problem.Id)) return;
        WriteLine(_problems, JsonSerializer.Serialize(problem, EvalJson.Line));
    }

    private static void WriteLine(FileStream f, string json)
    {
        var bytes = Encoding.UTF8.GetBytes(json + "\n");
        f.Write(bytes);
        f.Flush(flushToDisk: false); // in the OS once written: a killed process loses nothing it flushed
    }

    /// <summary>Replaces the manifest (e.g. after re-scoring).</summary>
    public void UpdateManifest(RunManifest manifest) { WriteManifest(Dir, manifest); Manifest = manifest; }

    /// <summary>Reads run.json.</summary>
    public static RunManifest ReadManifest(string dir)
    {
        var path = Path.Combine(dir, ManifestFile);
        if (!File.Exists(path)) throw new RunStoreException($"{dir}: no {ManifestFile} (not a RUN folder written by 'safecode eval run')");
        try { return JsonSerializer.Deserialize<RunManifest>(File.ReadAllText(path), EvalJson.Indented) ?? throw new RunStoreException($"{path}: empty"); }
        catch (JsonException e) { throw new RunStoreException($"{path}: not a valid run manifest: {e.Message}"); }
    }

    /// <summary>Writes run.json atomically (temporary file, then rename).</summary>
    public static void WriteManifest(string dir, RunManifest manifest)
    {
        Directory.CreateDirectory(dir);
        AtomicWrite(Path.Combine(dir, ManifestFile), JsonSerializer.Serialize(manifest, EvalJson.Indented) + "\n");
    }

    /// <summary>Every record of a RUN folder, in file order (a torn tail or a repeated id is skipped).</summary>
    public static List<RunRecord> ReadRecords(string dir) => ReadLines<RunRecord>(Path.Combine(dir, RecordsFile), r => r.Id);

    /// <summary>Every problem of a RUN folder, in file order.</summary>
    public static List<ProblemRecord> ReadProblems(string dir) => ReadLines<ProblemRecord>(Path.Combine(dir, ProblemsFile), p => p.Id);

    /// <summary>Replaces records.jsonl atomically (re-scoring, merging). No store may be open on the folder.</summary>
    public static void RewriteRecords(string dir, IEnumerable<RunRecord> records) =>
        AtomicWrite(Path.Combine(dir, RecordsFile), string.Concat(records.Select(r => JsonSerializer.Serialize(r, EvalJson.Line) + "\n")));

    /// <summary>Replaces problems.jsonl atomically.</summary>
    public static void RewriteProblems(string dir, IEnumerable<ProblemRecord> problems) =>
        AtomicWrite(Path.Combine(dir, ProblemsFile), string.Concat(problems.Select(p => JsonSerializer.Serialize(p, EvalJson.Line) + "\n")));

    private static List<T> ReadLines<T>(string path, Func<T, string> id)
    {
        var list = new List<T>();
        if (!File.Exists(path)) return list;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var text = File.ReadAllText(path, Encoding.UTF8);
        int end = text.LastIndexOf('\n');
        foreach (var line in (end < 0 ? "" : text[..end]).Split('\n'))
        {
            if (line.Length == 0) continue;
            T? item;
            try { item = JsonSerializer.Deserialize<T>(line, EvalJson.Line); } catch (JsonException) { continue; }
            if (item is not null && seen.Add(id(item))) list.Add(item);
        }
        return list;
    }

    /// <summary>Cuts a torn last line; drops broken or repeated lines (rewriting the file only then). Returns bytes removed.</summary>
    private static long Repair(string path, Func<string, string?> id, out HashSet<string> ids)
    {
        ids = new HashSet<string>(StringComparer.Ordinal);
        if (!File.Exists(path)) return 0;
        var bytes = File.ReadAllBytes(path);
        int end = Array.LastIndexOf(bytes, (byte)'\n') + 1; // complete lines end here
        var text = Encoding.UTF8.GetString(bytes, 0, end);
        var kept = new StringBuilder();
        bool dropped = false;
        foreach (var line in text.Split('\n'))
        {
            if (line.Length == 0) continue;
            string? key = null;
            try { key = id(line); } catch (JsonException) { }
            if (key is null || !ids.Add(key)) { dropped = true; continue; }
            kept.Append(line).Append('\n');
        }
        if (dropped) { AtomicWrite(path, kept.ToString()); return bytes.Length - Encoding.UTF8.GetByteCount(kept.ToString()); }
        if (end < bytes.Length) { using var f = new FileStream(path, FileMode.Open, FileAccess.Write); f.SetLength(end); }
        return bytes.Length - end;
    }

    private static void AtomicWrite(string path, string text)
    {
        var tmp = path + ".tmp";
        File.WriteAllText(tmp, text, new UTF8Encoding(false));
        File.Move(tmp, path, overwrite: true);
    }

    private static string Differences(RunManifest a, RunManifest b)
    {
        var diffs = new List<string>();
        if (a.ModelFingerprint != b.ModelFingerprint) diffs.Add($"model {a.ModelFingerprint} vs {b.ModelFingerprint}");
        if (a.Benchmark != b.Benchmark) diffs.Add($"benchmark {a.Benchmark} vs {b.Benchmark}");
        foreach (var k in a.Options.Keys.Union(b.Options.Keys).Order(StringComparer.Ordinal))
        {
            a.Options.TryGetValue(k, out var x); b.Options.TryGetValue(k, out var y);
            if (x != y) diffs.Add($"{FlagOf(k)} {x ?? "(unset)"} vs {y ?? "(unset)"}");
        }
        return diffs.Count == 0 ? "options differ" : string.Join(", ", diffs);
    }

    /// <summary>The command-line flag of a run.json option key (<c>decoding.lambda_boost</c> → <c>--lambda-boost</c>), so the message names a flag the user can type.</summary>
    internal static string FlagOf(string key) =>
        "--" + (key.StartsWith(RunOptions.DecodingPrefix, StringComparison.Ordinal) ? key[RunOptions.DecodingPrefix.Length..] : key).Replace('_', '-');

    /// <summary>Closes the files.</summary>
    public void Dispose() { _records.Dispose(); _problems.Dispose(); }
}
