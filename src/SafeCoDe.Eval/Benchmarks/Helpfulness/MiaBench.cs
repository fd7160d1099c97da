using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using SafeCoDe.Eval.Metrics;
using SafeCoDe.Eval.Runs;
using SafeCoDe.Eval.Scoring;

namespace SafeCoDe.Eval.Benchmarks.Helpfulness;

/// <summary>
/// MIA-Bench: how well an answer follows a layered instruction. A grader model scores each component of the
/// instruction against its weight and gives a total out of 10; the benchmark's score is the mean total (and the mean
/// per component type). Every answer is graded under both metric sets: <c>mia-bench/official</c> (Apple's notebook
/// prompt) and <c>mia-bench/vlmevalkit</c> (VLMEvalKit's re-quoted prompt); both parse the grader's first sentence the
/// same way and drop a reply that does not parse, which is counted and reported here.
/// </summary>
internal sealed class MiaBench : IBenchmark
{
    public const string OfficialSet = "mia-bench/official", VlmSet = "mia-bench/vlmevalkit";

    public IBenchmarkReader Reader { get; } = new MiaBenchReader();
    public string Summary => "helpfulness: following layered instructions, graded per component by a grader model (400 items)";
    public IReadOnlyList<string> ScorerKinds => ["openai", "local"];
    public string DefaultJudgeModel => "gpt-4o"; // the notebook's grader; VLMEvalKit pins gpt-4o-2024-05-13
    public IReadOnlyDictionary<string, string> SelectionHelp { get; } = new Dictionary<string, string>
    {
        ["prompts"] = "official, vlmevalkit (both send the instruction)",
    };

    public IReadOnlyDictionary<string, string> MetricSets { get; } = new Dictionary<string, string>
    {
        [OfficialSet] = "MIA-Bench's evaluation.ipynb: its grading prompt with the image, max_tokens 2000, the API's default temperature; mean total_score (z/10) and mean per component type (x/w) over the replies that parse",
        [VlmSet] = "VLMEvalKit's MIABench: its re-quoted grading prompt with the image, temperature 0, max_tokens 2048; the same parsing and means",
    };

    public Rubric RubricFor(string id, IReadOnlyDictionary<string, string> groups) => MiaRubric.Instance;

    public string Outcome(RunOutput output, ScoreResult score) => score.Label;

    public void Metrics(IReadOnlyList<RunRecord> records, MetricsBuilder m)
    {
        m.Definitions["score"] = "MIA-Bench: the mean of the grader's total (z/10, shown as %) over the answers whose grading parsed; per component=: the mean of x/w over the components of that type";
        var usable = records.SelectMany(r => r.Outputs.Where(MetricsBuilder.Usable).Select(o => (r, o))).ToList();
        foreach (var (set, key) in new[] { (OfficialSet, "official"), (VlmSet, "vlmevalkit") })
        {
            var graded = usable.Where(x => x.o.Score!.Sets?.ContainsKey(set + MiaRubric.Dropped) == true).ToList();
            var parsed = graded.Where(x => x.o.Score!.Sets!.ContainsKey(set)).ToList();
            var node = new JsonObject();
            var total = Rate.Mean(parsed.Sum(x => Num(x.o.Score!.Sets![set])), parsed.Count);
            node["score"] = total.Value;
            node["n"] = parsed.Count;
            node["n_dropped"] = graded.Count - parsed.Count;
            string metric = key + "_score";
            // a dropped reply is in neither the row's N nor its units, as both scorers leave it out of the mean
            m.Rows.Add(new MetricRow("", metric, total, set, MetricsBuilder.ScorerOf(parsed.Select(x => x.o)), m.Units(parsed, x => x.r, x => x.o, x => Num(x.o.Score!.Sets![set]))));
            var comps = parsed.Select(x => (x.r, x.o, c: JsonSerializer.Deserialize<Dictionary<string, double>>(x.o.Score!.Sets![set + MiaRubric.Components])!)).ToList();
            var per = new JsonObject();
            foreach (var type in comps.SelectMany(x => x.c.Keys).Distinct().Order(StringComparer.Ordinal))
            {
                var with = comps.Where(x => x.c.ContainsKey(type)).ToList();
                var rate = Rate.Mean(with.Sum(x => x.c[type]), with.Count);
                per[type] = new JsonObject { ["score"] = rate.Value, ["n"] = with.Count };
                m.Rows.Add(new MetricRow($"component={type}", metric, rate, set, MetricsBuilder.ScorerOf(with.Select(x => x.o)), m.Units(with, x => x.r, x => x.o, x => x.c[type])));
            }
            node["per_component_type"] = per;
            m.Json[key] = node;
        }
    }

    private static double Num(string s) => double.Parse(s, CultureInfo.InvariantCulture);

