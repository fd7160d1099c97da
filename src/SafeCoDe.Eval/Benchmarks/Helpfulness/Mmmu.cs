using System.Text.Json;
using System.Text.Json.Nodes;
using SafeCoDe.Eval.Metrics;
using SafeCoDe.Eval.Runs;
using SafeCoDe.Eval.Scoring;

namespace SafeCoDe.Eval.Benchmarks.Helpfulness;

/// <summary>
/// MMMU (validation): college-level multiple-choice and open questions over one to seven images. Every answer is
/// scored under both metric sets: <c>mmmu/official</c> (MMMU's rule-based parsing) and <c>mmmu/vlmevalkit</c>
/// (VLMEvalKit's option matching, open questions as two-option questions, its judge where matching fails);
/// accuracy overall, per discipline and per subject.
/// </summary>
internal sealed class Mmmu : IBenchmark
{
    public const string OfficialSet = "mmmu/official", VlmSet = "mmmu/vlmevalkit";

    public IBenchmarkReader Reader { get; } = new MmmuReader();
    public string Summary => "helpfulness: college-level questions over 1-7 images, 30 subjects (validation)";
    public IReadOnlyList<string> ScorerKinds => ["rules", "openai", "local"];
    public string DefaultJudgeModel => "gpt-3.5-turbo-0125"; // VLMEvalKit's MCQ matcher (chatgpt-0125), used only where rules fail
    public string? Axis => "helpfulness";
    public IReadOnlyDictionary<string, string> SelectionHelp { get; } = new Dictionary<string, string>
    {
        ["splits"] = "validation (default), dev", ["prompts"] = "official (MMMU's own), vlmevalkit",
    };

    public IReadOnlyDictionary<string, string> MetricSets { get; } = new Dictionary<string, string>
    {
        [OfficialSet] = "MMMU's own eval_utils: option letter or open-answer parsing by rules, a random letter when nothing is found; accuracy pooled over samples (instance-weighted)",
        [VlmSet] = "VLMEvalKit's MMMU_DEV_VAL scoring: can_infer option matching, open questions as 'A = gold / B = Other Answers', its judge (gpt-3.5-turbo-0125) where matching fails, Z (wrong) without one",
    };

    public Rubric RubricFor(string id, IReadOnlyDictionary<string, string> groups) => MmmuRubric.Instance;

    public string Outcome(RunOutput output, ScoreResult score) => score.Label;

    public void Metrics(IReadOnlyList<RunRecord> records, MetricsBuilder m)
    {
        m.Definitions["acc"] = "MMMU: correct answers / scored answers, pooled over the samples of the group (subject, discipline, all)";
        foreach (var (set, key) in new[] { (OfficialSet, "official"), (VlmSet, "vlmevalkit") })
        {
            var scored = records.SelectMany(r => r.Outputs.Where(o => MetricsBuilder.Usable(o) && o.Score!.Sets?.ContainsKey(set) == true).Select(o => (r, o))).ToList();
            m.Json[key] = Accuracy(scored, set, m);
        }
    }

    private static JsonObject Accuracy(List<(RunRecord r, RunOutput o)> scored, string set, MetricsBuilder m)
    {
        bool Correct(RunOutput o) => o.Score!.Sets![set] == "correct";
        var metric = set.Split('/')[1] + "_acc";
        var node = new JsonObject();
        MetricsBuilder.Put(node, "acc", "n_correct", m.HitRow("", metric, set, scored, Correct));
        foreach (var key in new[] { SampleKeys.Split, "discipline", "subject" })
        {
            var groups = scored.GroupBy(x => MetricsBuilder.GroupValue(x.r, key)).OrderBy(g => g.Key, NaturalOrder.Instance).ToList();
            if (key == SampleKeys.Split && groups.Count < 2) continue;
            var per = new JsonObject();
            foreach (var g in groups)
            {
                var sub = new JsonObject();
                MetricsBuilder.Put(sub, "acc", "n_correct", m.HitRow($"{key}={g.Key}", metric, set, g.ToList(), Correct));
                per[g.Key] = sub;
            }
            node["per_" + key] = per;
        }
        return node;
    }
}

/// <summary>
/// MMMU's rubric: the official parse by rules, and VLMEvalKit's matching, whose failures go to its matcher judge
/// (three tries, each reply matched again; all fail → a letter or Z picked by the sample id). With the rules scorer
/// (no judge) a failed match is Z, as VLMEvalKit scores without a key.
/// </summary>
internal sealed class MmmuRubric : Rubric
{
    public static MmmuRubric Instance { get; } = new();

    private const int JudgeTries = 3;

    // VLMEvalKit @989e33b vlmeval/dataset/utils/multiple_choice.py build_prompt (the matcher), byte for byte from
    // research/utility-and-baselines.md §2 with its three {} as {question}, {options}, {response}; the text ends at
    // "Your output: " (the line the spec's block closes with).
    private const string Matcher =
        "You are an AI assistant who will help me to match an answer with several options of a single-choice question. You are provided with a question, several options, and an answer, and you need to find which option is most similar to the answer. If the meaning of all options are significantly different from the answer, output Z. Your should output a single uppercase character in A, B, C, D (if they are valid options), and Z. \n" +
        "Example 1: \nQuestion: What is the main object in image?\nOptions: A. teddy bear B. rabbit C. cat D. dog\nAnswer: a cute teddy bear\nYour output: A\n" +
        "Example 2: \nQuestion: What is the main object in image?\nOptions: A. teddy bear B. rabbit C. cat D. dog\nAnswer: Spider\nYour output: Z\n" +
        "Example 3: \nQuestion: {question}?\nOptions: {options}\nAnswer: {response}\nYour output: ";

