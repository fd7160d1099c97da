using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using SafeCoDe.Eval.Metrics;
using SafeCoDe.Eval.Reports;
using SafeCoDe.Eval.Runs;

namespace SafeCoDe.Eval.Studies;

/// <summary>A cell's state in the report: its metrics (null when it has no RUN yet) and what is unresolved in it.</summary>
/// <param name="Cell">The cell.</param>
/// <param name="Metrics">Its metrics, null when the cell has not been run.</param>
/// <param name="Selected">Samples the cell's benchmark selects.</param>
/// <param name="Missing">Selected samples with neither a record nor a problem (failed, or not run yet).</param>
/// <param name="Shown">The rows the study table shows.</param>
/// <param name="VsBaseline">The paired test of each shown row against the baseline cell (none for the baseline itself).</param>
public sealed record StudyCellResult(StudyCell Cell, RunMetrics? Metrics, int Selected, int Missing, IReadOnlyList<MetricRow> Shown,
    IReadOnlyDictionary<string, RunCompare.Delta> VsBaseline)
{
    /// <summary>Answers that keep the cell from being complete: missing samples, scoring errors, unscored answers.</summary>
    public int Unresolved => Missing + (Metrics?.ScoreErrors ?? 0) + (Metrics?.Unscored ?? 0);
}

/// <summary>The chart files of one model (file names in the study folder), null where a chart was not drawn.</summary>
/// <param name="TradeOff">Safety vs helpfulness.</param>
/// <param name="Sensitivity">Over-refusal vs under-sensitivity.</param>
/// <param name="Cost">Seconds and extra calls per sample.</param>
public sealed record StudyChartFiles(string? TradeOff, string? Sensitivity, string? Cost);

/// <summary>
/// The study report: the paper-style table (methods × benchmark metrics, with counts and Wilson intervals), the paired
/// change of each method against the baseline (delta, interval, p-value, significance mark), the cells' counts
/// (selected, problems, missing, unscored, scoring errors), the generation settings, metric sets and scorers.
/// Written as <c>report.md</c> and <c>report.json</c> into the study folder with the charts of each model (trade-off,
/// over-refusal vs under-sensitivity, cost); nothing in it depends on wall time except the seconds per sample
/// (<c>cells[].cost</c> and <c>cost</c> in report.json).
/// </summary>
public static class StudyReport
{
    /// <summary>The state of every cell.</summary>
    /// <param name="plan">The plan.</param>
    /// <param name="cells">Its cells (<see cref="StudyCells.Of"/>).</param>
    /// <param name="selected">The sample ids each benchmark selects (by the plan's benchmark name).</param>
    public static List<StudyCellResult> Collect(StudyPlan plan, IReadOnlyList<StudyCell> cells, IReadOnlyDictionary<string, IReadOnlyList<string>> selected)
    {
        var metrics = cells.ToDictionary(c => c, c => File.Exists(Path.Combine(c.Dir, RunStore.ManifestFile)) ? MetricsCalculator.ForRun(c.Dir) : null);
        var results = new List<StudyCellResult>();
        foreach (var c in cells)
        {
            var m = metrics[c];
            var ids = selected[c.Benchmark.Name];
            int missing = ids.Count;
            if (m is not null)
            {
                var have = RunStore.ReadRecords(c.Dir).Select(r => r.Id).Concat(RunStore.ReadProblems(c.Dir).Select(p => p.Id)).ToHashSet(StringComparer.Ordinal);
                missing = ids.Count(id => !have.Contains(id));
            }
            var shown = m is null ? [] : Shown(c.Benchmark, m);
            var deltas = new Dictionary<string, RunCompare.Delta>();
            var baseCell = cells.FirstOrDefault(x => x.Model == c.Model && x.Benchmark == c.Benchmark && x.Method.Name == plan.Baseline);
            if (m is not null && baseCell is not null && baseCell != c && metrics[baseCell] is { } b)
                foreach (var d in RunCompare.Deltas(b, m, path => shown.Any(r => r.Path == path))) deltas[d.Metric] = d;
            results.Add(new StudyCellResult(c, m, ids.Count, missing, shown, deltas));
        }
        return results;
    }

    /// <summary>The rows a benchmark of the plan shows: the named metrics, else the run's top-level rows; of its metric set when one is named.</summary>
    public static List<MetricRow> Shown(PlanBenchmark b, RunMetrics m)
    {
        var rows = m.Rows.Where(r => b.MetricSet is null || r.MetricSet == b.MetricSet);
        return b.Metrics.Count > 0
            ? b.Metrics.Select(p => rows.FirstOrDefault(r => r.Path == p)).Where(r => r is not null).Select(r => r!).ToList()
            : rows.Where(r => r.Group.Length == 0).ToList();
    }

