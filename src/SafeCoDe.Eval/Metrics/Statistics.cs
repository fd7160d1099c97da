using System.Text.Json.Nodes;
using MathNet.Numerics.Distributions;
using MathNet.Numerics.Random;

namespace SafeCoDe.Eval.Metrics;

/// <summary>
/// One answer counted in a reported number: which sample and answer (<see cref="Id"/>, <see cref="Key"/>), the cluster
/// it belongs to (answers of one cluster are not independent: an MSSBench pair, one HADES item's steps; the benchmark
/// descriptor names it, <see cref="Benchmarks.IBenchmark.ClusterKey"/>) and its value (1 or 0 for a rate's hit or miss,
/// any number for a score).
/// </summary>
public readonly record struct RowUnit(string Id, string Key, string Cluster, double Value);

/// <summary>A two-sided interval at <see cref="Level"/> and how it was computed (<c>wilson</c>, <c>bootstrap</c>).</summary>
public sealed record Interval(double Low, double High, string Method, double Level = ReportStatistics.Level)
{
    /// <summary>The interval as JSON: <c>low</c>, <c>high</c>, <c>method</c>, <c>level</c>.</summary>
    public JsonObject ToJson() => new() { ["low"] = Math.Round(Low, 6), ["high"] = Math.Round(High, 6), ["method"] = Method, ["level"] = Level };
}

/// <summary>
/// A paired comparison of one reported number between a baseline (A) and another run (B) on the answers both counted:
/// the delta B − A, its interval (paired bootstrap over clusters), the test and its two-sided p-value.
/// </summary>
/// <param name="N">Answers in both runs' rows (matched by sample id and answer key).</param>
/// <param name="Clusters">Clusters those answers fall into.</param>
/// <param name="A">A's value on the matched answers.</param>
/// <param name="B">B's value on the matched answers.</param>
/// <param name="Delta">B − A.</param>
/// <param name="Ci">Interval of the delta.</param>
/// <param name="Test"><c>mcnemar-exact</c> (binary outcomes, every cluster one answer) or <c>paired-bootstrap</c>.</param>
/// <param name="P">Two-sided p-value of "no difference".</param>
/// <param name="Discordant">For McNemar: answers a hit in A only (b) and in B only (c); null otherwise.</param>
public sealed record PairedTest(int N, int Clusters, double A, double B, double Delta, Interval Ci, string Test, double P, (int AOnly, int BOnly)? Discordant)
{
    /// <summary>"***" for p &lt; 0.001, "**" for p &lt; 0.01, "*" for p &lt; 0.05, "" otherwise.</summary>
    public string Mark => ReportStatistics.Mark(P);

    /// <summary>The test as JSON.</summary>
    public JsonObject ToJson()
    {
        var o = new JsonObject
        {
            ["n_paired"] = N, ["n_clusters"] = Clusters, ["a"] = Math.Round(A, 6), ["b"] = Math.Round(B, 6), ["delta"] = Math.Round(Delta, 6),
            ["delta_ci"] = Ci.ToJson(), ["test"] = Test, ["p"] = P, ["significance"] = Mark,
        };
        if (Discordant is { } d) { o["n_a_only"] = d.AOnly; o["n_b_only"] = d.BOnly; }
        return o;
    }
}

/// <summary>
/// The statistics of the reports: Wilson intervals for rates, bootstrap intervals for means, exact McNemar and paired
/// bootstrap tests between runs. Distributions come from MathNet.Numerics; the bootstrap draws from a Mersenne Twister
/// seeded with <see cref="BootstrapSeed"/> for every number, so a report is the same on every machine and every run.
/// </summary>
public static class ReportStatistics
{
    /// <summary>Confidence level of every interval.</summary>
    public const double Level = 0.95;
    /// <summary>Seed of every bootstrap (recorded in report.json).</summary>
    public const int BootstrapSeed = 20260305;
    /// <summary>Bootstrap resamples per number (recorded in report.json).</summary>
    public const int BootstrapReplicates = 2000;

