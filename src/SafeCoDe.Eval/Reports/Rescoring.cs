using SafeCoDe.Eval.Benchmarks;
using SafeCoDe.Eval.Runs;
using SafeCoDe.Eval.Scoring;

namespace SafeCoDe.Eval.Reports;

/// <summary><c>safecode eval score RUN --scorer …</c>: scores every answer of a finished RUN again, without generating.</summary>
public static class Rescoring
{
    /// <summary>
    /// Re-scores all records (cached judge replies cost nothing) and records the scorer in run.json: in place
    /// (records.jsonl rewritten atomically), or — with <paramref name="outDir"/> — into a new RUN folder that copies the
    /// run's answers and problems with the new scores and names the run it came from, leaving <paramref name="dir"/>
    /// untouched (so the two scorers can be compared with <c>eval compare</c>). <paramref name="concurrency"/> answers
    /// are scored at a time (endpoint judges); the records keep their order. Images a judge must see are re-read from
    /// the benchmark (<see cref="RunImages"/>), never from the paths the records name.
    /// </summary>
    /// <param name="data">The benchmark copy to re-read images from (default: the run's recorded data folder).</param>
    /// <param name="outDir">A new RUN folder for the re-scored run (it must not hold a run); null: re-score in place.</param>
    /// <exception cref="RunStoreException"><paramref name="outDir"/> is the run itself or already holds a run.</exception>
    public static async Task<(int answers, int errors)> RescoreAsync(string dir, IScorer scorer, IProgress<RunProgress>? progress = null,
        CancellationToken cancel = default, int concurrency = 1, string? data = null, string? outDir = null)
    {
        var manifest = RunStore.ReadManifest(dir);
        var records = RunStore.ReadRecords(dir);
        if (outDir is not null) CheckNewRun(dir, outDir);
        var images = RunImages.Read(manifest, data, records.Where(r => EvalRunner.NeedsImage(scorer, r.Benchmark, r.Id, r.Groups)).Select(r => r.Id));
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var updated = new RunRecord[records.Count];
        int finished = 0, answers = 0, errors = 0;
        await Parallel.ForEachAsync(Enumerable.Range(0, records.Count),
            new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, concurrency), CancellationToken = cancel },
            async (i, ct) =>
            {
                var r = records[i];
                var outputs = new List<RunOutput>();
                foreach (var o in r.Outputs)
                {
                    var scored = await ScoreAsync(scorer, images, r, o, ct).ConfigureAwait(false);
                    Interlocked.Increment(ref answers);
                    if (scored.Score?.Label == "error") Interlocked.Increment(ref errors);
                    outputs.Add(scored);
                }
                updated[i] = r with { Outputs = outputs };
                int n = Interlocked.Increment(ref finished);
                progress?.Report(new RunProgress(n, records.Count, 0, 0, 0, clock.Elapsed, r.Id));
            }).ConfigureAwait(false);
        var rescored = manifest with { Scorer = scorer.Name, ScorerFormat = (scorer as GuardScorer)?.Format.Name };
        if (outDir is null)
        {
            RunStore.RewriteRecords(dir, updated);
            RunStore.WriteManifest(dir, rescored);
            return (answers, errors);
        }
        CheckNewRun(dir, outDir); // again: nothing may have started a run there while scoring
        Directory.CreateDirectory(outDir);
        RunStore.RewriteProblems(outDir, RunStore.ReadProblems(dir));
        RunStore.RewriteRecords(outDir, updated);
        RunStore.WriteManifest(outDir, rescored with { RescoredFrom = Path.GetFullPath(dir), Created = DateTime.UtcNow.ToString("o") });
        return (answers, errors);
    }

    /// <summary>A re-scored copy goes into a folder of its own that holds no run yet.</summary>
    /// <exception cref="RunStoreException">It is the run itself, or holds a run.</exception>
    public static void CheckNewRun(string dir, string outDir)
    {
        if (string.Equals(Path.TrimEndingDirectorySeparator(Path.GetFullPath(dir)), Path.TrimEndingDirectorySeparator(Path.GetFullPath(outDir)), StringComparison.Ordinal))
            throw new RunStoreException($"--out {outDir} is the run being scored: leave --out out to re-score in place, or name a new folder");
        foreach (var file in new[] { RunStore.ManifestFile, RunStore.RecordsFile, RunStore.ProblemsFile })
            if (File.Exists(Path.Combine(outDir, file)))
                throw new RunStoreException($"--out {outDir} already holds a run ({file}); a re-scored copy goes into a new folder, and a run there is never replaced");
    }

    private static async Task<RunOutput> ScoreAsync(IScorer scorer, RunImages images, RunRecord r, RunOutput o, CancellationToken ct)
    {
        ImageRef? image = null;
        if (EvalRunner.NeedsImage(scorer, r.Benchmark, r.Id, r.Groups) && !images.TryGet(r.Id, o.Key, out image, out var why))
            return o with
            {
                Score = new ScoreResult
                {
                    Scorer = scorer.Name, Rubric = EvalBenchmarks.Get(r.Benchmark).RubricFor(r.Id, r.Groups).Name, Label = "error", Parsed = false, Error = why,
                    Format = (scorer as GuardScorer)?.Format.Name,
                },
            };
        return await EvalRunner.ScoreOutputAsync(scorer, r.Benchmark, r.Id, r.Groups, r.Labels, o, image, ct).ConfigureAwait(false);
    }
}

