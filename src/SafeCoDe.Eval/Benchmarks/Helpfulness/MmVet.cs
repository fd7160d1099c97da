using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using SafeCoDe.Eval.Metrics;
using SafeCoDe.Eval.Runs;
using SafeCoDe.Eval.Scoring;

namespace SafeCoDe.Eval.Benchmarks.Helpfulness;

/// <summary>
/// MM-Vet (v1): integrated capabilities (recognition, OCR, knowledge, language generation, spatial awareness, math),
/// graded 0.0–1.0 per answer by a grader model. Every answer is graded under both metric sets: <c>mm-vet/official</c>
/// (MM-Vet's evaluator: its few-shot table, the first word of the reply, re-asked up to five times, 1 or
/// <c>--scorer-runs</c> runs with mean ± std) and <c>mm-vet/vlmevalkit</c> (VLMEvalKit's re-wrapped table, the whole
/// reply as a number, five tries, one run); score overall and per capability, and per capability set.
/// </summary>
internal sealed class MmVet : IBenchmark
{
    public const string OfficialSet = "mm-vet/official", VlmSet = "mm-vet/vlmevalkit";

    public IBenchmarkReader Reader { get; } = new MmVetReader();
    public string Summary => "helpfulness: open answers graded 0-1 by a grader model, per capability (v1, 218 samples)";
    public IReadOnlyList<string> ScorerKinds => ["openai", "local"];
    public string DefaultJudgeModel => "gpt-4-0613"; // MM-Vet's evaluator default; VLMEvalKit uses gpt-4-1106-preview
    public string? GraderRuns => "the official set grades N runs and reports mean ± std (MM-Vet's paper used 5)";
    public IReadOnlyDictionary<string, string> SelectionHelp { get; } = new Dictionary<string, string>
    {
        ["prompts"] = "official, vlmevalkit (both send the question)",
    };

    public IReadOnlyDictionary<string, string> MetricSets { get; } = new Dictionary<string, string>
    {
        [OfficialSet] = "MM-Vet's mm-vet_evaluator.py: its few-shot prompt, max_tokens 3, the reply's first word as a score in [0, 1] (re-asked up to five times, then 0.0), --scorer-runs runs (default 1; the paper 5), mean over runs with the std of the total",
        [VlmSet] = "VLMEvalKit's MMVet scoring: its re-wrapped prompt, max_tokens 3, the whole reply as a score in [0, 1], five tries at temperature 0-2 (then 0.0), one run; capabilities by substring of the category",
    };

    public Rubric RubricFor(string id, IReadOnlyDictionary<string, string> groups) => MmVetRubric.Instance;

    public string Outcome(RunOutput output, ScoreResult score) => score.Label;

    private static IReadOnlyList<string> Caps(RunRecord r) => r.Labels.TryGetValue("capability", out var c) ? JsonSerializer.Deserialize<List<string>>(c) ?? [] : [];

    private static readonly string[] VlmCapabilities = ["rec", "ocr", "know", "gen", "spat", "math"];

