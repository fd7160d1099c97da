using SafeCoDe.Eval.Runs;
using SafeCoDe.Eval.Scoring;

namespace SafeCoDe.Eval.Reports;

/// <summary><c>safecode eval score RUN --scorer …</c>: scores every answer of a finished RUN again, without generating.</summary>
public static class Rescoring
{
    /// <summary>
    /// Re-scores all records (cached judge replies cost nothing), rewrites records.jsonl atomically and records the
    /// scorer in run.json. <paramref name="concurrency"/> answers are scored at a time (endpoint judges); the
    /// records keep their order.
    /// </summary>
    public static async Task<(int answers, int errors)> RescoreAsync(string dir, IScorer scorer, IProgress<RunProgress>? progress = null,
        CancellationToken cancel = default, int concurrency = 1)
    {
        var manifest = RunStore.ReadManifest(dir);
        var records = RunStore.ReadRecords(dir);
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
                    var scored = await EvalRunner.ScoreOutputAsync(scorer, r.Benchmark, r.Id, r.Groups, r.Labels, o, null, ct).ConfigureAwait(false);
                    Interlocked.Increment(ref answers);
                    if (scored.Score?.Label == "error") Interlocked.Increment(ref errors);
                    outputs.Add(scored);
                }
                updated[i] = r with { Outputs = outputs };
                int n = Interlocked.Increment(ref finished);
                progress?.Report(new RunProgress(n, records.Count, 0, 0, 0, clock.Elapsed, r.Id));
            }).ConfigureAwait(false);
        RunStore.RewriteRecords(dir, updated);
        RunStore.WriteManifest(dir, manifest with { Scorer = scorer.Name });
        return (answers, errors);
    }
}