/// <summary>
/// The images of a run's samples, read again from the benchmark copy through its reader (so every rule of
/// <see cref="DataFiles"/> applies): a path in records.jsonl is never opened.
/// </summary>
public sealed class RunImages
{
    private readonly Dictionary<(string Id, string Key), ImageRef?> _images = new();
    private readonly Dictionary<string, string> _missing = new(StringComparer.Ordinal);
    private readonly string? _root;

    private RunImages(string? root) => _root = root;

    /// <summary>
    /// Reads the samples <paramref name="ids"/> of the run's benchmark from <paramref name="data"/> (default: the
    /// run's recorded data folder). No ids: nothing is read.
    /// </summary>
    /// <exception cref="RunStoreException">Images are needed but the benchmark copy cannot be read.</exception>
    public static RunImages Read(RunManifest manifest, string? data, IEnumerable<string> ids)
    {
        var wanted = new HashSet<string>(ids, StringComparer.Ordinal);
        var root = data ?? manifest.DataRoot ?? manifest.Data;
        var images = new RunImages(root);
        if (wanted.Count == 0) return images;
        if (root is null) throw new RunStoreException($"the judge sees each sample's image, but run.json records no data folder to re-read it from: pass --data PATH");
        IEnumerable<ReadItem> items;
        try { items = BenchmarkReaders.Get(manifest.Benchmark).Read(root, ReaderSelection.All with { Include = wanted.Contains }); }
        catch (BenchmarkLayoutException e)
        {
            throw new RunStoreException($"the judge sees each sample's image, re-read from the benchmark at '{root}', which cannot be read: {e.Message} (pass --data PATH)");
        }
        foreach (var item in items)
        {
            if (item.Problem is { } p) { images._missing[p.Id] = p.Reason; continue; }
            foreach (var prompt in item.Sample!.Prompts) images._images[(item.Sample.Id, prompt.Key)] = prompt.Image;
        }
        return images;
    }

    /// <summary>The image of one answer; false and why when the benchmark no longer has the sample (or it is a problem there).</summary>
    public bool TryGet(string id, string key, out ImageRef? image, out string why)
    {
        why = "";
        if (_images.TryGetValue((id, key), out image)) return true;
        why = _missing.TryGetValue(id, out var reason)
            ? $"the image of sample '{id}' could not be re-read from the benchmark at '{_root}': {reason}"
            : $"sample '{id}' ({key}) is not in the benchmark at '{_root}', so its image cannot be re-read";
        return false;
    }
}