    /// <summary>The z quantile of a two-sided interval at <see cref="Level"/> (1.959964 for 95 %).</summary>
    public static double Z => Normal.InvCDF(0, 1, 1 - (1 - Level) / 2);

    /// <summary>
    /// The Wilson score interval of <paramref name="hits"/>/<paramref name="n"/>: centre (p + z²/2n)/(1 + z²/n),
    /// half-width z/(1 + z²/n)·√(p(1−p)/n + z²/4n²). Null when n is 0.
    /// </summary>
    public static Interval? Wilson(int hits, int n)
    {
        if (n <= 0) return null;
        if (hits < 0 || hits > n) throw new ArgumentOutOfRangeException(nameof(hits), $"{hits} hits of {n}");
        double z = Z, p = (double)hits / n, z2 = z * z;
        double denom = 1 + z2 / n;
        double centre = (p + z2 / (2 * n)) / denom;
        double half = z / denom * Math.Sqrt(p * (1 - p) / n + z2 / (4.0 * n * n));
        // at 0 and n the bounds are exactly 0 and 1; computed they can miss by a rounding error
        return new Interval(hits == 0 ? 0 : Math.Max(0, centre - half), hits == n ? 1 : Math.Min(1, centre + half), "wilson");
    }

    /// <summary>
    /// Exact two-sided McNemar test: with <paramref name="aOnly"/> (b) and <paramref name="bOnly"/> (c) discordant pairs,
    /// p = min(1, 2·P(X ≤ min(b, c))) for X ~ Binomial(b + c, ½); 1 when there are none.
    /// </summary>
    public static double McNemarExact(int aOnly, int bOnly)
    {
        if (aOnly < 0 || bOnly < 0) throw new ArgumentOutOfRangeException(nameof(aOnly));
        int n = aOnly + bOnly;
        if (n == 0) return 1;
        return Math.Min(1, 2 * Binomial.CDF(0.5, n, Math.Min(aOnly, bOnly)));
    }

    /// <summary>"***" for p &lt; 0.001, "**" for p &lt; 0.01, "*" for p &lt; 0.05, "" otherwise.</summary>
    public static string Mark(double p) => p < 0.001 ? "***" : p < 0.01 ? "**" : p < 0.05 ? "*" : "";

