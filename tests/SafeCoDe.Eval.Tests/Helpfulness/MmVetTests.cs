using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using NUnit.Framework;
using SafeCoDe.Eval.Benchmarks;
using SafeCoDe.Eval.Benchmarks.Helpfulness;
using SafeCoDe.Eval.Metrics;
using SafeCoDe.Eval.Runs;
using SafeCoDe.Eval.Scoring;
using SafeCoDe.Eval.Tests.Harness;
using static SafeCoDe.Eval.Tests.Harness.T;

namespace SafeCoDe.Eval.Tests.Helpfulness;

public class MmVetTests
{
    private static List<ReadItem> Read(string root, ReaderSelection? s = null) => BenchmarkReaders.Get("mm-vet").Read(root, s ?? ReaderSelection.All).ToList();

    private static EvalSample Sample(List<ReadItem> items, string id) => items.Single(i => i.Sample?.Id == id).Sample!;

    [Test]
    public void ReleaseLayout_IdsCapabilitiesPromptAndProblems()
    {
        var (dir, valid, problems) = MmVetFolders.WriteRelease(NewDir(), broken: true);
        foreach (var root in new[] { dir, Path.Combine(dir, "mm-vet"), Path.Combine(dir, "mm-vet", "mm-vet.json") })
        {
            var items = Read(root);
            Assert.That(items.Where(i => i.Sample is not null).Select(i => i.Sample!.Id), Is.EqualTo(valid));
            Assert.That(items.Where(i => i.Problem is not null).Select(i => i.Problem!.Id), Is.EquivalentTo(problems.Keys));
            foreach (var p in items.Select(i => i.Problem).OfType<SampleProblem>()) Assert.That(p.Reason, Does.Contain(problems[p.Id]), p.Id);
            var s = Sample(items, "v1_1");
            Assert.That(s.Prompts.Single().Question, Is.EqualTo("What is x in the equation? " + BenchmarkFolders.NonAscii), "the question is the prompt");
            Assert.That(s.Groups["capabilities"], Is.EqualTo("ocr,math"));
            Assert.That(s.Labels["answer"], Is.EqualTo("-1<AND>-5"));
        }
        Assert.Throws<BenchmarkLayoutException>(() => Read(NewDir()));
    }

    [Test]
    public void TsvLayout_CategoryAsCapabilities_Md5AndProblems()
    {
        var (file, valid, problems) = MmVetFolders.WriteTsv(NewDir(), broken: true);
        var items = Read(file);
        Assert.That(items.Where(i => i.Sample is not null).Select(i => i.Sample!.Id), Is.EqualTo(valid));
        Assert.That(items.Where(i => i.Problem is not null).Select(i => i.Problem!.Id), Is.EquivalentTo(problems.Keys));
        Assert.That(Sample(items, "2").Labels["capability"], Is.EqualTo("[\"rec\",\"know\",\"gen\"]"));
        Assert.That(Sample(items, "0").Labels["tsv_md5"], Does.Contain("differs from VLMEvalKit's 748aa6d4aa9d4de798306a63718455e3"));
    }

