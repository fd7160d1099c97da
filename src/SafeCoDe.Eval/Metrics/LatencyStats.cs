using System.Text.Json.Nodes;
using SafeCoDe.Eval.Runs;

namespace SafeCoDe.Eval.Metrics;

/// <summary>Mean, median and 95th percentile of one latency phase, in milliseconds.</summary>
public sealed record PhaseStats(string Phase, int N, double Mean, double Median, double P95, IReadOnlyList<double> Values)
{
    /// <summary>Statistics of a list of values (nearest-rank percentiles).</summary>
    public static PhaseStats Of(string phase, IEnumerable<double> values)
    {
        var v = values.Order().ToList();
        if (v.Count == 0) return new PhaseStats(phase, 0, 0, 0, 0, v);
        return new PhaseStats(phase, v.Count, v.Average(), Percentile(v, 0.5), Percentile(v, 0.95), v);
    }

    /// <summary>Nearest-rank percentile of sorted values: the value at rank ⌈p·n⌉.</summary>
    public static double Percentile(IReadOnlyList<double> sorted, double p) =>
        sorted.Count == 0 ? 0 : sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Count) - 1, 0, sorted.Count - 1)];
}

/// <summary>Latency distributions of a run's generations (judge, prefill, guided, decode, total, scoring) and decode speed.</summary>
public sealed record LatencyStats(IReadOnlyList<PhaseStats> Phases, PhaseStats TokensPerSecond, double OverallTokensPerSecond, int GeneratedTokens)
{
    /// <summary>The phases reported.</summary>
    public static readonly string[] PhaseNames = ["judge", "prefill", "guided", "decode", "total", "score"];

    /// <summary>Statistics over outputs.</summary>
    public static LatencyStats From(IReadOnlyList<RunOutput> outputs)
    {
        var phases = new List<PhaseStats>
        {
            PhaseStats.Of("judge", outputs.Select(o => o.Timings.JudgeMs)),
            PhaseStats.Of("prefill", outputs.Select(o => o.Timings.PrefillMs)),
            PhaseStats.Of("guided", outputs.Select(o => o.Timings.GuidedMs)),
            PhaseStats.Of("decode", outputs.Select(o => o.Timings.DecodeMs)),
            PhaseStats.Of("total", outputs.Select(o => o.Timings.TotalMs)),
            PhaseStats.Of("score", outputs.Where(o => o.Score is { Cached: false }).Select(o => o.Timings.ScoreMs)),
        };
        var tps = PhaseStats.Of("tokens_per_s", outputs.Where(o => o.Timings.GuidedMs + o.Timings.DecodeMs > 0 && o.GeneratedTokens > 0)
            .Select(o => o.GeneratedTokens / ((o.Timings.GuidedMs + o.Timings.DecodeMs) / 1000)));
        double ms = outputs.Sum(o => o.Timings.GuidedMs + o.Timings.DecodeMs);
        int tokens = outputs.Sum(o => o.GeneratedTokens);
        return new LatencyStats(phases, tps, ms > 0 ? tokens / (ms / 1000) : 0, tokens);
    }

    /// <summary>{"judge_ms": {"mean", "median", "p95", "n"}, …, "tokens_per_s": {…}, "overall_tokens_per_s"}.</summary>
    public JsonObject ToJson()
    {
        var o = new JsonObject();
        foreach (var p in Phases) o[p.Phase + "_ms"] = new JsonObject { ["mean"] = p.Mean, ["median"] = p.Median, ["p95"] = p.P95, ["n"] = p.N };
        o["tokens_per_s"] = new JsonObject { ["mean"] = TokensPerSecond.Mean, ["median"] = TokensPerSecond.Median, ["p95"] = TokensPerSecond.P95, ["n"] = TokensPerSecond.N };
        o["overall_tokens_per_s"] = OverallTokensPerSecond;
        o["n_generated_tokens"] = GeneratedTokens;
        return o;
    }
}
