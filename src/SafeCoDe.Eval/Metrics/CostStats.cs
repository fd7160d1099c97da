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
    /// <summary>The costs of a run's records.</summary>
    public static CostStats From(IReadOnlyList<RunRecord> records)
    {
        int n = records.Count;
        var calls = records.SelectMany(r => r.Outputs).SelectMany(o => o.Steps ?? []).SelectMany(s => s.Calls).ToList();
        double seconds = records.Sum(r => r.Outputs.Sum(o => o.Timings.TotalMs)) / 1000;
        var byRole = calls.GroupBy(c => c.Role).OrderBy(g => g.Key, StringComparer.Ordinal).ToDictionary(g => g.Key, g => n == 0 ? 0 : (double)g.Count() / n);
        var outputs = records.SelectMany(r => r.Outputs).ToList();
        return new CostStats(n, n == 0 ? 0 : (double)calls.Count / n, n == 0 ? 0 : seconds / n, byRole,
            outputs.Count(o => o.AnswerReplaced), outputs.Count(o => o.RefusedBeforeDecoding));
    }

    /// <summary>The costs as JSON.</summary>
    public JsonObject ToJson() => new()
    {
        ["n_samples"] = Samples, ["calls_per_sample"] = Math.Round(CallsPerSample, 4), ["seconds_per_sample"] = Math.Round(SecondsPerSample, 4),
        ["calls_per_sample_by_role"] = new JsonObject(CallsByRole.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)Math.Round(kv.Value, 4)))),
        ["n_answers_replaced"] = Replaced, ["n_refused_before_decoding"] = RefusedBeforeDecoding,
    };
}