    /// <summary>
    /// Percentile bootstrap interval of a mean: clusters are drawn with replacement (as many as there are), the mean of
    /// the drawn values is taken over all their units; the interval is the 2.5 % and 97.5 % quantiles of
    /// <paramref name="replicates"/> such means. Null without values.
    /// </summary>
    public static Interval? BootstrapMean(IReadOnlyList<(string Cluster, double Value)> units, int seed = BootstrapSeed, int replicates = BootstrapReplicates)
    {
        if (units.Count == 0) return null;
        var clusters = units.GroupBy(u => u.Cluster, StringComparer.Ordinal).OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => (Sum: g.Sum(u => u.Value), Count: g.Count())).ToArray();
        var rng = new MersenneTwister(seed);
        var means = new double[replicates];
        for (int k = 0; k < replicates; k++)
        {
            double sum = 0; int count = 0;
            for (int i = 0; i < clusters.Length; i++)
            {
                var c = clusters[rng.Next(clusters.Length)];
                sum += c.Sum; count += c.Count;
            }
            means[k] = sum / count;
        }
        return Percentile(means, "bootstrap");
    }

    /// <summary>
    /// Paired comparison of A and B on matched answers. The delta's interval is a paired percentile bootstrap over
    /// clusters (each draw keeps a cluster's answers together, in both runs). Binary outcomes where every cluster is one
    /// answer are tested with the exact McNemar test on the discordant answers; otherwise the p-value is the paired
    /// bootstrap's: the share of resampled deltas at least as far from the observed delta as the observed delta is
    /// from 0, (1 + count)/(1 + replicates). Null when no answer is matched.
    /// </summary>
    public static PairedTest? Paired(IReadOnlyList<(string Cluster, double A, double B)> units, int seed = BootstrapSeed, int replicates = BootstrapReplicates)
    {
        if (units.Count == 0) return null;
        var clusters = units.GroupBy(u => u.Cluster, StringComparer.Ordinal).OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => (A: g.Sum(u => u.A), B: g.Sum(u => u.B), Count: g.Count())).ToArray();
        double meanA = units.Average(u => u.A), meanB = units.Average(u => u.B), delta = meanB - meanA;
        var rng = new MersenneTwister(seed);
        var deltas = new double[replicates];
        for (int k = 0; k < replicates; k++)
        {
            double sa = 0, sb = 0; int count = 0;
            for (int i = 0; i < clusters.Length; i++)
            {
                var c = clusters[rng.Next(clusters.Length)];
                sa += c.A; sb += c.B; count += c.Count;
            }
            deltas[k] = (sb - sa) / count;
        }
        var ci = Percentile((double[])deltas.Clone(), "paired-bootstrap");
        bool binary = units.All(u => u.A is 0 or 1 && u.B is 0 or 1);
        if (binary && clusters.Length == units.Count)
        {
            int aOnly = units.Count(u => u.A == 1 && u.B == 0), bOnly = units.Count(u => u.A == 0 && u.B == 1);
            return new PairedTest(units.Count, clusters.Length, meanA, meanB, delta, ci, "mcnemar-exact", McNemarExact(aOnly, bOnly), (aOnly, bOnly));
        }
        double far = Math.Abs(delta);
        int beyond = deltas.Count(d => Math.Abs(d - delta) >= far - 1e-12);
        double p = far == 0 ? 1 : (1.0 + beyond) / (1.0 + replicates);
        return new PairedTest(units.Count, clusters.Length, meanA, meanB, delta, ci, "paired-bootstrap", Math.Min(1, p), null);
    }

    /// <summary>Pairs two rows' answers by sample id and answer key (answers counted in only one row are left out).</summary>
    public static List<(string Cluster, double A, double B)> Match(IReadOnlyList<RowUnit> a, IReadOnlyList<RowUnit> b)
    {
        var byKey = new Dictionary<(string, string), RowUnit>();
        foreach (var u in a) byKey.TryAdd((u.Id, u.Key), u);
        var seen = new HashSet<(string, string)>();
        var list = new List<(string, double, double)>();
        foreach (var u in b)
            if (seen.Add((u.Id, u.Key)) && byKey.TryGetValue((u.Id, u.Key), out var x)) list.Add((x.Cluster, x.Value, u.Value));
        return list;
    }

    /// <summary>What report.json records about the statistics: level, seed, resamples, methods.</summary>
    public static JsonObject Settings() => new()
    {
        ["level"] = Level, ["rate_interval"] = "wilson", ["mean_interval"] = "percentile bootstrap over clusters (R-7 quantiles)",
        ["bootstrap_seed"] = BootstrapSeed, ["bootstrap_replicates"] = BootstrapReplicates, ["bootstrap_rng"] = "MathNet.Numerics MersenneTwister",
        ["paired_binary_test"] = "exact McNemar (two-sided binomial on discordant answers) when each cluster is one answer",
        ["paired_score_test"] = "paired bootstrap over clusters",
    };

    private static Interval Percentile(double[] values, string method)
    {
        double tail = (1 - Level) / 2;
        return new Interval(MathNet.Numerics.Statistics.Statistics.QuantileCustom(values, tail, MathNet.Numerics.Statistics.QuantileDefinition.R7),
            MathNet.Numerics.Statistics.Statistics.QuantileCustom(values, 1 - tail, MathNet.Numerics.Statistics.QuantileDefinition.R7), method);
    }
}