    /// <summary>Writes report.md, report.json and report.html into <paramref name="dir"/>; returns their paths.</summary>
    public static (string Markdown, string Json, string Html) Write(StudyPlan plan, IReadOnlyList<StudyCellResult> results, string dir)
    {
        Directory.CreateDirectory(dir);
        var md = Path.Combine(dir, "report.md");
        var json = Path.Combine(dir, "report.json");
        var charts = new Dictionary<string, StudyChartFiles>();
        var htmlCharts = new List<(string, string)>();
        foreach (var model in plan.Models)
        {
            var mine = results.Where(r => r.Cell.Model == model).ToList();
            string? Chart(string kind, string title, Func<string, bool> write)
            {
                var png = Path.Combine(dir, $"{kind}-{model.Name}.png");
                if (!write(png)) return null;
                htmlCharts.Add(($"{plan.Name} — {model.Name}: {title}", png));
                return Path.GetFileName(png);
            }
            charts[model.Name] = new StudyChartFiles(
                Chart("tradeoff", "safety vs helpfulness", png => StudyCharts.TradeOffChart(plan, mine, model.Name, png)),
                Chart("sensitivity", "over-refusal vs under-sensitivity", png => StudyCharts.SensitivityChart(plan, mine, model.Name, png)),
                Chart("cost", "cost per sample", png => StudyCharts.CostChart(plan, mine, model.Name, png)));
        }
        File.WriteAllText(md, Markdown(plan, results, dir, charts));
        File.WriteAllText(json, Json(plan, results, dir).ToJsonString(EvalJson.Indented));
        var html = Path.Combine(dir, "report.html");
        WriteHtml(plan, results, html, htmlCharts);
        return (md, json, html);
    }

    /// <summary>
    /// report.html: the results and change tables of report.md (the same numbers as report.json), the charts, and a
    /// sample browser with one entry per model × benchmark whose methods sit side by side.
    /// </summary>
    public static void WriteHtml(StudyPlan plan, IReadOnlyList<StudyCellResult> results, string path, IReadOnlyList<(string Title, string Png)> charts)
    {
        var columns = Columns(plan, results);
        var tables = new List<HtmlTable>();
        List<(string, IReadOnlyList<HtmlCell>)> Rows(List<StudyCellResult> mine, Func<StudyCellResult, string, HtmlCell> cell) =>
            plan.Methods.Select(method => (method.Name, (IReadOnlyList<HtmlCell>)columns.Select(c =>
            {
                var r = mine.FirstOrDefault(x => x.Cell.Method == method && x.Cell.Benchmark == c.Benchmark);
                return r?.Metrics is null ? new HtmlCell("not run") : cell(r, c.Path);
            }).ToList())).ToList();
        var header = new[] { "method" }.Concat(columns.Select(c => $"{c.Benchmark.Name}: {c.Path}")).ToList();
        foreach (var model in plan.Models)
        {
            var mine = results.Where(r => r.Cell.Model == model).ToList();
            tables.Add(new HtmlTable($"results-{model.Name}", $"Results — {model.Name}", "Each rate with its counts (hits/n) and 95 % Wilson interval [low–high].", header,
                Rows(mine, (r, p) => r.Shown.FirstOrDefault(x => x.Path == p) is { } row ? new HtmlCell(ReportWriter.RateCell(row), r.Cell.Name, p, row.Rate.Value) : new HtmlCell("–"))));
            tables.Add(new HtmlTable($"change-{model.Name}", $"Change against {plan.Baseline} — {model.Name}",
                $"Δ = method − {plan.Baseline} in points on the answers both counted, 95 % paired-bootstrap interval, p-value (exact McNemar where each cluster is one answer, else paired bootstrap); * p < 0.05, ** p < 0.01, *** p < 0.001.", header,
                Rows(mine, (r, p) => r.Cell.Method.Name == plan.Baseline ? new HtmlCell("baseline")
                    : r.VsBaseline.TryGetValue(p, out var d) && d.Test is { } t ? new HtmlCell(F($"{RunCompare.DeltaCell(t)} ({(t.Test == "mcnemar-exact" ? "McNemar" : "bootstrap")}, n={t.N})"), r.Cell.Name, p) : new HtmlCell("–"))));
        }
        int unresolved = results.Sum(r => r.Unresolved);
        var notes = new List<string>
        {
            $"Plan {Path.GetFileName(plan.File)}: {plan.Models.Count} model(s) × {plan.Methods.Count} method(s) × {plan.Benchmarks.Count} benchmark(s) = {results.Count} cells; baseline {plan.Baseline}.",
            unresolved == 0 ? "Every selected sample has a record and every answer a score."
                : $"{unresolved} unresolved (samples without a record, scoring errors, unscored answers; see report.md, Cells): they are left out of every rate.",
            $"Shared generation settings: {Words(plan.Generation)}.",
        };
        var runs = results.Where(r => r.Metrics is not null)
            .Select(r => new HtmlRun($"{r.Cell.Model.Name}/{r.Cell.Benchmark.Name}", r.Cell.Method.Name, r.Cell.Dir)).ToList();
        HtmlReport.Write(path, $"Study {plan.Name}", "safecode eval study: methods × benchmarks, with every method's answers side by side", notes, tables, charts, runs);
    }

