using System.Text;
using System.Text.Json;
using SafeCoDe.Torch.Runtime;

namespace SafeCoDe.Eval.Runs;

/// <summary>A RUN folder does not fit the command: other options, a missing run.json, or a broken file.</summary>
public sealed class RunStoreException(string message) : InvalidOperationException(message);

/// <summary>
/// A run folder: run.json, records.jsonl (one finished sample per line) and problems.jsonl. Records are appended
/// and flushed one at a time, so a process killed at any moment leaves complete lines plus at most one torn tail.
/// Opening the store repairs only that torn tail (its bytes are saved next to the file first); any other line that
/// is not a valid record stops the resume with a message naming the line, and nothing else is ever removed. A
/// run.json whose options no longer match its hash is refused. Finished ids (records and problems) are skipped when
/// a run resumes.
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
    /// <summary>Bytes of a torn last line removed when the store was opened (saved in a <c>.torn-*</c> file first).</summary>
    public long RepairedBytes { get; }
    /// <summary>What opening the store repaired, one line each (naming the file and where the cut bytes were saved).</summary>
    public IReadOnlyList<string> Repairs { get; }
    /// <summary>Ids with a record.</summary>
    public IReadOnlySet<string> RecordIds => _recordIds;
    /// <summary>Ids reported as problems.</summary>
    public IReadOnlySet<string> ProblemIds => _problemIds;

    /// <summary>True when the id has a record or a problem (it is not run again).</summary>
    public bool IsFinished(string id) => _recordIds.Contains(id) || _problemIds.Contains(id);

    private RunStore(string dir, RunManifest manifest, long repaired, IReadOnlyList<string> repairs, HashSet<string> recordIds, HashSet<string> problemIds)
    {
        Dir = dir; Manifest = manifest; RepairedBytes = repaired; Repairs = repairs; _recordIds = recordIds; _problemIds = problemIds;
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
            if (RunManifest.Hash(existing.ModelFingerprint, existing.Benchmark, existing.Options) != existing.OptionsHash)
                throw new RunStoreException($"{path}: its options no longer match its options hash {existing.OptionsHash} (the file was edited): the run is not resumed. Use another --out, or restore run.json");
            if (existing.IdentityHash() != manifest.IdentityHash())
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
        var repairs = new List<string>();
        long repaired = RunFileRepair.Repair(Path.Combine(dir, RecordsFile), l => JsonSerializer.Deserialize<RunRecord>(l, EvalJson.Line)?.Id, repairs, out var recordIds);
        repaired += RunFileRepair.Repair(Path.Combine(dir, ProblemsFile), l => JsonSerializer.Deserialize<ProblemRecord>(l, EvalJson.Line)?.Id, repairs, out var problemIds);
        return new RunStore(dir, manifest, repaired, repairs, recordIds, problemIds);
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
        string text;
        try { text = BoundedFile.ReadAllText(path, InputLimits.Current.MaxDataFileBytes, "run manifest"); }
        catch (Exception e) when (e is InputFileException or InputLimitException or InvalidDataException) { throw new RunStoreException(e.Message); }
        try { return JsonSerializer.Deserialize<RunManifest>(text, EvalJson.Indented) ?? throw new RunStoreException($"{path}: empty"); }
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

    /// <summary>
    /// The valid lines of a run file in file order, first of each id (a torn last line, left by a run still writing
    /// or killed, is skipped). Any other line that is not a valid record is an error naming it: a reader never drops
    /// a record silently (re-scoring rewrites the file from what this returns).
    /// </summary>
    private static List<T> ReadLines<T>(string path, Func<T, string> id)
    {
        var list = new List<T>();
        if (!File.Exists(path)) return list;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (line, item) in RunFileRepair.Lines<T>(path))
            if (item is not null && seen.Add(id(item))) list.Add(item);
        return list;
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
        var (oa, ob) = (a.CurrentOptions(), b.CurrentOptions());
        foreach (var k in oa.Keys.Union(ob.Keys).Order(StringComparer.Ordinal))
        {
            oa.TryGetValue(k, out var x); ob.TryGetValue(k, out var y);
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
