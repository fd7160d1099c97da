using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using SafeCoDe.Eval.Metrics;
using SafeCoDe.Eval.Runs;
using SafeCoDe.Eval.Scoring;

namespace SafeCoDe.Eval.Benchmarks.Helpfulness;

/// <summary>
/// MathVista (testmini): mathematical reasoning over one image, five tasks and seven skills. Every answer is scored
/// under both metric sets: <c>mathvista/official</c> (MathVista's pre-extraction, its extractor prompt to the judge
/// model, normalisation to a choice, an integer or a float rounded to the problem's precision, string equality) and
/// <c>mathvista/vlmevalkit</c> (VLMEvalKit's prefetch, its extractor prompt with up to five tries, its post_check with
/// no rounding); accuracy overall, per task and per skill (a problem counts for each of its skills).
/// </summary>
internal sealed class MathVista : IBenchmark
{
    public const string OfficialSet = "mathvista/official", VlmSet = "mathvista/vlmevalkit";

    /// <summary>The key under <see cref="ScoreResult.Sets"/> holding VLMEvalKit's log of the extraction: prefetch, judge or none.</summary>
    public const string VlmLog = "mathvista/vlmevalkit:log";

    public IBenchmarkReader Reader { get; } = new MathVistaReader();
    public string Summary => "helpfulness: math reasoning over an image, 5 tasks, 7 skills (testmini, 1,000 problems)";
    public IReadOnlyList<string> ScorerKinds => ["rules", "openai", "local"];
    public string DefaultJudgeModel => "gpt-4o-mini-2024-07-18"; // VLMEvalKit's MathVista extractor; MathVista's own code names none (AZURE_OPENAI_MODEL)
    public IReadOnlyDictionary<string, string> SelectionHelp { get; } = new Dictionary<string, string>
    {
        ["splits"] = "testmini (default; test has no answers)", ["prompts"] = "official (the query field), vlmevalkit (its TSV question, the same query)",
    };

    public IReadOnlyDictionary<string, string> MetricSets { get; } = new Dictionary<string, string>
    {
        [OfficialSet] = "MathVista's evaluation/extract_answer.py + calculate_score.py: rule pre-extraction, the few-shot extractor prompt to the judge model (with --scorer rules: its quick rule only), choice / int / float-rounded-to-precision normalisation, string equality",
        [VlmSet] = "VLMEvalKit's MathVista_MINI scoring: can_infer / int / float prefetch, its extractor prompt (max_tokens 128, five tries at temperature 0-2) where prefetch fails (with --scorer rules: prefetch only, the rest wrong), post_check without rounding; list answers never count",
    };

    public Rubric RubricFor(string id, IReadOnlyDictionary<string, string> groups) => MathVistaRubric.Instance;

    public string Outcome(RunOutput output, ScoreResult score) => score.Label;

    public void Metrics(IReadOnlyList<RunRecord> records, MetricsBuilder m)
    {
        m.Definitions["acc"] = "MathVista: correct answers / scored answers of the group (all, a task, a skill: a problem counts for every skill it lists)";
        foreach (var (set, key) in new[] { (OfficialSet, "official"), (VlmSet, "vlmevalkit") })
        {
            var scored = records.SelectMany(r => r.Outputs.Where(o => MetricsBuilder.Usable(o) && o.Score!.Sets?.ContainsKey(set) == true).Select(o => (r, o))).ToList();
            m.Json[key] = Accuracy(scored, set, m);
        }
    }

    private static IReadOnlyList<string> Skills(RunRecord r) =>
        r.Labels.TryGetValue("skills", out var s) ? JsonSerializer.Deserialize<List<string>>(s) ?? [] : [];