    public override string Name => "mmmu_answer";
    public override JudgeText Text { get; } = new(null, Matcher, AttachImage: false, MaxTokens: 2048, Temperature: 0);

    public override (string Label, bool Parsed) Parse(string reply, ScoreInput input)
    {
        var q = Question.Of(input);
        return VlmEvalMatching.CanInfer(reply, q.VlmChoices) is { } l ? (l == q.VlmGold ? "correct" : "wrong", true) : ("wrong", false);
    }

    public override ScoreResult Rules(ScoreInput input)
    {
        var q = Question.Of(input);
        var vlm = VlmEvalMatching.CanInfer(input.Response, q.VlmChoices);
        return Result(input, q, "rules", vlm ?? "Z", vlm is null ? "no option matched; no judge: Z" : "matched", cached: false, ms: 0);
    }

    public override async Task<ScoreResult> JudgeAsync(ScoreInput input, JudgeAsk ask, CancellationToken cancel)
    {
        var q = Question.Of(input);
        if (VlmEvalMatching.CanInfer(input.Response, q.VlmChoices) is { } matched) return Result(input, q, ask.Scorer, matched, "matched", false, 0);
        var options = string.Join(" ", q.VlmChoices.Select(kv => $"{kv.Key}. {kv.Value}"));
        var text = ask.Text with { User = ask.Text.User.Replace("{options}", options) };
        var sw = System.Diagnostics.Stopwatch.StartNew();
        bool cached = true;
        for (int attempt = 1; attempt <= JudgeTries; attempt++)
        {
            JudgeReply got;
            try { got = await ask.AskAsync(text.Render(q.Raw, input.Response), null, input.ImageMediaType, text.Temperature, attempt == 1 ? null : $"try{attempt}", cancel).ConfigureAwait(false); }
            catch (OperationCanceledException) when (cancel.IsCancellationRequested) { throw; }
            catch (Exception e) { return ask.Error(Name, e, sw.Elapsed.TotalMilliseconds); }
            cached &= got.Cached;
            if (VlmEvalMatching.CanInfer(got.Reply, q.VlmChoices) is { } l)
                return Result(input, q, ask.Scorer, l, $"judge try {attempt}: {got.Reply}", cached, cached ? 0 : sw.Elapsed.TotalMilliseconds);
        }
        var letters = q.VlmChoices.Keys.Append("Z").ToList();
        return Result(input, q, ask.Scorer, MmmuOfficial.RandomPick(input.SampleId, letters), $"judge failed {JudgeTries} times: random pick", cached, cached ? 0 : sw.Elapsed.TotalMilliseconds);
    }

    private ScoreResult Result(ScoreInput input, Question q, string scorer, string vlmLetter, string how, bool cached, double ms)
    {
        var (official, found) = q.Official(input.Response, input.SampleId);
        var officialLabel = official ? "correct" : "wrong";
        return new ScoreResult
        {
            Scorer = scorer, Rubric = Name, Label = officialLabel, Parsed = found, Cached = cached, LatencyMs = ms,
            Raw = $"official: {(found ? "parsed" : "nothing found, random letter")}; vlmevalkit: {vlmLetter} ({how})",
            Sets = new Dictionary<string, string> { [Mmmu.OfficialSet] = officialLabel, [Mmmu.VlmSet] = vlmLetter == q.VlmGold ? "correct" : "wrong" },
        };
    }

    /// <summary>A question's gold answers and options as its labels hold them.</summary>
    private sealed record Question(string Raw, IReadOnlyList<string> Options, IReadOnlyList<string> Answers, bool MultipleChoice)
    {
        public static Question Of(ScoreInput input)
        {
            string L(string k) => input.Labels.TryGetValue(k, out var v) ? v : throw new ArgumentException($"sample '{input.SampleId}' has no '{k}' label (not an MMMU record)");
            var options = JsonSerializer.Deserialize<List<string>>(L("options"))!;
            return new Question(L("question"), options, JsonSerializer.Deserialize<List<string>>(L("answer"))!,
                L("question_type") == "multiple-choice" && options.Count > 0);
        }

        private IReadOnlyList<string> Letters => Options.Select((_, i) => ((char)('A' + i)).ToString()).ToList();

        /// <summary>VLMEvalKit's choices: the options, or for an open question A = the gold answer, B = "Other Answers".</summary>
        public IReadOnlyDictionary<string, string> VlmChoices => MultipleChoice
            ? Letters.Zip(Options).ToDictionary(x => x.First, x => x.Second)
            : new Dictionary<string, string> { ["A"] = Answers[0], ["B"] = "Other Answers" };

        /// <summary>VLMEvalKit's gold letter (an open question's is A).</summary>
        public string VlmGold => MultipleChoice ? Answers[0] : "A";

        /// <summary>MMMU's own verdict, and whether its parser found an answer (false: the random letter was compared).</summary>
        public (bool Correct, bool Found) Official(string response, string id)
        {
            if (!MultipleChoice) return (MmmuOfficial.OpenCorrect(MmmuOfficial.Open(response), Answers), true);
            var letters = Letters;
            var pick = MmmuOfficial.MultiChoice(response, letters, letters.Zip(Options).ToDictionary(x => x.First, x => x.Second));
            return (Answers.Contains(pick ?? MmmuOfficial.RandomPick(id, letters)), pick is not null);
        }
    }
}
