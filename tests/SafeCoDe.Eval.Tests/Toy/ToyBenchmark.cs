using System.Text.Json.Nodes;
using SafeCoDe.Eval.Benchmarks;
using SafeCoDe.Eval.Metrics;
using SafeCoDe.Eval.Runs;
using SafeCoDe.Eval.Scoring;

namespace SafeCoDe.Eval.Tests.Toy;

/// <summary>
/// A benchmark defined only here, registered at run time: "colours", a <c>colours.json</c> list of
/// <c>{"key", "question", "image", "colour"}</c>. An answer is right when it names the expected colour (its own rule
/// scorer), or, by the keyword scorer, "declined" when it refuses. Its metric is the hit rate per shade group. Nothing
/// under src/ knows it.
/// </summary>
internal sealed class ToyColours : IBenchmark
{
    public const string BenchmarkName = "toy-colours";
    public const string Set = "toy-colours/own";

    public IBenchmarkReader Reader { get; } = new ToyColoursReader();
    public string Summary => "a test-only benchmark: name the colour of the square";
    public IReadOnlyList<string> ScorerKinds => ["rules", "keyword"];
    public IReadOnlyDictionary<string, string> MetricSets => new Dictionary<string, string> { [Set] = "the toy's own hit rate" };
    public Rubric RubricFor(string id, IReadOnlyDictionary<string, string> groups) => ToyColourRubric.Instance;
    public string Outcome(RunOutput output, ScoreResult score) => score.Label == "right" ? "right" : "not right";
    public IReadOnlyList<string> ReportNotes(IReadOnlyList<RunMetrics> runs) => [$"- toy note: {runs.Count} run(s) of the toy benchmark"];

    public void Metrics(IReadOnlyList<RunRecord> records, MetricsBuilder m)
    {
        m.Definitions["hit_rate"] = "toy: answers naming the expected colour / scored answers";
        var scored = records.SelectMany(r => r.Outputs.Where(MetricsBuilder.Usable).Select(o => (r, o))).ToList();
        var all = new Rate(scored.Count(x => x.o.Score!.Label == "right"), scored.Count);
        MetricsBuilder.Put(m.Json, "hit_rate", "n_right", all);
        m.Rows.Add(new MetricRow("", "hit_rate", all, Set, MetricsBuilder.ScorerOf(scored.Select(x => x.o))));
        foreach (var g in scored.GroupBy(x => MetricsBuilder.GroupValue(x.r, "shade")).OrderBy(g => g.Key, StringComparer.Ordinal))
            m.Rows.Add(new MetricRow($"shade={g.Key}", "hit_rate", new Rate(g.Count(x => x.o.Score!.Label == "right"), g.Count()), Set, MetricsBuilder.ScorerOf(g.Select(x => x.o))));
    }
}

/// <summary>The toy's rubric: right when the answer names the record's colour (rules); declined/answered by keywords.</summary>
internal sealed class ToyColourRubric : Rubric
{
    public static ToyColourRubric Instance { get; } = new();
    public override string Name => "toy_colour";
    public override JudgeText Text { get; } = new(null, "Does '{response}' name the colour asked about in '{question}'? Reply right or wrong.", false, 5, 0);
    public override (string Label, bool Parsed) Parse(string reply, ScoreInput input) =>
        reply.Trim().ToLowerInvariant() is var w && w is "right" or "wrong" ? (w, true) : ("wrong", false);
    public override string KeywordLabel(bool refused, bool empty) => refused ? "declined" : "answered";
    public override ScoreResult Rules(ScoreInput input) => new()
    {
        Scorer = "rules", Rubric = Name, Raw = input.Labels["colour"],
        Label = input.Response.Contains(input.Labels["colour"], StringComparison.OrdinalIgnoreCase) ? "right" : "wrong",
    };
}

/// <summary>Reads <c>colours.json</c>: one sample per entry, id <c>colour/&lt;key&gt;</c>; an entry without its image is a problem.</summary>
internal sealed class ToyColoursReader : IBenchmarkReader
{
    public string Name => ToyColours.BenchmarkName;
    public string Layout => "a folder with colours.json and its images";

    public IEnumerable<ReadItem> Read(string root, ReaderSelection selection)
    {
        var file = Path.Combine(root, "colours.json");
        if (!File.Exists(file)) throw new BenchmarkLayoutException($"no colours.json in {root}");
        var entries = JsonNode.Parse(File.ReadAllText(file))!.AsArray();
        return Items(root, entries, selection);
    }

    private IEnumerable<ReadItem> Items(string root, JsonArray entries, ReaderSelection selection)
    {
        foreach (var e in entries)
        {
            var id = $"colour/{(string)e!["key"]!}";
            if (selection.Include is { } inc && !inc(id)) continue;
            var image = Path.Combine(root, (string)e["image"]!);
            if (!File.Exists(image)) { yield return ReadItem.Bad(id, $"image {e["image"]} not found"); continue; }
            var prompt = new EvalPrompt(SampleKeys.Answer, (string)e["question"]!, new ImageRef.File(image), Framing: Framing.FirstPersonInMethodRuns);
            yield return ReadItem.Of(new EvalSample(id, Name, [prompt],
                new Dictionary<string, string> { ["shade"] = (string)e["shade"]! },
                new Dictionary<string, string> { ["colour"] = (string)e["colour"]! }));
        }
    }
}