    private static JsonObject Accuracy(List<(RunRecord r, RunOutput o)> scored, string set, MetricsBuilder m)
    {
        bool vlm = set == VlmSet;
        string metric = set.Split('/')[1] + "_acc";
        JsonObject Node(IEnumerable<(RunRecord r, RunOutput o)> items, string group, bool row = true)
        {
            var l = items.ToList();
            var rate = m.HitRow(group, metric, set, l, o => o.Score!.Sets![set] == "correct", addRow: row);
            var node = new JsonObject();
            MetricsBuilder.Put(node, "acc", "n_correct", rate);
            if (vlm)
            {
                int prefetch = l.Count(x => x.o.Score!.Sets!.TryGetValue(VlmLog, out var log) && log == "prefetch");
                node["prefetch"] = prefetch;
                node["prefetch_rate"] = l.Count == 0 ? null : (double)prefetch / l.Count;
            }
            return node;
        }
        var root = Node(scored, "");
        var tasks = new JsonObject();
        foreach (var g in scored.GroupBy(x => MetricsBuilder.GroupValue(x.r, "task")).OrderBy(g => g.Key, StringComparer.Ordinal))
            tasks[g.Key] = Node(g, $"task={g.Key}");
        root["per_task"] = tasks;
        var skills = new JsonObject();
        foreach (var skill in scored.SelectMany(x => Skills(x.r)).Distinct().Order(StringComparer.Ordinal))
            skills[skill] = Node(scored.Where(x => Skills(x.r).Contains(skill)), $"skill={skill}");
        root["per_skill"] = skills;
        if (!vlm) // calculate_score.py's other keys: in the JSON only
            foreach (var key in new[] { "question_type", "answer_type", "language", "source", "category", "context", "grade" })
            {
                var per = new JsonObject();
                foreach (var g in scored.GroupBy(x => MetricsBuilder.GroupValue(x.r, key)).OrderBy(g => g.Key, StringComparer.Ordinal))
                    per[g.Key] = Node(g, $"{key}={g.Key}", row: false);
                root["per_" + key] = per;
            }
        return root;
    }
}

/// <summary>
/// MathVista's rubric: the official extraction and VLMEvalKit's, each asking the judge (the extractor model) with its
/// own prompt only where its rules find nothing. An extractor call that fails for good makes the answer an "error"
/// (never a silent wrong); an official extraction that comes back empty is counted as unparsed.
/// </summary>
internal sealed class MathVistaRubric : Rubric
{
    public static MathVistaRubric Instance { get; } = new();

    private const int VlmTries = 5;

    // lupantech/MathVista @53d5258 evaluation/prompts/ext_ans.py demo_prompt, .strip()ped as create_test_prompt does
    // (the pinned file quoted byte for byte: research/utility-and-baselines.md §3 names it but does not reproduce it),
    // then extract_answer.py create_test_prompt: f"{demo_prompt}\n\n{query}\n\n{response}\n\nExtracted answer: ".
    private const string DemoPrompt =
        "Please read the following example. Then extract the answer from the model response and type it at the end of the prompt.\n" +
        "\n" +
        "Hint: Please answer the question requiring an integer answer and provide the final value, e.g., 1, 2, 3, at the end.\n" +
        "Question: Which number is missing?\n" +
        "\n" +
        "Model response: The number missing in the sequence is 14.\n" +
        "\n" +
        "Extracted answer: 14\n" +
        "\n" +
        "Hint: Please answer the question requiring a floating-point number with one decimal place and provide the final value, e.g., 1.2, 1.3, 1.4, at the end.\n" +
        "Question: What is the fraction of females facing the camera?\n" +
        "\n" +
        "Model response: The fraction of females facing the camera is 0.6, which means that six out of ten females in the group are facing the camera.\n" +
        "\n" +
        "Extracted answer: 0.6\n" +
        "\n" +
        "Hint: Please answer the question requiring a floating-point number with two decimal places and provide the final value, e.g., 1.23, 1.34, 1.45, at the end.\n" +
        "Question: How much money does Luca need to buy a sour apple candy and a butterscotch candy? (Unit: $)\n" +
        "\n" +
        "Model response: Luca needs $1.45 to buy a sour apple candy and a butterscotch candy.\n" +
        "\n" +
        "Extracted answer: 1.45\n" +
        "\n" +
        "Hint: Please answer the question requiring a Python list as an answer and provide the final list, e.g., [1, 2, 3], [1.2, 1.3, 1.4], at the end.\n" +
        "Question: Between which two years does the line  graph saw its maximum peak?\n" +
        "\n" +
        "Model response: The line graph saw its maximum peak between 2007 and 2008.\n" +
        "\n" +
        "Extracted answer: [2007, 2008]\n" +
        "\n" +
        "Hint: Please answer the question and provide the correct option letter, e.g., A, B, C, D, at the end.\n" +
        "Question: What fraction of the shape is blue?\n" +
        "Choices:\n" +
        "(A) 3/11\n" +
        "(B) 8/11\n" +
        "(C) 6/11\n" +
        "(D) 3/5\n" +
        "\n" +
        "Model response: The correct answer is (B) 8/11.\n" +
        "\n" +
        "Extracted answer: B";

