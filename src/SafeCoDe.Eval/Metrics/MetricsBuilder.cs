using System.Text.Json.Nodes;
using SafeCoDe.Eval.Runs;
using SafeCoDe.Eval.Scoring;

namespace SafeCoDe.Eval.Metrics;

/// <summary>
/// What a benchmark's metrics write into (<see cref="Benchmarks.IBenchmark.Metrics"/>): the reported rows, the JSON of
/// <c>eval report --json</c> and the definitions; plus the helpers every benchmark's arithmetic shares.
/// </summary>
public sealed class MetricsBuilder
{
    /// <summary>Every reported number, in report order.</summary>
    public List<MetricRow> Rows { get; } = [];
    /// <summary>The benchmark's part of the run's JSON.</summary>
    public JsonObject Json { get; } = new();
    /// <summary>Metric name → its definition in a sentence.</summary>
    public Dictionary<string, string> Definitions { get; } = [];

    /// <summary>The cluster of a record's answers (the benchmark's <see cref="Benchmarks.IBenchmark.ClusterKey"/>; the sample id by default).</summary>
    public Func<RunRecord, string> Cluster { get; init; } = r => r.Id;

    /// <summary>One answer of a row: 1 when it is a hit, else 0, in the record's cluster.</summary>
    public RowUnit Unit(RunRecord record, RunOutput output, bool hit) => new(record.Id, output.Key, Cluster(record), hit ? 1 : 0);

    /// <summary>One answer of a row of graded scores (<see cref="Rate.Mean"/>): its score as the row counts it, in the record's cluster.</summary>
    public RowUnit Unit(RunRecord record, RunOutput output, double value) => new(record.Id, output.Key, Cluster(record), value);

    /// <summary>The answers of a row of graded scores, each with the score <paramref name="value"/> gives it.</summary>
    public List<RowUnit> Units<T>(IEnumerable<T> items, Func<T, RunRecord> record, Func<T, RunOutput> output, Func<T, double> value) =>
        items.Select(x => Unit(record(x), output(x), value(x))).ToList();

    /// <summary>The answers of a row, each a hit when <paramref name="hit"/> says so.</summary>
    public List<RowUnit> Units(IEnumerable<(RunRecord r, RunOutput o)> items, Func<RunOutput, bool> hit) =>
        items.Select(x => Unit(x.r, x.o, hit(x.o))).ToList();

    /// <summary>
    /// The rate of hits among <paramref name="items"/>, added as a row of <paramref name="metricSet"/> with its scorer
    /// and units when <paramref name="addRow"/>, and returned.
    /// </summary>
    public Rate HitRow(string group, string metric, string metricSet, IReadOnlyCollection<(RunRecord r, RunOutput o)> items, Func<RunOutput, bool> hit, bool addRow = true)
    {
        var rate = new Rate(items.Count(x => hit(x.o)), items.Count);
        if (addRow) Rows.Add(new MetricRow(group, metric, rate, metricSet, ScorerOf(items.Select(x => x.o)), Units(items, hit)));
        return rate;
    }

    /// <summary>An answer's score counts in the rates: scored, not a judge failure, not left unscored.</summary>
    public static bool Usable(RunOutput? o) => o?.Score is { } s && s.Label != "error" && s.Label != ScoreResult.UnscoredLabel;

    /// <summary>The scorer(s) whose labels a row counts ("a+b" when the records were scored by more than one).</summary>
    public static string? ScorerOf(IEnumerable<RunOutput> outputs)
    {
        var names = outputs.Select(o => o.Score?.Scorer).Where(n => n is not null).Distinct().Order(StringComparer.Ordinal).ToList();
        return names.Count == 0 ? null : string.Join("+", names);
    }

    /// <summary>Writes a rate as value, hit count and n under the given keys.</summary>
    public static void Put(JsonObject o, string metric, string countKey, Rate r, string nKey = "n")
    {
        o[metric] = r.Value;
        o[countKey] = r.Hits;
        o[nKey] = r.N;
    }

    /// <summary>The first non-empty value of the keys among a record's groups, then its labels; "unknown" when none.</summary>
    public static string GroupValue(RunRecord r, params string[] keys)
    {
        foreach (var k in keys)
        {
            if (r.Groups.TryGetValue(k, out var v) && v.Length > 0) return v;
            if (r.Labels.TryGetValue(k, out v) && v.Length > 0) return v;
        }
        return "unknown";
    }
}
