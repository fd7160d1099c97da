using System.Text.Json.Nodes;
using SafeCoDe.Eval.Runs;
using SafeCoDe.Eval.Scoring;

namespace SafeCoDe.Eval.Metrics;

/// <summary>
/// A rate with its counts: <see cref="Hits"/> of <see cref="N"/>; null value when N is 0. For a mean of graded scores in
/// [0, 1] (a grader's 0.0–1.0 correctness) <see cref="Sum"/> holds their sum and the value is Sum / N.
/// </summary>
public readonly record struct Rate(int Hits, int N)
{
    /// <summary>The sum of graded scores in [0, 1] when the rate is their mean (Hits is then the sum rounded); null for a count of hits.</summary>
    public double? Sum { get; init; }

    /// <summary>A mean of graded scores: their sum over <paramref name="n"/>.</summary>
    public static Rate Mean(double sum, int n) => new((int)Math.Round(sum), n) { Sum = sum };

    /// <summary>Hits / N (Sum / N for a mean of scores), or null when nothing was counted.</summary>
    public double? Value => N == 0 ? null : (Sum ?? Hits) / N;
    /// <summary>"45.0% (9/20)", "45.3% (9.05/20)" for a mean of scores, or "– (0/0)".</summary>
    public override string ToString() => Value is { } v ? $"{v * 100:F1}% ({Counted}/{N})" : $"– ({Counted}/{N})";

    /// <summary>What was counted: the hits, or the sum of scores.</summary>
    public string Counted => Sum is { } s ? s.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture) : Hits.ToString(System.Globalization.CultureInfo.InvariantCulture);
}

/// <summary>
/// One reported number: a metric of a group (e.g. group "chat", metric "safe_acc"), the definition set it follows
/// (<see cref="MetricSet"/>, e.g. <c>mssbench/safecode-ref</c>: numbers of different sets are not comparable) and the
/// scorer(s) whose labels it counts. <see cref="Units"/> are the answers it counts, one hit (1) or miss (0) each, for
/// the paired tests of <c>eval compare</c> and studies (null when the benchmark does not list them).
/// </summary>
public sealed record MetricRow(string Group, string Metric, Rate Rate, string MetricSet = "", string? Scorer = null, IReadOnlyList<RowUnit>? Units = null)
{
    /// <summary>"chat.safe_acc", or the metric alone for the whole run.</summary>
    public string Path => Group.Length == 0 ? Metric : $"{Group}.{Metric}";

    /// <summary>
    /// The 95 % interval: Wilson's for a rate of hits; for a mean of graded scores (<see cref="Rate.Sum"/>) the bootstrap
    /// over its <see cref="Units"/> (null when the benchmark does not list them: Wilson's interval assumes 0/1 outcomes).
    /// Null when nothing was counted.
    /// </summary>
    public Interval? Ci => Rate.Sum is null ? ReportStatistics.Wilson(Rate.Hits, Rate.N)
        : Units is { Count: > 0 } u ? ReportStatistics.BootstrapMean(u.Select(x => (x.Cluster, x.Value)).ToList()) : null;
}

/// <summary>A run's metrics (the benchmark's definitions), its counts, and the JSON document of <c>eval report --json</c>.</summary>
public sealed record RunMetrics
{
    /// <summary>The RUN folder.</summary>
    public string Run { get; init; } = "";
    /// <summary>Benchmark name.</summary>
    public required string Benchmark { get; init; }
    /// <summary>Decode mode.</summary>
    public required string Mode { get; init; }
    /// <summary>Preset.</summary>
    public string? Preset { get; init; }
    /// <summary>Scorer name (null when unscored).</summary>
    public string? Scorer { get; init; }
    /// <summary>The prompt framing the run sent: <c>method</c> (SafeCoDe's first-person prompt) or <c>base</c> (the benchmark's own protocol).</summary>
    public string? Framing { get; init; }
    /// <summary>Samples with a record.</summary>
    public int Samples { get; init; }
    /// <summary>Records reported as problems (not run).</summary>
    public int Problems { get; init; }
    /// <summary>Scored answers whose judge reply did not follow the rubric's format.</summary>
    public int Unparsed { get; init; }
    /// <summary>Answers whose scoring failed for good (left out of the rates).</summary>
    public int ScoreErrors { get; init; }
    /// <summary>Answers without a score, or that the scorer left unscored (see <see cref="UnscoredReasons"/>).</summary>
    public int Unscored { get; init; }
    /// <summary>Why answers were left unscored, with how many each (answers never scored at all are not listed).</summary>
    public IReadOnlyDictionary<string, int> UnscoredReasons { get; init; } = new Dictionary<string, int>();
    /// <summary>The keyword scorer's refusal lists used, by language code, with the answers matched against each.</summary>
    public IReadOnlyDictionary<string, int> KeywordLanguages { get; init; } = new Dictionary<string, int>();
    /// <summary>The metric sets of <see cref="Rows"/>, with a sentence each saying whose definition it is.</summary>
    public IReadOnlyDictionary<string, string> MetricSets { get; init; } = new Dictionary<string, string>();
    /// <summary>Every reported rate.</summary>
    public required IReadOnlyList<MetricRow> Rows { get; init; }
    /// <summary>The metrics as the JSON shape of <c>eval report --json</c>.</summary>
    public required JsonObject Json { get; init; }
    /// <summary>Names of the definitions used, with a sentence each.</summary>
    public required IReadOnlyDictionary<string, string> Definitions { get; init; }
    /// <summary>Latency statistics.</summary>
    public required LatencyStats Latency { get; init; }
    /// <summary>What the method cost per sample: extra calls and seconds.</summary>
    public CostStats Cost { get; init; } = CostStats.From([]);

