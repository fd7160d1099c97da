using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using SafeCoDe.Eval.Metrics;

namespace SafeCoDe.Eval.Reports;

/// <summary>Markdown tables, PNG charts and the JSON document of <c>safecode eval report</c>.</summary>
public static class ReportWriter
{
    /// <summary>Files a report wrote.</summary>
    public sealed record Written(string Markdown, IReadOnlyList<string> Charts)
    {
        /// <summary>report.json, next to report.md.</summary>
        public string JsonPath => Path.Combine(Path.GetDirectoryName(Markdown)!, "report.json");
    }

    /// <summary>Metrics of each RUN folder.</summary>
    public static List<RunMetrics> Load(IEnumerable<string> runs) => runs.Select(MetricsCalculator.ForRun).ToList();

    /// <summary>One JSON document: <c>{"runs": [ per run: benchmark, mode, scorer, counts, metrics, … ]}</c>.</summary>
    public static string Json(IReadOnlyList<RunMetrics> runs) =>
        new JsonObject { ["runs"] = new JsonArray(runs.Select(r => (JsonNode)r.ToJson()).ToArray()) }.ToJsonString(EvalJson.Indented);

    /// <summary>Writes report.md and the charts into <paramref name="dir"/>.</summary>
    public static Written Write(IReadOnlyList<RunMetrics> runs, string dir)
    {
        Directory.CreateDirectory(dir);
        var charts = new List<string>();
        var md = new StringBuilder();
        md.AppendLine("# SafeCoDe evaluation report").AppendLine();
        md.AppendLine("| run | benchmark | mode | preset | framing | scorer | samples | problems | unparsed replies | scoring errors | unscored |");
        md.AppendLine("|---|---|---|---|---|---|---:|---:|---:|---:|---:|");
        foreach (var r in runs)
            md.AppendLine($"| {Name(r)} | {r.Benchmark} | {r.Mode} | {r.Preset ?? "–"} | {r.Framing ?? "–"} | {r.Scorer ?? "–"} | {r.Samples} | {r.Problems} | {r.Unparsed} | {r.ScoreErrors} | {r.Unscored} |");
        md.AppendLine();
        md.AppendLine("Framing `method` sends SafeCoDe's first-person prompt, `base` each benchmark's own protocol.").AppendLine();
        Scoring(runs, md);
        foreach (var bench in runs.GroupBy(r => r.Benchmark))
        {
            var list = bench.ToList();
            md.AppendLine($"## {bench.Key}").AppendLine();
            md.AppendLine("Rates with their counts (hits/n) and 95 % Wilson intervals [low–high].").AppendLine();
            md.Append("| metric | metric set |");
            foreach (var r in list) md.Append($" {Charts.Label(r)} ({r.Scorer ?? "unscored"}) |");
            md.AppendLine();
            md.Append("|---|---|").Append(string.Concat(list.Select(_ => "---:|"))).AppendLine();
            foreach (var path in list.SelectMany(r => r.Rows).Select(r => r.Path).Distinct())
            {
                var set = list.SelectMany(r => r.Rows).First(x => x.Path == path).MetricSet;
                md.Append($"| {path} | {set} |");
                foreach (var r in list) md.Append($" {Cell(r, path)} |");
                md.AppendLine();
            }
            md.AppendLine();
            foreach (var d in list.SelectMany(r => r.MetricSets).DistinctBy(d => d.Key))
                md.AppendLine($"- metric set `{d.Key}`: {d.Value}");
            foreach (var d in list.SelectMany(r => r.Definitions).DistinctBy(d => d.Key))
                md.AppendLine($"- `{d.Key}`: {d.Value}");
            foreach (var line in Benchmarks.EvalBenchmarks.TryGet(bench.Key)?.ReportNotes(list) ?? [])
                md.AppendLine(line);
            md.AppendLine();
            var chart = Path.Combine(dir, $"metrics-{bench.Key}.png");
            if (Charts.MetricsChart(list, chart, $"{bench.Key}: modes compared"))
            {
                charts.Add(chart);
                md.AppendLine($"![{bench.Key} metrics]({Path.GetFileName(chart)})").AppendLine();
            }
        }
        md.AppendLine("## Latency").AppendLine();
        md.AppendLine("Milliseconds per answer (mean / median / p95); decode speed over guided + plain decoding.").AppendLine();
        md.AppendLine("| run | judge | prefill | guided | decode | total | scoring | tokens/s (overall) | tokens/s (median) |");
        md.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var r in runs)
        {
            string P(string phase) { var p = r.Latency.Phases.First(x => x.Phase == phase); return p.N == 0 ? "–" : F($"{p.Mean:F0} / {p.Median:F0} / {p.P95:F0}"); }
            md.AppendLine($"| {Charts.Label(r)} | {P("judge")} | {P("prefill")} | {P("guided")} | {P("decode")} | {P("total")} | {P("score")} | {F($"{r.Latency.OverallTokensPerSecond:F1}")} | {F($"{r.Latency.TokensPerSecond.Median:F1}")} |");
        }
        md.AppendLine();
        Cost(runs, md);
        var lat = Path.Combine(dir, "latency.png");
        if (Charts.LatencyChart(runs, lat)) { charts.Add(lat); md.AppendLine("![latency](latency.png)").AppendLine(); }
        StatisticsNotes(md);
        var mdPath = Path.Combine(dir, "report.md");
        File.WriteAllText(mdPath, md.ToString());
        File.WriteAllText(Path.Combine(dir, "report.json"), Json(runs));
        return new Written(mdPath, charts);
    }

    /// <summary>
    /// Writes report.html to <paramref name="path"/>: per benchmark the metrics table of report.md (runs across), the
    /// charts, and a sample browser where the runs of one benchmark sit side by side.
    /// </summary>
    public static void WriteHtml(IReadOnlyList<RunMetrics> runs, string path, IReadOnlyList<string> charts)
    {
        var labels = runs.ToDictionary(r => r, r => runs.Count(x => Charts.Label(x) == Charts.Label(r)) > 1 ? $"{Charts.Label(r)} ({Name(r)})" : Charts.Label(r));
        var tables = new List<HtmlTable>();
        foreach (var bench in runs.GroupBy(r => r.Benchmark))
        {
            var list = bench.ToList();
            var rows = list.SelectMany(r => r.Rows).Select(r => r.Path).Distinct().Select(p =>
                (p, (IReadOnlyList<HtmlCell>)[new HtmlCell(list.SelectMany(r => r.Rows).First(x => x.Path == p).MetricSet),
                    .. list.Select(r => r.Rows.FirstOrDefault(x => x.Path == p) is { } row ? new HtmlCell(Cell(r, p), labels[r], p, row.Rate.Value) : new HtmlCell("–"))])).ToList();
            tables.Add(new HtmlTable($"metrics-{bench.Key}", bench.Key, "Rates with their counts (hits/n) and 95 % Wilson intervals [low–high].",
                ["metric", "metric set", .. list.Select(r => $"{labels[r]} ({r.Scorer ?? "unscored"})")], rows));
        }
        tables.Add(new HtmlTable("runs", "Runs", "Framing method sends SafeCoDe's first-person prompt, base each benchmark's own protocol.",
            ["run", "folder", "benchmark", "mode", "preset", "framing", "scorer", "samples", "problems", "unparsed replies", "scoring errors", "unscored"],
            runs.Select(r => (labels[r], (IReadOnlyList<HtmlCell>)[new HtmlCell(r.Run), new HtmlCell(r.Benchmark), new HtmlCell(r.Mode), new HtmlCell(r.Preset ?? "–"),
                new HtmlCell(r.Framing ?? "–"), new HtmlCell(r.Scorer ?? "–"), new HtmlCell(F($"{r.Samples}")), new HtmlCell(F($"{r.Problems}")),
                new HtmlCell(F($"{r.Unparsed}")), new HtmlCell(F($"{r.ScoreErrors}")), new HtmlCell(F($"{r.Unscored}"))])).ToList()));
        HtmlReport.Write(path, "SafeCoDe evaluation report", string.Join(", ", runs.Select(r => labels[r])), [], tables,
            charts.Select(c => (Path.GetFileNameWithoutExtension(c), c)).ToList(), runs.Select(r => new HtmlRun(r.Benchmark, labels[r], r.Run)).ToList());
    }

    private static string F(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);

    private static string Name(RunMetrics r) => Path.GetFileName(Path.TrimEndingDirectorySeparator(r.Run));

    /// <summary>A rate; a row counted from another scorer than the run's (records scored by several) names it.</summary>
    private static string Cell(RunMetrics r, string path)
    {
        var row = r.Rows.FirstOrDefault(x => x.Path == path);
        if (row is null) return "–";
        var text = RateCell(row);
        return row.Scorer is { } by && by != r.Scorer ? $"{text} [{by}]" : text;
    }

    /// <summary>"45.0% (9/20) [23.1–68.5]": the rate, its counts and its Wilson interval in percent.</summary>
    public static string RateCell(MetricRow row) =>
        row.Ci is { } ci ? F($"{row.Rate} [{ci.Low * 100:F1}–{ci.High * 100:F1}]") : row.Rate.ToString();

    /// <summary>"0.123 [0.101–0.150]": a mean and its bootstrap interval.</summary>
    public static string MeanCell(double mean, Interval? ci, string format = "0.###") =>
        ci is null ? mean.ToString(format, CultureInfo.InvariantCulture)
            : $"{mean.ToString(format, CultureInfo.InvariantCulture)} [{ci.Low.ToString(format, CultureInfo.InvariantCulture)}–{ci.High.ToString(format, CultureInfo.InvariantCulture)}]";

    /// <summary>How the intervals of the report were computed.</summary>
    public static void StatisticsNotes(StringBuilder md)
    {
        md.AppendLine("## Statistics").AppendLine();
        md.AppendLine(F($"- Rates: 95 % Wilson score interval of hits/n (answers taken as independent)."));
        md.AppendLine(F($"- Means (extra calls, seconds per sample): 95 % percentile bootstrap over clusters, {ReportStatistics.BootstrapReplicates} resamples, Mersenne Twister seed {ReportStatistics.BootstrapSeed}."));
        md.AppendLine("- A cluster is what the benchmark pairs (e.g. the two answers of one sample); see docs/evaluation.md (Statistics).").AppendLine();
    }

    /// <summary>The cost table: extra calls per sample (by role), seconds per sample, answers replaced or refused before decoding.</summary>
    private static void Cost(IReadOnlyList<RunMetrics> runs, StringBuilder md)
    {
        md.AppendLine("## Cost per sample").AppendLine();
        md.AppendLine("Extra calls the method's steps made (a judge, a helper, a check, a re-answer) and wall seconds, per sample (mean [95 % bootstrap interval]).").AppendLine();
        md.AppendLine("| run | extra calls | calls by role | seconds | answers replaced | refused before decoding |");
        md.AppendLine("|---|---:|---|---:|---:|---:|");
        foreach (var r in runs)
        {
            var roles = r.Cost.CallsByRole.Count == 0 ? "–" : string.Join(", ", r.Cost.CallsByRole.Select(kv => F($"{kv.Key} {kv.Value:0.##}")));
            md.AppendLine(F($"| {Charts.Label(r)} | {MeanCell(r.Cost.CallsPerSample, r.Cost.CallsCi, "0.##")} | {roles} | {MeanCell(r.Cost.SecondsPerSample, r.Cost.SecondsCi)} | {r.Cost.Replaced} | {r.Cost.RefusedBeforeDecoding} |"));
        }
        md.AppendLine();
    }

    /// <summary>Which keyword refusal lists were used and why answers were left unscored, per run (nothing when neither applies).</summary>
    private static void Scoring(IReadOnlyList<RunMetrics> runs, StringBuilder md)
    {
        bool any = false;
        foreach (var r in runs.Where(r => r.KeywordLanguages.Count > 0 || r.UnscoredReasons.Count > 0))
        {
            any = true;
            var lists = r.KeywordLanguages.Count == 0 ? "" : "keyword refusal lists used: " + string.Join(", ", r.KeywordLanguages.Select(kv => $"{kv.Key} ({kv.Value} answers)"));
            var reasons = string.Join("; ", r.UnscoredReasons.Select(kv => $"{kv.Value} unscored: {kv.Key}"));
            md.AppendLine($"- {Name(r)}: {string.Join("; ", new[] { lists, reasons }.Where(x => x.Length > 0))}");
        }
        if (any) md.AppendLine();
    }
}
