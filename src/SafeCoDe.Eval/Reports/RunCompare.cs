using System.Text;
using System.Text.Json.Nodes;
using SafeCoDe.Eval.Metrics;
using SafeCoDe.Eval.Runs;

namespace SafeCoDe.Eval.Reports;

/// <summary><c>safecode eval compare RUN_A RUN_B</c>: per-metric deltas and the answers whose outcome flipped.</summary>
public static class RunCompare
{
    /// <summary>One metric in both runs, with the paired test on the answers both counted (null when a run lacks the row or its answers).</summary>
    public sealed record Delta(string Metric, Rate? A, Rate? B, PairedTest? Test = null)
    {
        /// <summary>B − A in percentage points (null when either is missing).</summary>
        public double? Points => A?.Value is { } a && B?.Value is { } b ? (b - a) * 100 : null;
    }

    /// <summary>An answer judged differently in the two runs.</summary>
    public sealed record Flip(string Id, string Key, string A, string B);

    /// <summary>The comparison.</summary>
    public sealed record Result(RunMetrics A, RunMetrics B, IReadOnlyList<Delta> Deltas, IReadOnlyList<Flip> Flips, int Common);

    /// <summary>
    /// An answer's outcome in the benchmark's terms (its descriptor's <see cref="Benchmarks.IBenchmark.Outcome"/>);
    /// "unscored" and "error" for answers without a usable score.
    /// </summary>
    public static string Outcome(string benchmark, RunOutput o)
    {
        if (o.Score is not { } s) return "unscored";
        if (s.Label == "error") return "error";
        if (s.Label == SafeCoDe.Eval.Scoring.ScoreResult.UnscoredLabel) return "unscored";
        return Benchmarks.EvalBenchmarks.Get(benchmark).Outcome(o, s);
    }

    /// <summary>Compares two RUN folders.</summary>
    public static Result Compare(string runA, string runB)
    {
        var a = MetricsCalculator.ForRun(runA);
        var b = MetricsCalculator.ForRun(runB);
        if (a.Benchmark != b.Benchmark) throw new RunStoreException($"{runA} is {a.Benchmark}, {runB} is {b.Benchmark}: compare runs of one benchmark");
        var deltas = Deltas(a, b);
        var recA = RunStore.ReadRecords(runA).ToDictionary(r => r.Id);
        var flips = new List<Flip>();
        int common = 0;
        foreach (var rb in RunStore.ReadRecords(runB))
        {
            if (!recA.TryGetValue(rb.Id, out var ra)) continue;
            common++;
            foreach (var ob in rb.Outputs)
            {
                var oa = ra.Outputs.FirstOrDefault(o => o.Key == ob.Key);
                if (oa is null) continue;
                string x = Outcome(a.Benchmark, oa), y = Outcome(a.Benchmark, ob);
                if (x != y) flips.Add(new Flip(rb.Id, ob.Key, x, y));
            }
        }
        return new Result(a, b, deltas, flips, common);
    }

    /// <summary>
    /// Every metric of either run, B against A: the rates, and where both rows list their answers the paired test on
    /// the answers both counted (<see cref="ReportStatistics.Paired"/>).
    /// </summary>
    /// <param name="a">The baseline run's metrics.</param>
    /// <param name="b">The other run's metrics.</param>
    /// <param name="include">Only the metric paths it accepts (all by default).</param>
    public static List<Delta> Deltas(RunMetrics a, RunMetrics b, Func<string, bool>? include = null) =>
        a.Rows.Select(r => r.Path).Union(b.Rows.Select(r => r.Path)).Where(p => include?.Invoke(p) ?? true).Select(p =>
        {
            var ra = a.Rows.FirstOrDefault(r => r.Path == p);
            var rb = b.Rows.FirstOrDefault(r => r.Path == p);
            var test = ra?.Units is { } ua && rb?.Units is { } ub ? ReportStatistics.Paired(ReportStatistics.Match(ua, ub)) : null;
            return new Delta(p, ra?.Rate, rb?.Rate, test);
        }).ToList();