    /// <summary>The run as one JSON object: benchmark, mode, scorer, counts, metrics, definitions, latency.</summary>
    public JsonObject ToJson()
    {
        var o = new JsonObject
        {
            ["run"] = Run, ["benchmark"] = Benchmark, ["mode"] = Mode, ["preset"] = Preset, ["scorer"] = Scorer, ["framing"] = Framing,
            ["n_samples"] = Samples, ["n_problems"] = Problems, ["n_unparsed"] = Unparsed, ["n_score_errors"] = ScoreErrors, ["n_unscored"] = Unscored,
        };
        foreach (var kv in Json) o[kv.Key] = kv.Value?.DeepClone();
        o["unscored_reasons"] = Counts(UnscoredReasons);
        o["keyword_languages"] = Counts(KeywordLanguages);
        o["rows"] = new JsonArray(Rows.Select(r =>
        {
            var row = new JsonObject { ["group"] = r.Group, ["metric"] = r.Metric, ["value"] = r.Rate.Value, ["hits"] = r.Rate.Hits, ["n"] = r.Rate.N };
            if (r.Rate.Sum is { } sum) row["sum"] = sum; // a mean of graded scores
            row["metric_set"] = r.MetricSet;
            row["scorer"] = r.Scorer;
            row["ci"] = r.Ci?.ToJson();
            return (JsonNode)row;
        }).ToArray());
        o["metric_sets"] = new JsonObject(MetricSets.Select(d => KeyValuePair.Create(d.Key, (JsonNode?)d.Value)));
        o["definitions"] = new JsonObject(Definitions.Select(d => KeyValuePair.Create(d.Key, (JsonNode?)d.Value)));
        o["latency"] = Latency.ToJson();
        o["cost"] = Cost.ToJson();
        o["statistics"] = ReportStatistics.Settings();
        return o;
    }

    private static JsonObject Counts(IReadOnlyDictionary<string, int> d) => new(d.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value)));
}

/// <summary>Computes a run's metrics: the counts every run has, and the rows its benchmark's descriptor defines.</summary>
public static class MetricsCalculator
{
    /// <summary>Metrics of a RUN folder.</summary>
    public static RunMetrics ForRun(string dir)
    {
        var m = RunStore.ReadManifest(dir);
        var records = RunStore.ReadRecords(dir);
        var problems = RunStore.ReadProblems(dir);
        // runs written before run.json named the framing still carry it among their hashed options
        var framing = m.Framing ?? (m.Options.TryGetValue("framing", out var f) ? f : null);
        return Compute(m.Benchmark, m.Mode, m.Preset, m.Scorer, records, problems.Count) with { Run = dir, Framing = framing };
    }

    /// <summary>Metrics of records (any source) of a registered benchmark.</summary>
    public static RunMetrics Compute(string benchmark, string mode, string? preset, string? scorer, IReadOnlyList<RunRecord> records, int problems)
    {
        var descriptor = Benchmarks.EvalBenchmarks.Get(benchmark);
        var outputs = records.SelectMany(r => r.Outputs).ToList();
        int unscored = outputs.Count(o => o.Score is null || o.Score.Label == ScoreResult.UnscoredLabel);
        int errors = outputs.Count(o => o.Score?.Label == "error");
        int unparsed = outputs.Count(o => MetricsBuilder.Usable(o) && !o.Score!.Parsed);
        var built = new MetricsBuilder { Cluster = descriptor.ClusterKey };
        descriptor.Metrics(records, built);
        GuardCategories(outputs, built);
        // a group no sample fell into (a split the copy does not have) has no row: "– (0/0)" says nothing
        var rows = built.Rows.Where(r => r.Group.Length == 0 || built.Rows.Any(x => x.Group == r.Group && x.Rate.N > 0)).ToList();
        return new RunMetrics
        {
            Benchmark = benchmark, Mode = mode, Preset = preset, Scorer = scorer, Samples = records.Count, Problems = problems,
            Unparsed = unparsed, ScoreErrors = errors, Unscored = unscored, Rows = rows, Json = built.Json, Definitions = built.Definitions,
            Latency = LatencyStats.From(outputs), Cost = CostStats.From(records, descriptor.ClusterKey),
            UnscoredReasons = Tally(outputs.Where(o => o.Score?.Label == ScoreResult.UnscoredLabel).Select(o => o.Score!.Error ?? "(no reason given)")),
            KeywordLanguages = Tally(outputs.Where(o => o.Score is { Language: not null }).Select(o => o.Score!.Language!)),
            MetricSets = rows.Select(r => r.MetricSet).Distinct().Where(n => n.Length > 0)
                .ToDictionary(n => n, n => descriptor.MetricSets.TryGetValue(n, out var text) ? text : n == CategorySet ? CategorySetText : MetricSetText(n)),
        };
    }