    public void Metrics(IReadOnlyList<RunRecord> records, MetricsBuilder m)
    {
        m.Definitions["score"] = "MM-Vet: the mean grade (0.0-1.0, shown as %) of the group's answers (all, a capability: every answer whose capabilities include it)";
        var usable = records.SelectMany(r => r.Outputs.Where(MetricsBuilder.Usable).Select(o => (r, o))).ToList();

        var official = usable.Where(x => x.o.Score!.Sets?.ContainsKey(MmVetRubric.OfficialRuns) == true)
            .Select(x => (x.r, x.o, runs: JsonSerializer.Deserialize<List<double>>(x.o.Score!.Sets![MmVetRubric.OfficialRuns])!)).ToList();
        int nRuns = official.Count == 0 ? 0 : official.Min(x => x.runs.Count);
        var node = new JsonObject();
        JsonObject Group(IEnumerable<(RunRecord r, RunOutput o, List<double> runs)> items, string group, bool row)
        {
            var l = items.ToList();
            var totals = Enumerable.Range(0, nRuns).Select(k => l.Count == 0 ? 0 : l.Sum(x => x.runs[k]) / l.Count).ToList();
            // an answer's score: its mean over the runs every answer has (an unparsed run graded 0.0, as the scorer grades it)
            double Score((RunRecord r, RunOutput o, List<double> runs) x) => x.runs.Take(nRuns).DefaultIfEmpty(0).Average();
            var rate = Rate.Mean(l.Sum(Score), l.Count);
            var g = new JsonObject { ["score"] = rate.Value, ["n"] = l.Count };
            if (row) m.Rows.Add(new MetricRow(group, "official_score", rate, OfficialSet, MetricsBuilder.ScorerOf(l.Select(x => x.o)), m.Units(l, x => x.r, x => x.o, Score)));
            return g;
        }
        var all = Group(official, "", true);
        var totalsAll = Enumerable.Range(0, nRuns).Select(k => official.Count == 0 ? 0 : official.Sum(x => x.runs[k]) / official.Count).ToList();
        all["runs"] = new JsonArray(totalsAll.Select(t => (JsonNode)t).ToArray());
        all["n_runs"] = nRuns;
        all["std"] = nRuns == 0 ? null : Math.Sqrt(totalsAll.Select(t => (t - totalsAll.Average()) * (t - totalsAll.Average())).Average()); // numpy's std (ddof 0)
        all["n_unparsed_runs"] = official.Sum(x => int.Parse(x.o.Score!.Sets![MmVetRubric.OfficialUnparsed], CultureInfo.InvariantCulture));
        var perCap = new JsonObject();
        foreach (var c in official.SelectMany(x => Caps(x.r)).Distinct().Order(StringComparer.Ordinal))
            perCap[c] = Group(official.Where(x => Caps(x.r).Contains(c)), $"capability={c}", true);
        all["per_capability"] = perCap;
        var perSet = new JsonObject();
        foreach (var g in official.GroupBy(x => string.Join("_", Caps(x.r))).OrderBy(g => g.Key, StringComparer.Ordinal))
            perSet[g.Key] = Group(g, $"capabilities={g.Key}", false);
        all["per_capability_set"] = perSet;
        m.Json["official"] = all;

        var vlm = usable.Where(x => x.o.Score!.Sets?.ContainsKey(VlmSet) == true)
            .Select(x => (x.r, x.o, score: double.Parse(x.o.Score!.Sets![VlmSet], CultureInfo.InvariantCulture))).ToList();
        JsonObject V(IEnumerable<(RunRecord r, RunOutput o, double score)> items, string group, bool row)
        {
            var l = items.ToList();
            var rate = Rate.Mean(l.Sum(x => x.score), l.Count);
            if (row) m.Rows.Add(new MetricRow(group, "vlmevalkit_score", rate, VlmSet, MetricsBuilder.ScorerOf(l.Select(x => x.o)), m.Units(l, x => x.r, x => x.o, x => x.score)));
            return new JsonObject { ["score"] = rate.Value, ["n"] = l.Count };
        }
        var v = V(vlm, "", true);
        v["n_unparsed"] = vlm.Count(x => x.o.Score!.Sets![MmVetRubric.VlmUnparsed] != "0");
        var vCap = new JsonObject();
        // VLMEvalKit tests each capability as a substring of the comma-joined category
        foreach (var c in VlmCapabilities)
            vCap[c] = V(vlm.Where(x => MetricsBuilder.GroupValue(x.r, "capabilities").Contains(c, StringComparison.Ordinal)), $"capability={c}", true);
        v["per_capability"] = vCap;
        var fine = new JsonObject();
        foreach (var g in vlm.GroupBy(x => MetricsBuilder.GroupValue(x.r, "capabilities").Replace(',', '_')).OrderBy(g => g.Key, StringComparer.Ordinal))
            fine[g.Key] = V(g, $"category={g.Key}", false);
        v["per_category"] = fine;
        m.Json["vlmevalkit"] = v;
    }

    public IReadOnlyList<string> ReportNotes(IReadOnlyList<RunMetrics> runs) =>
        runs.Select(r => r.Json["official"] is JsonObject o && o["n_runs"] is { } n
            ? $"{Path.GetFileName(r.Run.TrimEnd('/', '\\'))}: mm-vet/official over {(int)n!} grader run(s): total per run {string.Join(", ", o["runs"]!.AsArray().Select(t => ((double)t!* 100).ToString("F1", CultureInfo.InvariantCulture)))}, std {((double?)o["std"] * 100)?.ToString("F1", CultureInfo.InvariantCulture) ?? "-"}; unparsed grader replies: {(int)o["n_unparsed_runs"]!} (official runs), {(int?)r.Json["vlmevalkit"]?["n_unparsed"] ?? 0} (vlmevalkit), each graded 0.0 as the scorers do"
            : null).OfType<string>().ToList();
}