    /// <summary>"+12.5 [+3.1, +21.0] p=0.021 *" (p below 0.0001 as "p&lt;0.0001"): a paired delta in points, its interval, p-value and significance mark.</summary>
    public static string DeltaCell(PairedTest t)
    {
        var c = System.Globalization.CultureInfo.InvariantCulture;
        string P(double v) => (v * 100).ToString("+0.0;-0.0;0.0", c);
        var mark = t.Mark.Length > 0 ? " " + t.Mark : "";
        var p = t.P < 0.0001 ? "p<0.0001" : "p=" + t.P.ToString("0.####", c);
        return $"{P(t.Delta)} [{P(t.Ci.Low)}, {P(t.Ci.High)}] {p}{mark}";
    }

    /// <summary>Markdown text of a comparison.</summary>
    public static string Markdown(Result r, int maxFlips = 200)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"# {r.A.Benchmark}: {Charts.Label(r.A)} ({r.A.Run}) vs {Charts.Label(r.B)} ({r.B.Run})").AppendLine();
        if (r.A.Scorer != r.B.Scorer) sb.AppendLine($"Scored by A: {r.A.Scorer ?? "none"}; B: {r.B.Scorer ?? "none"}.").AppendLine();
        sb.AppendLine($"{r.Common} samples in both runs; {r.Flips.Count} answer(s) flipped.").AppendLine();
        sb.AppendLine("| metric | A | B | Δ (points) | paired Δ on common answers [95 % interval], p | test | n paired |").AppendLine("|---|---:|---:|---:|---:|---|---:|");
        foreach (var d in r.Deltas)
            sb.AppendLine($"| {d.Metric} | {d.A?.ToString() ?? "–"} | {d.B?.ToString() ?? "–"} | {(d.Points is { } p ? p.ToString("+0.0;-0.0;0.0", System.Globalization.CultureInfo.InvariantCulture) : "–")} | {(d.Test is { } t ? DeltaCell(t) : "–")} | {d.Test?.Test ?? "–"} | {d.Test?.N.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "–"} |");
        sb.AppendLine().AppendLine("Paired Δ: B − A on the answers both runs counted, interval by paired bootstrap over the benchmark's clusters; "
            + "p by exact McNemar when each cluster is one answer, else by the paired bootstrap; * p < 0.05, ** p < 0.01, *** p < 0.001.");
        if (r.Flips.Count > 0)
        {
            sb.AppendLine().AppendLine("| sample | answer | A | B |").AppendLine("|---|---|---|---|");
            foreach (var f in r.Flips.Take(maxFlips)) sb.AppendLine($"| {f.Id} | {f.Key} | {f.A} | {f.B} |");
            if (r.Flips.Count > maxFlips) sb.AppendLine($"| … {r.Flips.Count - maxFlips} more | | | |");
        }
        return sb.ToString();
    }

    /// <summary>The comparison as JSON.</summary>
    public static string Json(Result r) => new JsonObject
    {
        ["benchmark"] = r.A.Benchmark, ["a"] = r.A.Run, ["b"] = r.B.Run, ["scorer_a"] = r.A.Scorer, ["scorer_b"] = r.B.Scorer, ["n_common"] = r.Common,
        ["deltas"] = new JsonArray(r.Deltas.Select(d => (JsonNode)new JsonObject
        {
            ["metric"] = d.Metric, ["a"] = d.A?.Value, ["b"] = d.B?.Value, ["delta"] = d.Points / 100,
            ["n_a"] = d.A?.N, ["n_b"] = d.B?.N, ["paired"] = d.Test?.ToJson(),
        }).ToArray()),
        ["statistics"] = ReportStatistics.Settings(),
        ["flips"] = new JsonArray(r.Flips.Select(f => (JsonNode)new JsonObject { ["id"] = f.Id, ["key"] = f.Key, ["a"] = f.A, ["b"] = f.B }).ToArray()),
    }.ToJsonString(EvalJson.Indented);
}