    private static string F(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);

    /// <summary>The columns of the table: each benchmark's shown metric paths, in plan order.</summary>
    private static List<(PlanBenchmark Benchmark, string Path)> Columns(StudyPlan plan, IReadOnlyList<StudyCellResult> results) =>
        plan.Benchmarks.SelectMany(b => results.Where(r => r.Cell.Benchmark == b).SelectMany(r => r.Shown.Select(x => x.Path)).Distinct().Select(p => (b, p))).ToList();

    /// <summary>report.md.</summary>
    /// <param name="plan">The plan.</param>
    /// <param name="results">Its cells' states.</param>
    /// <param name="studyDir">The study folder (cell folders are shown relative to it).</param>
    /// <param name="charts">The chart files of each model (file names in the study folder).</param>
    public static string Markdown(StudyPlan plan, IReadOnlyList<StudyCellResult> results, string studyDir, IReadOnlyDictionary<string, StudyChartFiles>? charts = null)
    {
        var sb = new StringBuilder();
        int unresolved = results.Sum(r => r.Unresolved);
        sb.AppendLine($"# Study {plan.Name}").AppendLine();
        sb.AppendLine($"Plan `{Path.GetFileName(plan.File)}`: {plan.Models.Count} model(s) × {plan.Methods.Count} method(s) × {plan.Benchmarks.Count} benchmark(s) = {results.Count} cells; baseline `{plan.Baseline}`.");
        sb.AppendLine(unresolved == 0 ? "Every selected sample has a record and every answer a score."
            : $"**{unresolved} unresolved** (samples without a record, scoring errors, unscored answers; see Cells): they are left out of every rate below.").AppendLine();
        var columns = Columns(plan, results);
        foreach (var model in plan.Models)
        {
            var mine = results.Where(r => r.Cell.Model == model).ToList();
            sb.AppendLine($"## Results — {model.Name}").AppendLine();
            sb.AppendLine("Each rate with its counts (hits/n) and 95 % Wilson interval [low–high].").AppendLine();
            Table(sb, plan, mine, columns, (r, path) => r.Shown.FirstOrDefault(x => x.Path == path) is { } row ? ReportWriter.RateCell(row) : "–");
            var files = charts?.GetValueOrDefault(model.Name);
            if (files?.TradeOff is { } png)
            {
                var pts = StudyCharts.TradeOff(plan, mine, out var h, out var s);
                sb.AppendLine($"![safety vs helpfulness — {model.Name}]({png})").AppendLine();
                sb.AppendLine($"Trade-off: helpfulness = {h}, safety = {s} (each axis in percent, higher is better; a rate where lower is better counts as 100 − rate; bars: 95 % Wilson intervals where one benchmark makes the axis). "
                    + string.Join("; ", pts.Select(p => F($"{p.Method} ({p.Helpfulness:F1}, {p.Safety:F1})")))).AppendLine();
            }
            if (charts is not null)
            {
                var sens = StudyCharts.Sensitivity(plan, mine, out var o, out var u, out var skipped);
                if (files?.Sensitivity is { } spng)
                {
                    sb.AppendLine($"![over-refusal vs under-sensitivity — {model.Name}]({spng})").AppendLine();
                    sb.AppendLine($"Over-refusal vs under-sensitivity: over-refusal = {o}, missed risks = {u} (each axis in percent, lower is better; rows of one benchmark pooled, an axis of several benchmarks is their mean; bars: 95 % intervals where one benchmark makes the axis). "
                        + string.Join("; ", sens.Select(p => F($"{p.Method} ({p.OverRefusal:F1}, {p.UnderSensitivity:F1})")))).AppendLine();
                }
                else sb.AppendLine($"Over-refusal vs under-sensitivity chart: not drawn — {skipped}.").AppendLine();
                if (files?.Cost is { } cpng)
                {
                    sb.AppendLine($"![cost per sample — {model.Name}]({cpng})").AppendLine();
                    sb.AppendLine("Cost per sample: mean seconds and extra calls per sample of each cell, whiskers the 95 % bootstrap intervals over samples (the Cells table below lists the calls; report.json `cost` both).").AppendLine();
                }
                else sb.AppendLine("Cost chart: not drawn — no cell of this model has samples yet.").AppendLine();
            }
            sb.AppendLine($"### Change against {plan.Baseline} — {model.Name}").AppendLine();
            sb.AppendLine($"Δ = method − {plan.Baseline} in points on the answers both counted, 95 % paired-bootstrap interval, p-value (exact McNemar where each cluster is one answer, else paired bootstrap); * p < 0.05, ** p < 0.01, *** p < 0.001.").AppendLine();
            Table(sb, plan, mine, columns, (r, path) =>
                r.Cell.Method.Name == plan.Baseline ? "baseline"
                : r.VsBaseline.TryGetValue(path, out var d) && d.Test is { } t ? F($"{RunCompare.DeltaCell(t)} ({(t.Test == "mcnemar-exact" ? "McNemar" : "bootstrap")}, n={t.N})") : "–");
        }
        sb.AppendLine("## Cells").AppendLine();
        sb.AppendLine("| cell | RUN folder | selected | records | problems | missing | unscored | scoring errors | unparsed replies | scorer | extra calls / sample |");
        sb.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|");
        foreach (var r in results)
        {
            var m = r.Metrics;
            var rel = Path.GetRelativePath(studyDir, r.Cell.Dir).Replace('\\', '/');
            sb.AppendLine(m is null
                ? $"| {r.Cell.Name} | {rel} | {r.Selected} | not run | – | {r.Missing} | – | – | – | – | – |"
                : F($"| {r.Cell.Name} | {rel} | {r.Selected} | {m.Samples} | {m.Problems} | {r.Missing} | {m.Unscored} | {m.ScoreErrors} | {m.Unparsed} | {m.Scorer ?? "none"} | {ReportWriter.MeanCell(m.Cost.CallsPerSample, m.Cost.CallsCi, "0.##")} |"));
        }
        sb.AppendLine();
        sb.AppendLine("Missing: selected samples with neither a record nor a problem (generation failed, or the cell was not finished); rerun the study to resume them. Unscored answers: score them with `safecode eval score CELL --scorer SPEC`.").AppendLine();
        sb.AppendLine("## Generation settings").AppendLine();
        sb.AppendLine("One set for the whole study; each method adds its own options. Sampling or greedy decoding is what `decoding.temperature`, `decoding.greedy` and `decoding.seed` say below (as each cell's run.json records them).").AppendLine();
        sb.AppendLine($"- shared: `{Words(plan.Generation)}`");
        foreach (var m in plan.Methods) sb.AppendLine($"- {m.Name}: `{Words(m.Options)}`");
        foreach (var b in plan.Benchmarks) sb.AppendLine($"- {b.Name} ({b.Benchmark}): `{Words(b.Options)}`, scorer `{b.Scorer ?? "none"}`{(b.MetricSet is null ? "" : $", metric set `{b.MetricSet}`")}");
        sb.AppendLine();
        var manifests = plan.Methods.Select(m => (m, results.Where(r => r.Cell.Method == m && r.Metrics is not null).Select(r => RunStore.ReadManifest(r.Cell.Dir)).FirstOrDefault())).ToList();
        var keys = manifests.Where(x => x.Item2 is not null).SelectMany(x => x.Item2!.Options.Keys).Where(k => k.StartsWith(RunOptions.DecodingPrefix, StringComparison.Ordinal)).Distinct().Order(StringComparer.Ordinal).ToList();
        if (keys.Count > 0)
        {
            sb.Append("| option |").Append(string.Concat(plan.Methods.Select(m => $" {m.Name} |"))).AppendLine();
            sb.Append("|---|").Append(string.Concat(plan.Methods.Select(_ => "---|"))).AppendLine();
            foreach (var k in keys)
                sb.Append($"| {k} |").Append(string.Concat(manifests.Select(x => $" {(x.Item2?.Options.TryGetValue(k, out var v) == true ? v : "–")} |"))).AppendLine();
            sb.AppendLine();
        }
        sb.AppendLine("## Metric sets and scorers").AppendLine();
        foreach (var d in results.Where(r => r.Metrics is not null).SelectMany(r => r.Metrics!.MetricSets).DistinctBy(d => d.Key).OrderBy(d => d.Key, StringComparer.Ordinal))
            sb.AppendLine($"- metric set `{d.Key}`: {d.Value}");
        foreach (var b in plan.Benchmarks)
        {
            var scorers = results.Where(r => r.Cell.Benchmark == b && r.Metrics is not null).SelectMany(r => r.Shown.Select(x => x.Scorer ?? "none")).Distinct().Order(StringComparer.Ordinal).ToList();
            sb.AppendLine($"- {b.Name}: labels from {(scorers.Count == 0 ? "no scorer yet" : string.Join(", ", scorers.Select(s => $"`{s}`")))}");
        }
        foreach (var d in results.Where(r => r.Metrics is not null).SelectMany(r => r.Metrics!.Definitions).DistinctBy(d => d.Key).OrderBy(d => d.Key, StringComparer.Ordinal))
            sb.AppendLine($"- `{d.Key}`: {d.Value}");
        sb.AppendLine();
        ReportWriter.StatisticsNotes(sb);
        return sb.ToString();
    }

    private static string Words(IEnumerable<PlanOption> options)
    {
        var s = string.Join(" ", options.SelectMany(o => o.Words));
        return s.Length == 0 ? "(none)" : s;
    }

    private static void Table(StringBuilder sb, StudyPlan plan, List<StudyCellResult> rows, List<(PlanBenchmark Benchmark, string Path)> columns, Func<StudyCellResult, string, string> cell)
    {
        sb.Append("| method |").Append(string.Concat(columns.Select(c => $" {c.Benchmark.Name}: {c.Path} |"))).AppendLine();
        sb.Append("|---|").Append(string.Concat(columns.Select(_ => "---:|"))).AppendLine();
        foreach (var method in plan.Methods)
        {
            sb.Append($"| {method.Name} |");
            foreach (var c in columns)
            {
                var r = rows.FirstOrDefault(x => x.Cell.Method == method && x.Cell.Benchmark == c.Benchmark);
                sb.Append($" {(r?.Metrics is null ? "not run" : cell(r, c.Path))} |");
            }
            sb.AppendLine();
        }
        sb.AppendLine();
    }

    /// <summary>report.json: the plan's shape, every cell with its counts, shown rows (value, counts, interval, paired test against the baseline), and the totals.</summary>
    public static JsonObject Json(StudyPlan plan, IReadOnlyList<StudyCellResult> results, string studyDir)
    {
        JsonArray Opts(IEnumerable<PlanOption> o) => new(o.Select(x => (JsonNode)new JsonObject { ["option"] = x.Name, ["values"] = new JsonArray(x.Values.Select(v => (JsonNode)v).ToArray()) }).ToArray());
        var cells = new JsonArray();
        foreach (var r in results)
        {
            var m = r.Metrics;
            var rows = new JsonArray(r.Shown.Select(row =>
            {
                var o = new JsonObject
                {
                    ["metric"] = row.Path, ["value"] = row.Rate.Value, ["hits"] = row.Rate.Hits, ["n"] = row.Rate.N, ["ci"] = row.Ci?.ToJson(),
                    ["metric_set"] = row.MetricSet, ["scorer"] = row.Scorer,
                };
                if (r.VsBaseline.TryGetValue(row.Path, out var d)) o["vs_baseline"] = d.Test?.ToJson();
                return (JsonNode)o;
            }).ToArray());
            cells.Add(new JsonObject
            {
                ["cell"] = r.Cell.Name, ["model"] = r.Cell.Model.Name, ["benchmark"] = r.Cell.Benchmark.Name, ["benchmark_kind"] = r.Cell.Benchmark.Benchmark,
                ["method"] = r.Cell.Method.Name, ["mode"] = r.Cell.Method.Mode, ["run"] = Path.GetRelativePath(studyDir, r.Cell.Dir).Replace('\\', '/'), ["ran"] = m is not null,
                ["n_selected"] = r.Selected, ["n_samples"] = m?.Samples ?? 0, ["n_problems"] = m?.Problems ?? 0, ["n_missing"] = r.Missing,
                ["n_unscored"] = m?.Unscored ?? 0, ["n_score_errors"] = m?.ScoreErrors ?? 0, ["n_unparsed"] = m?.Unparsed ?? 0, ["n_unresolved"] = r.Unresolved,
                ["scorer"] = m?.Scorer, ["framing"] = m?.Framing, ["rows"] = rows, ["cost"] = m?.Cost.ToJson(),
                ["metric_sets"] = m is null ? null : new JsonObject(m.MetricSets.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
            });
        }
        return new JsonObject
        {
            ["study"] = plan.Name, ["plan"] = Path.GetFullPath(plan.File), ["baseline"] = plan.Baseline,
            ["models"] = new JsonArray(plan.Models.Select(m => (JsonNode)new JsonObject { ["name"] = m.Name, ["path"] = m.Path }).ToArray()),
            ["methods"] = new JsonArray(plan.Methods.Select(m => (JsonNode)new JsonObject { ["name"] = m.Name, ["mode"] = m.Mode, ["options"] = Opts(m.Options) }).ToArray()),
            ["benchmarks"] = new JsonArray(plan.Benchmarks.Select(b => (JsonNode)new JsonObject
            {
                ["name"] = b.Name, ["benchmark"] = b.Benchmark, ["data"] = b.Data, ["scorer"] = b.Scorer, ["metric_set"] = b.MetricSet,
                ["metrics"] = new JsonArray(b.Metrics.Select(x => (JsonNode)x).ToArray()), ["options"] = Opts(b.Options),
            }).ToArray()),
            ["generation"] = Opts(plan.Generation),
            ["n_cells"] = results.Count, ["n_cells_run"] = results.Count(r => r.Metrics is not null), ["n_unresolved"] = results.Sum(r => r.Unresolved),
            ["cells"] = cells, ["statistics"] = ReportStatistics.Settings(),
            ["tradeoff"] = new JsonObject(plan.Models.Select(model =>
            {
                var pts = StudyCharts.TradeOff(plan, results.Where(r => r.Cell.Model == model).ToList(), out var h, out var s);
                return KeyValuePair.Create(model.Name, (JsonNode?)new JsonObject
                {
                    ["helpfulness_axis"] = h, ["safety_axis"] = s,
                    ["points"] = new JsonArray(pts.Select(p => (JsonNode)new JsonObject
                    {
                        ["method"] = p.Method, ["helpfulness"] = Math.Round(p.Helpfulness, 6), ["safety"] = Math.Round(p.Safety, 6),
                    }).ToArray()),
                });
            })),
            ["sensitivity"] = new JsonObject(plan.Models.Select(model =>
            {
                var pts = StudyCharts.Sensitivity(plan, results.Where(r => r.Cell.Model == model).ToList(), out var o, out var u, out var skipped);
                JsonNode? Ci((double Low, double High)? c) => c is { } x ? new JsonObject { ["low"] = Math.Round(x.Low, 6), ["high"] = Math.Round(x.High, 6) } : null;
                return KeyValuePair.Create(model.Name, (JsonNode?)new JsonObject
                {
                    ["over_refusal_axis"] = o, ["under_sensitivity_axis"] = u, ["skipped"] = skipped,
                    ["points"] = new JsonArray(pts.Select(p => (JsonNode)new JsonObject
                    {
                        ["method"] = p.Method, ["over_refusal"] = Math.Round(p.OverRefusal, 6), ["under_sensitivity"] = Math.Round(p.UnderSensitivity, 6),
                        ["over_refusal_ci"] = Ci(p.OverRefusalCi), ["under_sensitivity_ci"] = Ci(p.UnderSensitivityCi),
                    }).ToArray()),
                });
            })),
            ["cost"] = new JsonObject(plan.Models.Select(model => KeyValuePair.Create(model.Name, (JsonNode?)new JsonObject
            {
                ["points"] = new JsonArray(StudyCharts.Cost(plan, results.Where(r => r.Cell.Model == model).ToList()).Select(p => (JsonNode)new JsonObject
                {
                    ["method"] = p.Method, ["benchmark"] = p.Benchmark, ["n_samples"] = p.Samples,
                    ["seconds_per_sample"] = Math.Round(p.SecondsPerSample, 4), ["seconds_per_sample_ci"] = p.SecondsCi?.ToJson(),
                    ["calls_per_sample"] = Math.Round(p.CallsPerSample, 4), ["calls_per_sample_ci"] = p.CallsCi?.ToJson(),
                }).ToArray()),
            }))),
        };
    }
}