/// <summary>
/// MM-Vet's rubric: MM-Vet's own grader procedure (one call per run, a reply whose first word is no score in [0, 1]
/// re-asked with "Predict the correctness of the answer (digit): " at a temperature raised by 0.5 each time, 0.0 after
/// five), then VLMEvalKit's (five tries at temperature 0, 0.5, …, 2.0, 0.0 after). Replies that never parse are graded
/// 0.0 as both scorers grade them, and counted: <see cref="ScoreResult.Parsed"/> is false and the counts are in
/// <see cref="ScoreResult.Sets"/>.
/// </summary>
internal sealed partial class MmVetRubric : Rubric
{
    public static MmVetRubric Instance { get; } = new();

    public const string OfficialRuns = "mm-vet/official:runs", OfficialUnparsed = "mm-vet/official:unparsed", VlmUnparsed = "mm-vet/vlmevalkit:unparsed";

    // yuweihao/MM-Vet @acde843 mm-vet_evaluator.py `prompt`, byte for byte as research/utility-and-baselines.md §4 quotes it
    // (the file ends it with a newline after the last row's 1.0)
    private const string OfficialPrompt =
        "Compare the ground truth and prediction from AI models, to give a correctness score for the prediction. <AND> in the ground truth means it is totally right only when all elements in the ground truth are present in the prediction, and <OR> means it is totally right when any one element in the ground truth is present in the prediction. The correctness score is 0.0 (totally wrong), 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, or 1.0 (totally right). Just complete the last space of the correctness score.\n" +
        "\n" +
        "Question | Ground truth | Prediction | Correctness\n" +
        "--- | --- | --- | ---\n" +
        "What is x in the equation? | -1 <AND> -5 | x = 3 | 0.0\n" +
        "What is x in the equation? | -1 <AND> -5 | x = -1 | 0.5\n" +
        "What is x in the equation? | -1 <AND> -5 | x = -5 | 0.5\n" +
        "What is x in the equation? | -1 <AND> -5 | x = -5 or 5 | 0.5\n" +
        "What is x in the equation? | -1 <AND> -5 | x = -1 or x = -5 | 1.0\n" +
        "Can you explain this meme? | This meme is poking fun at the fact that the names of the countries Iceland and Greenland are misleading. Despite its name, Iceland is known for its beautiful green landscapes, while Greenland is mostly covered in ice and snow. The meme is saying that the person has trust issues because the names of these countries do not accurately represent their landscapes. | The meme talks about Iceland and Greenland. It's pointing out that despite their names, Iceland is not very icy and Greenland isn't very green. | 0.4\n" +
        "Can you explain this meme? | This meme is poking fun at the fact that the names of the countries Iceland and Greenland are misleading. Despite its name, Iceland is known for its beautiful green landscapes, while Greenland is mostly covered in ice and snow. The meme is saying that the person has trust issues because the names of these countries do not accurately represent their landscapes. | The meme is using humor to point out the misleading nature of Iceland's and Greenland's names. Iceland, despite its name, has lush green landscapes while Greenland is mostly covered in ice and snow. The text 'This is why I have trust issues' is a playful way to suggest that these contradictions can lead to distrust or confusion. The humor in this meme is derived from the unexpected contrast between the names of the countries and their actual physical characteristics. | 1.0\n";