    /// <summary>The official extractor prompt with <c>{question}</c> (the query) and <c>{response}</c>.</summary>
    public const string OfficialTemplate = DemoPrompt + "\n\n{question}\n\n{response}\n\nExtracted answer: ";

    /// <summary>
    /// VLMEvalKit @989e33b vlmeval/dataset/utils/mathvista.py build_mathvista_gpt4_prompt with get_gpt4_ICE, byte for
    /// byte from the pinned file (the spec §3 describes it: "respone" and no separator before "Extracted answer:" are its own),
    /// with {question} (the TSV question = the query) and {response} (the prediction).
    /// </summary>
    public const string VlmTemplate =
        "\n" +
        "Please read the following example.\n" +
        "Then extract the answer from the model response and type it at the end of the prompt.\n" +
        "\n" +
        "\n" +
        "Hint: Please answer the question requiring an integer answer and provide the final value,\n" +
        "e.g., 1, 2, 3, at the end.\n" +
        "\n" +
        "Question: Which number is missing?\n" +
        "\n" +
        "Model response: The number missing in the sequence is 14.\n" +
        "\n" +
        "Extracted answer: 14\n" +
        "\n" +
        "\n" +
        "Hint: Please answer the question requiring a floating-point number with one decimal place and provide the final value,\n" +
        "e.g., 1.2, 1.3, 1.4, at the end.\n" +
        "\n" +
        "Question: What is the fraction of females facing the camera?\n" +
        "\n" +
        "Model response: The fraction of females facing the camera is 0.6,\n" +
        "which means that six out of ten females in the group are facing the camera.\n" +
        "\n" +
        "Extracted answer: 0.6\n" +
        "\n" +
        "\n" +
        "Hint: Please answer the question requiring a floating-point number with two decimal places and provide the final value,\n" +
        "e.g., 1.23, 1.34, 1.45, at the end.\n" +
        "\n" +
        "Question: How much money does Luca need to buy a sour apple candy and a butter-scotch candy? (Unit: $)\n" +
        "\n" +
        "Model response: Luca needs $1.45 to buy a sour apple candy and a butterscotch candy.\n" +
        "\n" +
        "Extracted answer: 1.45\n" +
        "\n" +
        "\n" +
        "Hint: Please answer the question requiring a Python list as an answer and provide the final list,\n" +
        "e.g., [1, 2, 3], [1.2, 1.3, 1.4], at the end.\n" +
        "\n" +
        "Question: Between which two years does the line graph saw its maximum peak?\n" +
        "\n" +
        "Model response: The line graph saw its maximum peak between 2007 and 2008.\n" +
        "\n" +
        "Extracted answer: [2007, 2008]\n" +
        "\n" +
        "\n" +
        "Hint: Please answer the question and provide the correct option letter, e.g., A, B, C, D, at the end.\n" +
        "\n" +
        "Question: What fraction of the shape is blue?\n" +
        "\n" +
        "Choices: (A) 3/11 (B) 8/11 (C) 6/11 (D) 3/5\n" +
        "\n" +
        "Model response: The correct answer is (B) 8/11.\n" +
        "\n" +
        "Extracted answer: B\n" +
        "\n" +
        "{question}\n" +
        "Model respone: {response}Extracted answer:";

    private static readonly JudgeText VlmText = new(null, VlmTemplate, AttachImage: false, MaxTokens: 128, Temperature: 0);

    public override string Name => "mathvista_answer";

    // GPT_Model's defaults in MathVista's models/gpt.py: temperature 0, max_tokens 1024
    public override JudgeText Text { get; } = new(null, OfficialTemplate, AttachImage: false, MaxTokens: 1024, Temperature: 0);

    public override (string Label, bool Parsed) Parse(string reply, ScoreInput input)
    {
        var q = MathVistaQuestion.Of(input.SampleId, input.Labels);
        return (MathVistaAnswers.OfficialCorrect(reply, q) ? "correct" : "wrong", reply.Trim().Length > 0);
    }

    public override ScoreResult Rules(ScoreInput input)
    {
        var q = MathVistaQuestion.Of(input.SampleId, input.Labels);
        var pre = MathVistaAnswers.PreExtract(input.Response, q);
        var quick = pre is null ? MathVistaAnswers.QuickExtract(input.Response) : null;
        var official = new Extraction(pre ?? quick ?? "", pre is not null ? "rules" : quick is not null ? "quick rule" : "nothing found, no extractor", pre is not null || quick is not null);
        var prefetch = MathVistaAnswers.VlmPrefetch(input.Response, q);
        var vlm = new Extraction(prefetch ?? "", prefetch is not null ? "prefetch" : "none", true);
        return Result(q, "rules", official, vlm, cached: false, ms: 0);
    }

