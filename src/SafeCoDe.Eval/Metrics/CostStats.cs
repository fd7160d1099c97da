using System.Text.Json.Nodes;
using SafeCoDe.Eval.Runs;

namespace SafeCoDe.Eval.Metrics;

/// <summary>
/// What a method costs per sample: the extra calls its request-level steps made (a judge, a paraphraser, a check, a
/// re-answer — each recorded call counts) and the wall seconds of its generations, a sample's outputs added up.
/// </summary>
/// <param name="Samples">Samples counted.</param>
/// <param name="CallsPerSample">Mean extra calls per sample.</param>
/// <param name="SecondsPerSample">Mean seconds per sample (its outputs' total times added).</param>
/// <param name="CallsByRole">Extra calls per sample by the step role that made them (e.g. scene_judge, paraphraser, self_exam).</param>
/// <param name="Replaced">Answers that a step after decoding replaced.</param>
/// <param name="RefusedBeforeDecoding">Answers a step gave before decoding (a filter's refusal).</param>
public sealed record CostStats(int Samples, double CallsPerSample, double SecondsPerSample, IReadOnlyDictionary<string, double> CallsByRole, int Replaced, int RefusedBeforeDecoding)
{
    /// <summary>Bootstrap interval of <see cref="CallsPerSample"/> (null without samples).</summary>
    public Interval? CallsCi { get; init; }
    /// <summary>Bootstrap interval of <see cref="SecondsPerSample"/> (null without samples).</summary>
    public Interval? SecondsCi { get; init; }

    /// <summary>The costs of a run's records; the intervals resample the clusters <paramref name="cluster"/> names (the sample by default).</summary>
    public static CostStats From(IReadOnlyList<RunRecord> records, Func<RunRecord, string>? cluster = null)
    {
        cluster ??= r => r.Id;
        int n = records.Count;
        var calls = records.SelectMany(r => r.Outputs).SelectMany(o => o.Steps ?? []).SelectMany(s => s.Calls).ToList();
        double seconds = records.Sum(r => r.Outputs.Sum(o => o.Timings.TotalMs)) / 1000;
        var byRole = calls.GroupBy(c => c.Role).OrderBy(g => g.Key, StringComparer.Ordinal).ToDictionary(g => g.Key, g => n == 0 ? 0 : (double)g.Count() / n);
        var outputs = records.SelectMany(r => r.Outputs).ToList();
        var callUnits = records.Select(r => (cluster(r), (double)r.Outputs.Sum(o => (o.Steps ?? []).Sum(s => s.Calls.Count)))).ToList();
        var secondUnits = records.Select(r => (cluster(r), r.Outputs.Sum(o => o.Timings.TotalMs) / 1000)).ToList();
        return new CostStats(n, n == 0 ? 0 : (double)calls.Count / n, n == 0 ? 0 : seconds / n, byRole,
            outputs.Count(o => o.AnswerReplaced), outputs.Count(o => o.RefusedBeforeDecoding))
        {
            CallsCi = ReportStatistics.BootstrapMean(callUnits), SecondsCi = ReportStatistics.BootstrapMean(secondUnits),
        };
    }

    /// <summary>The costs as JSON.</summary>
    public JsonObject ToJson() => new()
    {
        ["n_samples"] = Samples, ["calls_per_sample"] = Math.Round(CallsPerSample, 4), ["seconds_per_sample"] = Math.Round(SecondsPerSample, 4),
        ["calls_per_sample_by_role"] = new JsonObject(CallsByRole.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)Math.Round(kv.Value, 4)))),
        ["calls_per_sample_ci"] = CallsCi?.ToJson(), ["seconds_per_sample_ci"] = SecondsCi?.ToJson(),
        ["n_answers_replaced"] = Replaced, ["n_refused_before_decoding"] = RefusedBeforeDecoding,
    };
}