    // open-compass/VLMEvalKit @989e33b vlmeval/dataset/utils/mmvet.py build_mmvet_gpt4_prompt `prompt`, byte for byte
    // from the pinned file (§4 of the spec: the same table re-wrapped over several lines, starting with a newline)
    private const string VlmPrompt =
        "\n" +
        "Compare the ground truth and prediction from AI models, to give a correctness score for the prediction.\n" +
        "<AND> in the ground truth means it is totally right\n" +
        "only when all elements in the ground truth are present in the prediction,\n" +
        "and <OR> means it is totally right when any one element in the ground truth is present in the prediction.\n" +
        "The correctness score is 0.0 (totally wrong), 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, or 1.0 (totally right).\n" +
        "Just complete the last space of the correctness score.\n" +
        "\n" +
        "Question | Ground truth | Prediction | Correctness\n" +
        "--- | --- | --- | ---\n" +
        "What is x in the equation? | -1 <AND> -5 | x = 3 | 0.0\n" +
        "What is x in the equation? | -1 <AND> -5 | x = -1 | 0.5\n" +
        "What is x in the equation? | -1 <AND> -5 | x = -5 | 0.5\n" +
        "What is x in the equation? | -1 <AND> -5 | x = -5 or 5 | 0.5\n" +
        "What is x in the equation? | -1 <AND> -5 | x = -1 or x = -5 | 1.0\n" +
        "Can you explain this meme? | This meme is poking fun at the fact that the names of the countries\n" +
        "Iceland and Greenland are misleading. Despite its name, Iceland is known for its beautiful green landscapes,\n" +
        "while Greenland is mostly covered in ice and snow. The meme is saying that the person has trust issues\n" +
        "because the names of these countries do not accurately represent their landscapes. |\n" +
        "The meme talks about Iceland and Greenland. It's pointing out that despite their names,\n" +
        "Iceland is not very icy and Greenland isn't very green. | 0.4\n" +
        "Can you explain this meme? | This meme is poking fun at the fact that the names of the countries\n" +
        "Iceland and Greenland are misleading. Despite its name, Iceland is known for its beautiful green landscapes,\n" +
        "while Greenland is mostly covered in ice and snow. The meme is saying that the person has trust issues\n" +
        "because the names of these countries do not accurately represent their landscapes. |\n" +
        "The meme is using humor to point out the misleading nature of Iceland's and Greenland's names.\n" +
        "Iceland, despite its name, has lush green landscapes while Greenland is mostly covered in ice and snow.\n" +
        "The text 'This is why I have trust issues' is a playful way to suggest\n" +
        "that these contradictions can lead to distrust or confusion.\n" +
        "The humor in this meme is derived from the unexpected contrast between the names of the countries\n" +
        "and their actual physical characteristics. | 1.0\n";

    /// <summary>
    /// The text after either prompt (both scorers): <c>prompt + "\n" + " | ".join([question, answer with spaced
    /// &lt;AND&gt;/&lt;OR&gt;, prediction, ""])</c>.
    /// </summary>
    private const string Row = "\n{question} | {answer} | {response} | ";

    /// <summary>The official grader text with {question}, {answer}, {response}.</summary>
    public const string OfficialTemplate = OfficialPrompt + Row;

    /// <summary>VLMEvalKit's grader text with {question}, {answer}, {response}.</summary>
    public const string VlmTemplate = VlmPrompt + Row;

    private const string ReAsk = "\nPredict the correctness of the answer (digit): ";
    private const int Tries = 5;

    private static readonly JudgeText VlmText = new(null, VlmTemplate, AttachImage: false, MaxTokens: 3, Temperature: 0);

    public override string Name => "mm_vet_grade";
    public override JudgeText Text { get; } = new(null, OfficialTemplate, AttachImage: false, MaxTokens: 3, Temperature: 0);

    [GeneratedRegex(@"\{(question|answer|response)\}")]
    private static partial Regex Placeholder();

    /// <summary>A grader text filled in one pass (an answer holding "{question}" stays as written).</summary>
    public static string Fill(string template, string question, string answer, string response) =>
        Placeholder().Replace(template, m => m.Groups[1].Value switch
        {
            "question" => question,
            "answer" => answer.Replace("<AND>", " <AND> ").Replace("<OR>", " <OR> "),
            _ => response,
        });

    /// <summary>MM-Vet's parse: the reply's first space-separated word, stripped, as a float in [0, 1] (NaN refused).</summary>
    public static double? OfficialScore(string reply) =>
        MathVistaAnswers.PyFloat(reply.Split(' ')[0].Trim()) is { } s && s >= 0 && s <= 1 ? s : null;

    /// <summary>VLMEvalKit's parse: the whole (stripped) reply as a float in [0, 1] (NaN refused).</summary>
    public static double? VlmScore(string reply) => MathVistaAnswers.PyFloat(reply.Trim()) is { } s && s >= 0 && s <= 1 ? s : null;