    private static string Sha(string s) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(s)));

    [Test]
    public void GraderTexts_AreThePinnedBytes_AndFilledAsBothScorersFillThem()
    {
        // sha256 of MM-Vet's prompt + "\n{question} | {answer} | {response} | " and of VLMEvalKit's build_mmvet_gpt4_prompt
        // with the placeholders, computed from the pinned Python files
        Assert.That(Sha(MmVetRubric.OfficialTemplate), Is.EqualTo("1b9502abe1b9e102ab1e4a14540014185821a3d638ea6131a487998f52c954c8"));
        Assert.That(Sha(MmVetRubric.VlmTemplate), Is.EqualTo("6f2b56715f0d39a678471f405a401c9ec8193471d7c9b835677599aa15a415a3"));
        var filled = MmVetRubric.Fill(MmVetRubric.OfficialTemplate, "What is x in the equation?", "-1<AND>-5", "x = {question}");
        Assert.That(filled, Does.EndWith("physical characteristics. | 1.0\n\nWhat is x in the equation? | -1 <AND> -5 | x = {question} | "));
        Assert.That(MmVetRubric.VlmTemplate, Does.StartWith("\nCompare the ground truth"));
    }

    [TestCase("0.5", 0.5)]
    [TestCase("1.0", 1.0)]
    [TestCase("0 ", 0.0)]
    [TestCase("0.4 since", 0.4)]
    [TestCase("Correctness: 0.5", null)]
    [TestCase("1.5", null)]
    [TestCase("nan", null)]
    [TestCase("", null)]
    public void OfficialParse_FirstWordAsAScoreInZeroOne(string reply, double? expected) => Assert.That(MmVetRubric.OfficialScore(reply), Is.EqualTo(expected));

    [TestCase("0.5", 0.5)]
    [TestCase(" 0.3\n", 0.3)]
    [TestCase("0.4 since", null)]
    [TestCase("-0.1", null)]
    public void VlmEvalKitParse_TheWholeReply(string reply, double? expected) => Assert.That(MmVetRubric.VlmScore(reply), Is.EqualTo(expected));

    private static ScoreInput Input(EvalSample s, string answer) => new("mm-vet", s.Id, SampleKeys.Answer, s.Prompts[0].Question, answer, s.Groups, s.Labels);

    private static ChatClientScorer Scorer(FakeJudgeServer server, int runs = 1) =>
        new(SafeCoDe.Torch.Safety.EndpointJudge.CreateClient(new SafeCoDe.Torch.Safety.EndpointJudgeOptions { BaseUrl = server.BaseUrl, ApiKey = "k", Model = "gpt-4-0613" }),
            "gpt-4-0613", ownsClient: true) { InitialBackoff = TimeSpan.FromMilliseconds(5), MaxRetries = 0, Runs = runs };

    [Test]
    public async Task OfficialReAsk_ThenVlmEvalKit_AndUnparsableRepliesCounted()
    {
        var (dir, _, _) = MmVetFolders.WriteRelease(NewDir());
        var s = Sample(Read(dir), "v1_1");
        using (var server = new FakeJudgeServer(body =>
        {
            var t = FakeJudgeServer.UserText(body);
            return t.EndsWith("(digit): ") ? "0.7" : t.StartsWith('\n') ? "0.6" : "The";
        }))
        using (var scorer = Scorer(server))
        {
            var r = await scorer.ScoreAsync(Input(s, "x = -1"));
            Assert.That(server.Calls, Is.EqualTo(3), "official: one call and one re-ask; VLMEvalKit: one call");
            var first = FakeJudgeServer.UserText(server.Requests.First());
            Assert.That(first, Is.EqualTo(MmVetRubric.Fill(MmVetRubric.OfficialTemplate, s.Labels["question"], "-1<AND>-5", "x = -1")));
            Assert.That(first, Does.EndWith($" | -1 <AND> -5 | x = -1 | "));
            Assert.That(server.Requests.Select(b => (double?)b["temperature"]), Is.EqualTo(new double?[] { 0, 0, 0 }));
            Assert.That(server.Requests.All(b => ((int?)b["max_tokens"] ?? (int?)b["max_completion_tokens"]) == 3), Is.True);
            Assert.That(r.Sets!["mm-vet/official"], Is.EqualTo("0.7"));
            Assert.That(r.Sets["mm-vet/vlmevalkit"], Is.EqualTo("0.6"));
            Assert.That(r.Parsed, Is.True);
        }
        using (var server = new FakeJudgeServer(_ => "maybe"))
        using (var scorer = Scorer(server))
        {
            var r = await scorer.ScoreAsync(Input(s, "x = -1"));
            var temps = server.Requests.Select(b => (double?)b["temperature"]).ToList();
            Assert.That(temps, Is.EqualTo(new double?[] { 0, 0, 0.5, 1.0, 1.5, 2.0, 0, 0.5, 1.0, 1.5, 2.0 }),
                "MM-Vet: the call and five re-asks (the last reply is not read); VLMEvalKit: five tries");
            Assert.That((r.Parsed, r.Sets!["mm-vet/official"], r.Sets["mm-vet/vlmevalkit"]), Is.EqualTo((false, "0", "0")));
            Assert.That((r.Sets["mm-vet/official:unparsed"], r.Sets["mm-vet/vlmevalkit:unparsed"]), Is.EqualTo(("1", "1")));
            Assert.That(r.Raw, Does.Contain("unparsable"));
        }
    }

    [Test]
    public async Task SeveralRuns_EachItsOwnCall_MeanOfTheRuns()
    {
        var (dir, _, _) = MmVetFolders.WriteRelease(NewDir());
        var s = Sample(Read(dir), "v1_0");
        int official = 0;
        string[] replies = ["0.2", "0.4", "0.9"];
        using var server = new FakeJudgeServer(body => FakeJudgeServer.UserText(body).StartsWith('\n') ? "1.0" : replies[Interlocked.Increment(ref official) - 1]);
        using var scorer = Scorer(server, runs: 3);
        var r = await scorer.ScoreAsync(Input(s, "a bear"));
        Assert.That(official, Is.EqualTo(3), "one grader call per run (the cache keeps them apart)");
        Assert.That(r.Sets!["mm-vet/official:runs"], Is.EqualTo("[0.2,0.4,0.9]"));
        Assert.That(double.Parse(r.Sets["mm-vet/official"], System.Globalization.CultureInfo.InvariantCulture), Is.EqualTo(0.5).Within(1e-12));
        Assert.That(r.Sets["mm-vet/vlmevalkit"], Is.EqualTo("1"), "VLMEvalKit grades once");
    }

    private static ScoreResult Graded(double[] runs, double vlm, int unparsed = 0) => new()
    {
        Scorer = "openai:gpt-4-0613", Rubric = "mm_vet_grade", Label = runs.Average().ToString("R", System.Globalization.CultureInfo.InvariantCulture), Parsed = unparsed == 0,
        Sets = new Dictionary<string, string>
        {
            ["mm-vet/official"] = runs.Average().ToString("R", System.Globalization.CultureInfo.InvariantCulture),
            ["mm-vet/official:runs"] = System.Text.Json.JsonSerializer.Serialize(runs), ["mm-vet/official:unparsed"] = unparsed.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["mm-vet/vlmevalkit"] = vlm.ToString("R", System.Globalization.CultureInfo.InvariantCulture), ["mm-vet/vlmevalkit:unparsed"] = "0",
        },
    };

    [Test]
    public void Metrics_PerCapability_MeanAndStdOverRuns()
    {
        var (dir, _, _) = MmVetFolders.WriteRelease(NewDir());
        var items = Read(dir);
        RunRecord Rec(string id, ScoreResult s) => new()
        {
            Id = id, Benchmark = "mm-vet", Groups = Sample(items, id).Groups, Labels = Sample(items, id).Labels,
            Outputs = [new RunOutput { Key = SampleKeys.Answer, Question = "q", Answer = "a", Score = s }],
        };
        // run totals: (0.2+1.0+0.3)/3 = 0.5, (0.4+0.0+0.2)/3 = 0.2, (0.9+0.5+0.7)/3 = 0.7 → mean 0.4667, std (ddof 0) 0.2055
        var m = MetricsCalculator.Compute("mm-vet", "vanilla", null, "openai:gpt-4-0613",
            [Rec("v1_0", Graded([0.2, 0.4, 0.9], 0.5)), Rec("v1_1", Graded([1.0, 0.0, 0.5], 1.0, unparsed: 1)), Rec("v1_2", Graded([0.3, 0.2, 0.7], 0.0))], 0);
        Rate Row(string path) => m.Rows.Single(r => r.Path == path).Rate;
        Assert.That(Row("official_score").Value, Is.EqualTo(1.4 / 3).Within(1e-12));
        Assert.That(Row("capability=rec.official_score").Value, Is.EqualTo((0.5 + 0.4) / 2).Within(1e-12), "v1_0 (mean 0.5) and v1_2 (mean 0.4)");
        Assert.That(Row("capability=math.vlmevalkit_score").Value, Is.EqualTo(1.0));
        Assert.That(Row("vlmevalkit_score"), Is.EqualTo(Rate.Mean(1.5, 3)));
        Assert.That(Row("vlmevalkit_score").ToString(), Is.EqualTo("50.0% (1.5/3)"));
        var o = m.Json["official"]!;
        Assert.That(o["runs"]!.AsArray().Select(x => (double)x!), Is.EqualTo(new[] { 0.5, 0.2, 0.7 }).Within(1e-12));
        Assert.That((double)o["std"]!, Is.EqualTo(Math.Sqrt((0.0011111 + 0.0711111 + 0.0544444) / 3)).Within(1e-5));
        Assert.That((int)o["n_unparsed_runs"]!, Is.EqualTo(1));
        Assert.That((int)o["per_capability_set"]!["ocr_math"]!["n"]!, Is.EqualTo(1));
        Assert.That((int)m.Json["vlmevalkit"]!["per_capability"]!["spat"]!["n"]!, Is.EqualTo(0));
        Assert.That(m.Unparsed, Is.EqualTo(1));
        Assert.That(m.Rows.Select(r => r.MetricSet).Distinct(), Is.EquivalentTo(new[] { "mm-vet/official", "mm-vet/vlmevalkit" }));
    }
}
