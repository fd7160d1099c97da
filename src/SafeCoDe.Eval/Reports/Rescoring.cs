using SafeCoDe.Eval.Runs;
using SafeCoDe.Eval.Scoring;

namespace SafeCoDe.Eval.Reports;

/// <summary><c>safecode eval score RUN --scorer …</c>: scores every answer of a finished RUN again, without generating.</summary>
public static class Rescoring
{
    /// <summary>Re-scores all records (cached judge replies cost nothing), rewrites records.jsonl atomically and records the scorer in run.json.</summary>
    public static async Task<(int answers, int errors)> RescoreAsync(string dir, IScorer scorer, IProgress<RunProgress>? progress = null, CancellationToken cancel = default)
    {
        var manifest = RunStore.ReadManifest(dir);
        var records = RunStore.ReadRecords(dir);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var updated = new List<RunRecord>(records.Count);
        int answers = 0, errors = 0;
        foreach (var r in records)
        {
            var outputs = new List<RunOutput>();
            foreach (var o in r.Outputs)
            {
                var scored = await EvalRunner.ScoreOutputAsync(scorer, r.Benchmark, r.Id, r.Groups, r.Labels, o, null, cancel).ConfigureAwait(false);
                answers++;
                if (scored.Score?.Label == "error") errors++;
                outputs.Add(scored);
            }
            updated.Add(r with { Outputs = outputs });
            progress?.Report(new RunProgress(updated.Count, records.Count, 0, 0, 0, clock.Elapsed, r.Id));
        }
        RunStore.RewriteRecords(dir, updated);
        RunStore.WriteManifest(dir, manifest with { Scorer = scorer.Name });
        return (answers, errors);
    }
}