    public override (string Label, bool Parsed) Parse(string reply, ScoreInput input) =>
        OfficialScore(reply) is { } s ? (Format(s), true) : ("0", false);

    private static string Format(double s) => s.ToString("R", CultureInfo.InvariantCulture);

    public override async Task<ScoreResult> JudgeAsync(ScoreInput input, JudgeAsk ask, CancellationToken cancel)
    {
        string L(string k) => input.Labels.TryGetValue(k, out var v) ? v : throw new ArgumentException($"sample '{input.SampleId}' has no '{k}' label (not an MM-Vet record)");
        var (question, answer) = (L("question"), L("answer"));
        var sw = Stopwatch.StartNew();
        bool cached = true;
        var runs = new List<double>();
        int officialUnparsed = 0;
        var log = new List<string>();
        var user = Fill(ask.Text.User, question, answer, input.Response);
        try
        {
            for (int run = 0; run < Math.Max(1, ask.Runs); run++)
            {
                string Key(int call) => run == 0 && call == 0 ? null! : $"run{run + 1}-try{call + 1}";
                float temperature = 0;
                var got = await ask.AskAsync(user, null, input.ImageMediaType, temperature, run == 0 ? null : Key(0), cancel).ConfigureAwait(false);
                cached &= got.Cached;
                int tryTime = 1;
                double? score;
                while ((score = OfficialScore(got.Reply)) is null)
                {
                    got = await ask.AskAsync(user + ReAsk, null, input.ImageMediaType, temperature, Key(tryTime), cancel).ConfigureAwait(false);
                    cached &= got.Cached;
                    tryTime++;
                    temperature += 0.5f;
                    if (tryTime > Tries) break;
                }
                if (score is null) officialUnparsed++;
                runs.Add(score ?? 0.0);
                log.Add($"run {run + 1}: '{got.Reply}'{(score is null ? $" unparsable after {Tries} re-asks: 0.0" : tryTime > 1 ? $" after {tryTime - 1} re-ask(s)" : "")}");
            }
        }
        catch (OperationCanceledException) when (cancel.IsCancellationRequested) { throw; }
        catch (Exception e) { return ask.Error(Name, e, sw.Elapsed.TotalMilliseconds); }

        var vlmUser = Fill(VlmTemplate, question, answer, input.Response);
        double? vlm = null;
        int failedCalls = 0;
        string vlmLog = "";
        for (int i = 0; i < Tries && vlm is null; i++)
        {
            try
            {
                var got = await ask.AskWithAsync(VlmText, vlmUser, null, input.ImageMediaType, i * 0.5f, i == 0 ? null : $"try{i + 1}", cancel).ConfigureAwait(false);
                cached &= got.Cached;
                vlm = VlmScore(got.Reply);
                vlmLog = vlm is null ? $"try {i + 1}: '{got.Reply}' failed to parse" : $"'{got.Reply}'{(i > 0 ? $" at try {i + 1}" : "")}";
            }
            catch (OperationCanceledException) when (cancel.IsCancellationRequested) { throw; }
            catch (Exception e) { failedCalls++; vlmLog = $"try {i + 1}: {e.Message}"; }
        }
        if (failedCalls == Tries)
            return ask.Error(Name, new InvalidOperationException($"VLMEvalKit's grader failed {Tries} times: {vlmLog}"), sw.Elapsed.TotalMilliseconds);

        double mean = runs.Average();
        return new ScoreResult
        {
            Scorer = ask.Scorer, Rubric = Name, Label = Format(mean), Parsed = officialUnparsed == 0 && vlm is not null,
            Cached = cached, LatencyMs = cached ? 0 : sw.Elapsed.TotalMilliseconds,
            Raw = $"official: {string.Join("; ", log)}; vlmevalkit: {(vlm is null ? $"all {Tries} tries failed: 0.0 ({vlmLog})" : vlmLog)}",
            Sets = new Dictionary<string, string>
            {
                [MmVet.OfficialSet] = Format(mean), [OfficialRuns] = JsonSerializer.Serialize(runs), [OfficialUnparsed] = officialUnparsed.ToString(CultureInfo.InvariantCulture),
                [MmVet.VlmSet] = Format(vlm ?? 0.0), [VlmUnparsed] = vlm is null ? "1" : "0",
            },
        };
    }
}