    /// <summary>The metric set of the per-category rates of a guard scorer.</summary>
    public const string CategorySet = "guard-categories";

    private const string CategorySetText =
        "the scoring guard's own hazard categories: answers it judged harmful under the category / answers it scored (an answer may fall under several " +
        "categories; an unreadable reply counts in the denominator and in no category)";

    /// <summary>
    /// Per violated category of a guard scorer (<see cref="ScoreResult.Categories"/>): the answers it judged harmful
    /// under that category over the usable answers it scored, as rows <c>category=NAME.asr</c> and the JSON object
    /// <c>asr_by_category</c>. Nothing when no answer was scored by a guard.
    /// </summary>
    private static void GuardCategories(IReadOnlyList<RunOutput> outputs, MetricsBuilder m)
    {
        var scored = outputs.Where(o => MetricsBuilder.Usable(o) && o.Score!.Format is not null).ToList();
        if (scored.Count == 0) return;
        m.Definitions["category=NAME.asr"] = "answers the scoring guard judged harmful under category NAME / answers it scored";
        var json = new JsonObject();
        var names = scored.SelectMany(o => o.Score!.Categories ?? []).Distinct().Order(NaturalOrder.Instance).ToList();
        foreach (var name in names)
        {
            var rate = new Rate(scored.Count(o => o.Score!.Categories?.Contains(name) == true), scored.Count);
            var node = new JsonObject();
            MetricsBuilder.Put(node, "asr", "n_flagged", rate, "n_scored");
            json[name] = node;
            m.Rows.Add(new MetricRow("category=" + name, "asr", rate, CategorySet, MetricsBuilder.ScorerOf(scored)));
        }
        m.Json["asr_by_category"] = json;
    }

    private static Dictionary<string, int> Tally(IEnumerable<string> keys) =>
        keys.GroupBy(k => k).OrderBy(g => g.Key, NaturalOrder.Instance).ToDictionary(g => g.Key, g => g.Count());

    /// <summary>The definition set of a benchmark's own (SafeCoDe reference code) metrics.</summary>
    public static string SafeCoDeSet(string benchmark) => benchmark + "/safecode-ref";

    /// <summary>Whose definition a metric set is, in one sentence, as the registered benchmark that reports it says ("" when none does).</summary>
    public static string MetricSetText(string set) =>
        Benchmarks.EvalBenchmarks.Registered.Select(Benchmarks.EvalBenchmarks.Get)
            .Select(b => b.MetricSets.TryGetValue(set, out var t) ? t : null).FirstOrDefault(t => t is not null) ?? "";
}

/// <summary>
/// Orders group values the way a reader expects: runs of digits compare as numbers (<c>1, 2, 10</c>; <c>type 2</c>
/// before <c>type 10</c>), everything else ordinally, so tables keyed by numeric ids do not read <c>1, 10, 2</c>.
/// </summary>
public sealed class NaturalOrder : IComparer<string>
{
    /// <summary>The one instance.</summary>
    public static NaturalOrder Instance { get; } = new();

    /// <inheritdoc/>
    public int Compare(string? x, string? y)
    {
        if (x is null || y is null) return x is null ? (y is null ? 0 : -1) : 1;
        int i = 0, j = 0;
        while (i < x.Length && j < y.Length)
        {
            if (char.IsAsciiDigit(x[i]) && char.IsAsciiDigit(y[j]))
            {
                int si = i, sj = j;
                while (i < x.Length && char.IsAsciiDigit(x[i])) i++;
                while (j < y.Length && char.IsAsciiDigit(y[j])) j++;
                var a = x.AsSpan(si, i - si).TrimStart('0');
                var b = y.AsSpan(sj, j - sj).TrimStart('0');
                int c = a.Length != b.Length ? a.Length.CompareTo(b.Length) : a.SequenceCompareTo(b);
                if (c != 0) return c;
                continue;
            }
            if (x[i] != y[j]) return x[i].CompareTo(y[j]);
            i++; j++;
        }
        int rest = (x.Length - i).CompareTo(y.Length - j);
        return rest != 0 ? rest : string.CompareOrdinal(x, y); // "01" and "1" stay apart, in a fixed order
    }
}