    public IReadOnlyList<string> ReportNotes(IReadOnlyList<RunMetrics> runs) =>
        runs.Select(r => $"{Path.GetFileName(r.Run.TrimEnd('/', '\\'))}: grader replies that did not parse (dropped from the means, as both scorers drop them): " +
            $"{(int?)r.Json["official"]?["n_dropped"] ?? 0} (official), {(int?)r.Json["vlmevalkit"]?["n_dropped"] ?? 0} (vlmevalkit)").ToList();
}

/// <summary>
/// MIA-Bench's rubric: one grader call per metric set, each with the image, parsed by <see cref="ParseScore"/>. A reply
/// that does not parse is dropped from that set's means as MIA-Bench and VLMEvalKit drop it, and counted
/// (<see cref="ScoreResult.Parsed"/> false, <c>…:dropped</c> in the sets).
/// </summary>
internal sealed class MiaRubric : Rubric
{
    public static MiaRubric Instance { get; } = new();

    /// <summary>Suffixes of the set keys under <see cref="ScoreResult.Sets"/>: the component scores (JSON) and whether the reply was dropped.</summary>
    public const string Components = ":components", Dropped = ":dropped";

    private static readonly string[] Ordinals = ["first", "second", "third", "fourth", "fifth"];

    private static readonly JudgeText VlmText = new(null, "{question}", AttachImage: true, MaxTokens: 2048, Temperature: 0);

    public override string Name => "mia_bench_grade";

    // the notebook sets max_tokens=2000 and no temperature (the API's default)
    public override JudgeText Text { get; } = new(null, "{question}", AttachImage: true, MaxTokens: 2000, Temperature: null);

    /// <summary>
    /// apple/ml-mia-bench @5422852 evaluation.ipynb <c>generate_prompt(d, response)</c>, rebuilt piece for piece (quoting
    /// such as <c>:' </c> and "The first second, and third" is the notebook's own; spec §5 shows its output).
    /// </summary>
    public static string OfficialPrompt(string instruction, IReadOnlyList<string> components, IReadOnlyList<string> weights, string response)
    {
        int n = components.Count;
        var c = new StringBuilder("The first component is:' ").Append(components[0]);
        for (int i = 1; i < n; i++) c.Append("', and the ").Append(Ordinals[i]).Append(" component is:' ").Append(components[i]);
        c.Append('\'');
        string score = n switch
        {
            1 => $"The first component is worth {weights[0]} scores.",
            2 => $"The first and second component is each worth {weights[0]} and {weights[1]} scores.",
            3 => $"The first second, and third component is each worth {weights[0]}, {weights[1]} and {weights[2]} scores.",
            4 => $"The first second, third, and fourth component is each worth {weights[0]}, {weights[1]}, {weights[2]} and {weights[3]} scores.",
            _ => $"The first second, third, fourth and fifth component is each worth {weights[0]}, {weights[1]}, {weights[2]}, {weights[3]} and {weights[4]} scores.",
        };
        return "Here is an instruction for a multimodal LLM: ' " + instruction + " You need to grade if the response from the model follows each component of the instruction. "
            + c + " The response is:' " + response + "' You need to score the response and be strict. The total score ranges from 0 to 10, depending on if the response follows the instruction. "
            + score + " List scores of each component, and the total score in one sentence in this format: score of component 1: x/2, score of component 2: y/8, total score: z/10. Then explain your reasons.";
    }

    /// <summary>
    /// open-compass/VLMEvalKit @989e33b vlmeval/dataset/miabench.py <c>generate_prompt(d)</c>, rebuilt piece for piece
    /// (for 3-5 components its score sentence has no space before "List scores"; that is VLMEvalKit's text).
    /// </summary>
    public static string VlmPrompt(string instruction, IReadOnlyList<string> components, IReadOnlyList<string> weights, string response)
    {
        int n = components.Count;
        var c = new StringBuilder("The first component is: '").Append(components[0]).Append('\'');
        for (int i = 1; i < n; i++) c.Append(", and the ").Append(Ordinals[i]).Append(" component is '").Append(components[i]).Append('\'');
        c.Append(". ");
        string score = n switch
        {
            1 => $"The first component is worth: {weights[0]} scores. ",
            2 => $"The first and second component is each worth {weights[0]} and {weights[1]} scores. ",
            _ => $"The {string.Join(", ", Ordinals.Take(n - 1))}, and {Ordinals[n - 1]} component is each worth {string.Join(", ", weights.Take(n - 1))}, and {weights[n - 1]} scores.",
        };
        return "Here is an instruction for a multimodal LLM: '" + instruction + "'. You need to grade if the response from the model follows each component of the instruction. "
            + c + "The response is: '" + response + "'. You need to score the response and be strict. The total score ranges from 0 to 10, depending on if the response follows the instruction. "
            + score + "List scores of each component, and the total score in one sentence in this format: score of component 1: x/2, score of component 2: y/8, total score: z/10. Then explain your reasons.";
    }