    public override async Task<ScoreResult> JudgeAsync(ScoreInput input, JudgeAsk ask, CancellationToken cancel)
    {
        var q = MathVistaQuestion.Of(input.SampleId, input.Labels);
        var sw = Stopwatch.StartNew();
        bool cached = true, called = false;
        Extraction official;
        if (MathVistaAnswers.PreExtract(input.Response, q) is { } pre) official = new Extraction(pre, "rules", true);
        else
        {
            JudgeReply got;
            try { got = await ask.AskAsync(ask.Text.Render(q.Query, input.Response), null, input.ImageMediaType, ask.Text.Temperature, null, cancel).ConfigureAwait(false); }
            catch (OperationCanceledException) when (cancel.IsCancellationRequested) { throw; }
            catch (Exception e) { return ask.Error(Name, e, sw.Elapsed.TotalMilliseconds); }
            cached &= got.Cached; called = true;
            official = new Extraction(got.Reply, "extractor", got.Reply.Trim().Length > 0);
        }
        Extraction vlm;
        if (MathVistaAnswers.VlmPrefetch(input.Response, q) is { } prefetch) vlm = new Extraction(prefetch, "prefetch", true);
        else
        {
            var user = VlmText.Render(q.Query, input.Response);
            JudgeReply? got = null;
            var failures = new List<string>();
            for (int i = 0; i < VlmTries && got is null; i++)
            {
                try { got = await ask.AskWithAsync(VlmText, user, null, input.ImageMediaType, i * 0.5f, i == 0 ? null : $"try{i + 1}", cancel).ConfigureAwait(false); }
                catch (OperationCanceledException) when (cancel.IsCancellationRequested) { throw; }
                catch (Exception e) { failures.Add($"try {i + 1}: {e.Message}"); }
            }
            if (got is not { } reply)
                return ask.Error(Name, new InvalidOperationException($"VLMEvalKit's extractor failed {VlmTries} times: {string.Join("; ", failures)}"), sw.Elapsed.TotalMilliseconds);
            cached &= reply.Cached; called = true;
            vlm = new Extraction(reply.Reply, failures.Count == 0 ? "judge" : $"judge after {failures.Count} failed tries", true);
        }
        cached &= called;
        return Result(q, ask.Scorer, official, vlm, cached, cached ? 0 : sw.Elapsed.TotalMilliseconds);
    }

    private readonly record struct Extraction(string Text, string How, bool Found);

    private ScoreResult Result(MathVistaQuestion q, string scorer, Extraction official, Extraction vlm, bool cached, double ms)
    {
        var sets = new Dictionary<string, string>();
        // a float problem without a precision (a TSV without that column) cannot be rounded as MathVista rounds it
        bool officialScorable = q.MultipleChoice || q.AnswerType != "float" || q.Precision is not null;
        var normalised = officialScorable ? MathVistaAnswers.Normalize(official.Text, q) : null;
        bool officialCorrect = normalised is not null && normalised == q.Answer;
        if (officialScorable) sets[MathVista.OfficialSet] = officialCorrect ? "correct" : "wrong";
        bool vlmCorrect = MathVistaAnswers.VlmCorrect(vlm.Text, q);
        sets[MathVista.VlmSet] = vlmCorrect ? "correct" : "wrong";
        sets[MathVista.VlmLog] = vlm.How.StartsWith("judge", StringComparison.Ordinal) ? "judge" : vlm.How;
        var officialNote = officialScorable
            ? $"official: '{official.Text}' ({official.How}) -> {(normalised is null ? "no value" : $"'{normalised}'")}"
            : "official: not scored (a float problem without a precision)";
        return new ScoreResult
        {
            Scorer = scorer, Rubric = Name, Label = officialScorable ? (officialCorrect ? "correct" : "wrong") : (vlmCorrect ? "correct" : "wrong"),
            Parsed = official.Found, Cached = cached, LatencyMs = ms,
            Raw = $"{officialNote}; vlmevalkit: '{vlm.Text}' ({vlm.How})",
            Sets = sets,
        };
    }
}