    /// <summary>
    /// Both scorers' <c>process_rawscore</c>: the text before the first '.', split on ','; every piece but the last is
    /// "…: x/w" (the character after the ':' is skipped, x and w Python ints) keyed by the component type at its
    /// position (a later piece of the same type replaces an earlier one); the last piece "…: z/10" is the total.
    /// Null where Python raises (a decimal such as 2.5/3, a piece without ':', more pieces than types, one piece only).
    /// </summary>
    public static (Dictionary<string, double> Components, double Total)? ParseScore(string raw, IReadOnlyList<string> types)
    {
        var pieces = raw.Split('.')[0].Split(',');
        if (pieces.Length < 2) return null; // the total's index is unbound in Python
        static double? Fraction(string piece)
        {
            var parts = piece.Split(':');
            if (parts.Length < 2 || parts[1].Length < 1) return null;
            var ab = parts[1][1..].Split('/');
            if (ab.Length < 2 || MathVistaAnswers.PyInt(ab[0]) is not { } a || MathVistaAnswers.PyInt(ab[1]) is not { } b || b.IsZero) return null;
            return (double)a / (double)b;
        }
        var comps = new Dictionary<string, double>(StringComparer.Ordinal);
        for (int i = 0; i < pieces.Length - 1; i++)
        {
            if (Fraction(pieces[i]) is not { } f || i >= types.Count) return null;
            comps[types[i]] = f;
        }
        return Fraction(pieces[^1]) is { } total ? (comps, total) : null;
    }

    public override (string Label, bool Parsed) Parse(string reply, ScoreInput input) =>
        ParseScore(reply.Trim(), Item(input).Types) is { } s ? (Format(s.Total), true) : ("dropped", false);

    private static string Format(double s) => s.ToString("R", CultureInfo.InvariantCulture);

    private sealed record Grading(string Instruction, IReadOnlyList<string> Components, IReadOnlyList<string> Weights, IReadOnlyList<string> Types);

    private static Grading Item(ScoreInput input)
    {
        string L(string k) => input.Labels.TryGetValue(k, out var v) ? v : throw new ArgumentException($"sample '{input.SampleId}' has no '{k}' label (not a MIA-Bench record)");
        List<string> J(string k) => JsonSerializer.Deserialize<List<string>>(L(k))!;
        return new Grading(L("instruction"), J("components"), J("component_weight"), J("component_type"));
    }

    public override async Task<ScoreResult> JudgeAsync(ScoreInput input, JudgeAsk ask, CancellationToken cancel)
    {
        var g = Item(input);
        var sw = Stopwatch.StartNew();
        var sets = new Dictionary<string, string>();
        var raw = new List<string>();
        bool cached = true, parsedAll = true;
        string? label = null;
        try
        {
            foreach (var (set, text, user) in new[]
            {
                (MiaBench.OfficialSet, ask.Text, OfficialPrompt(g.Instruction, g.Components, g.Weights, input.Response)),
                (MiaBench.VlmSet, VlmText, VlmPrompt(g.Instruction, g.Components, g.Weights, input.Response)),
            })
            {
                // a user template (--scorer-template) replaces the official text: {question} is then the instruction
                var shown = text.User == "{question}" ? user : text.Render(g.Instruction, input.Response);
                var got = await ask.AskWithAsync(text, shown, input.Image, input.ImageMediaType, text.Temperature, null, cancel).ConfigureAwait(false);
                cached &= got.Cached;
                var reply = got.Reply.Trim();
                var s = ParseScore(reply, g.Types);
                sets[set + Dropped] = s is null ? "1" : "0";
                if (s is { } ok)
                {
                    sets[set] = Format(ok.Total);
                    sets[set + Components] = JsonSerializer.Serialize(ok.Components);
                }
                else parsedAll = false;
                label ??= s is { } first ? Format(first.Total) : "dropped";
                raw.Add($"{set.Split('/')[1]}: {(s is null ? "[dropped: no 'score of component k: x/w, …, total score: z/10' sentence] " : "")}{reply}");
            }
        }
        catch (OperationCanceledException) when (cancel.IsCancellationRequested) { throw; }
        catch (Exception e) { return ask.Error(Name, e, sw.Elapsed.TotalMilliseconds); }
        return new ScoreResult
        {
            Scorer = ask.Scorer, Rubric = Name, Label = label!, Parsed = parsedAll, Cached = cached, LatencyMs = cached ? 0 : sw.Elapsed.TotalMilliseconds,
            Raw = string.Join("\n", raw), Sets = sets,
        };
    }
}
