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

public class MathVistaTests
{
    private static List<ReadItem> Read(string root, ReaderSelection? s = null) => BenchmarkReaders.Get("mathvista").Read(root, s ?? ReaderSelection.All).ToList();

    private static EvalSample Sample(List<ReadItem> items, string id) => items.Single(i => i.Sample?.Id == id).Sample!;

    private static MathVistaQuestion Q(EvalSample s) => MathVistaQuestion.Of(s.Id, s.Labels);

    [Test]
    public void HubLayout_IdsQueryPromptGroupsSkillsAndProblems()
    {
        var (root, valid, problems) = MathVistaFolders.WriteHub(NewDir(), broken: true);
        var items = Read(root);
        Assert.That(items.Where(i => i.Sample is not null).Select(i => i.Sample!.Id), Is.EqualTo(valid), "test-*.parquet is not read by default");
        Assert.That(items.Where(i => i.Problem is not null).Select(i => i.Problem!.Id), Is.EquivalentTo(problems.Keys));
        foreach (var p in items.Select(i => i.Problem).OfType<SampleProblem>()) Assert.That(p.Reason, Does.Contain(problems[p.Id]), p.Id);

        var mc = Sample(items, "1");
        Assert.That(mc.Prompts.Single().Question, Is.EqualTo(MathVistaFolders.McQuery), "the query is the prompt");
        Assert.That(mc.Prompts.Single().Image, Is.Not.Null);
        Assert.That(mc.Groups["task"], Is.EqualTo("textbook question answering"));
        Assert.That(mc.Groups["language"], Is.EqualTo("english"));
        Assert.That(mc.Labels["skills"], Is.EqualTo("[\"arithmetic reasoning\",\"algebraic reasoning\"]"));
        Assert.That(Q(mc).AnswerOption, Is.EqualTo("B"));
        Assert.That(mc.Labels["prompts"], Is.EqualTo("official"));
        var f = Q(Sample(items, "3"));
        Assert.That((f.Precision, f.AnswerType), Is.EqualTo(((double?)2.0, "float")));
        Assert.That(Sample(items, "3").Prompts.Single().Question, Does.EndWith(BenchmarkFolders.NonAscii));
        Assert.That(Sample(items, "2").Labels["unit"], Is.EqualTo("g"));

        var vlm = Read(root, new ReaderSelection(Prompts: "vlmevalkit"));
        Assert.That(Sample(vlm, "1").Labels["prompts"], Is.EqualTo("vlmevalkit"));
        Assert.That(Sample(vlm, "1").Prompts.Single().Question, Is.EqualTo(MathVistaFolders.McQuery), "VLMEvalKit sends its question column: the same query");
        Assert.Throws<BenchmarkLayoutException>(() => Read(root, new ReaderSelection(Prompts: "lmms-eval")));
        Assert.That(Read(root, new ReaderSelection(Splits: new HashSet<string> { "test" })).Select(i => i.Sample?.Id), Is.EqualTo(new[] { "1001" }));
        Assert.Throws<BenchmarkLayoutException>(() => Read(NewDir()));
    }

    [Test]
    public void TsvLayout_ChoicesSkillsPrecisionMd5AndProblems()
    {
        var (file, valid, problems) = MathVistaFolders.WriteTsv(NewDir(), broken: true);
        foreach (var root in new[] { file, Path.GetDirectoryName(file)! })
        {
            var items = Read(root);
            Assert.That(items.Where(i => i.Sample is not null).Select(i => i.Sample!.Id), Is.EqualTo(valid));
            Assert.That(items.Where(i => i.Problem is not null).Select(i => i.Problem!.Id), Is.EquivalentTo(problems.Keys));
            foreach (var p in items.Select(i => i.Problem).OfType<SampleProblem>()) Assert.That(p.Reason, Does.Contain(problems[p.Id]), p.Id);
            var mc = Q(Sample(items, "1"));
            Assert.That(mc.Choices, Is.EqualTo(new[] { "3/11", "8/11", "6/11", "3/5" }));
            Assert.That((mc.Answer, mc.AnswerOption), Is.EqualTo(("8/11", "B")));
            Assert.That(Q(Sample(items, "2")).Choices, Is.Empty, "None: a free-form problem");
            Assert.That(Q(Sample(items, "3")).Precision, Is.EqualTo(2.0));
            Assert.That(Sample(items, "2").Groups["task"], Is.EqualTo("visual question answering"));
            Assert.That(Sample(items, "1").Labels["tsv_md5"], Does.Contain(VlmEvalTsv.Md5(file)).And.Contain("differs from VLMEvalKit's f199b98e178e5a2a20e7048f5dcb0464"));
        }
    }

    private static readonly MathVistaQuestion Mc = new("q", ["3/11", "8/11", "6/11", "3/5"], null, "8/11", "multi_choice", "text") { AnswerOption = "B" };
    private static MathVistaQuestion Free(string type, string answer, double? precision = null) => new("q", [], precision, answer, "free_form", type);

    // calculate_score.py normalize_extracted_answer: MC letter / (X) / nearest choice; str(int(float(x))); str(round(float(x), precision))
    [TestCase("B", "8/11")]
    [TestCase("(B) 8/11", "8/11")]
    [TestCase(" (c) ", "6/11")]
    [TestCase("8/12", "8/11")]
    [TestCase("3/4", "3/5")]
    [TestCase("", "3/5")]
    public void OfficialMultipleChoiceNormalisation(string extraction, string expected) =>
        Assert.That(MathVistaAnswers.Normalize(extraction, Mc), Is.EqualTo(expected));

    [TestCase("integer", null, "14", "14")]
    [TestCase("integer", null, "14.0", "14")]
    [TestCase("integer", null, "14.9", "14")]
    [TestCase("integer", null, "-2.5", "-2")]
    [TestCase("integer", null, "1e3", "1000")]
    [TestCase("integer", null, "fourteen", null)]
    [TestCase("float", 2.0, "1.449", "1.45")]
    [TestCase("float", 2.0, "1.45", "1.45")]
    [TestCase("float", 2.0, "2.675", "2.67")] // Python rounds the binary value: 2.67499999…
    [TestCase("float", 1.0, "2", "2.0")]
    [TestCase("float", 1.0, "0.25", "0.2")] // half to even
    [TestCase("float", 1.0, "$1.2", null)]
    [TestCase("list", null, "[2007, 2008]", "[2007, 2008]")]
    public void OfficialPrecisionAwareNormalisation(string type, double? precision, string extraction, string? expected) =>
        Assert.That(MathVistaAnswers.Normalize(extraction, Free(type, "0", precision)), Is.EqualTo(expected));

    [TestCase(2.0, "2.0")]
    [TestCase(1e16, "1e+16")]
    [TestCase(1e15, "1000000000000000.0")]
    [TestCase(0.0001, "0.0001")]
    [TestCase(0.00001, "1e-05")]
    [TestCase(-0.5, "-0.5")]
    [TestCase(1.2345678901234567e-7, "1.2345678901234566e-07")]
    [TestCase(123456789012345678.0, "1.2345678901234568e+17")]
    [TestCase(5e-324, "5e-324")]
    public void PythonFloatText(double value, string expected) => Assert.That(MathVistaAnswers.PyRepr(value), Is.EqualTo(expected));

    [Test]
    public void PythonSums_RoundTripAsPythonPrints() => Assert.That(MathVistaAnswers.PyRepr(0.1 + 0.2), Is.EqualTo("0.30000000000000004"));

    [Test]
    public void OfficialPreExtraction_AndQuickRule()
    {
        Assert.That(MathVistaAnswers.PreExtract("", Mc), Is.EqualTo(""), "an empty response extracts to \"\"");
        Assert.That(MathVistaAnswers.PreExtract("8/11", Mc), Is.EqualTo("8/11"), "a response equal to a choice");
        Assert.That(MathVistaAnswers.PreExtract("The answer is (B)", Mc), Is.Null, "anything else goes to the extractor");
        Assert.That(MathVistaAnswers.PreExtract(" 14\n", Free("integer", "14")), Is.EqualTo("14"), "int() strips white space");
        Assert.That(MathVistaAnswers.PreExtract("14.0", Free("integer", "14")), Is.Null, "int('14.0') raises");
        Assert.That(MathVistaAnswers.PreExtract("1.50", Free("float", "1.5", 1)), Is.EqualTo("1.5"), "str(float('1.50'))");
        Assert.That(MathVistaAnswers.QuickExtract("So. The answer is \"1.45\"."), Is.EqualTo("1.45"));
        Assert.That(MathVistaAnswers.QuickExtract("The answer is 1.45."), Is.Null);
    }

    // VLMEvalKit post_check: int(res) == int(answer), float(res) == float(answer) with no rounding, list never
    [TestCase("integer", "14", "14", true)]
    [TestCase("integer", "14", "14.0", false)]
    [TestCase("float", "1.45", "1.450", true)]
    [TestCase("float", "1.45", "1.449", false)]
    [TestCase("list", "[2007, 2008]", "[2007, 2008]", false)]
    public void VlmEvalKitPostCheck(string type, string answer, string res, bool correct) =>
        Assert.That(MathVistaAnswers.VlmCorrect(res, Free(type, answer, 2)), Is.EqualTo(correct));

    [Test]
    public void TheTwoSetsDisagreeWhereTheSpecSaysTheyDo()
    {
        var f = Free("float", "1.45", 2);
        Assert.That((MathVistaAnswers.OfficialCorrect("1.449", f), MathVistaAnswers.VlmCorrect("1.449", f)), Is.EqualTo((true, false)), "precision rounding");
        var i = Free("integer", "14");
        Assert.That((MathVistaAnswers.OfficialCorrect("14.0", i), MathVistaAnswers.VlmCorrect("14.0", i)), Is.EqualTo((true, false)));
        Assert.That(MathVistaAnswers.VlmPrefetch("I pick (C).", Mc), Is.EqualTo("C"), "prefetch takes any letter it infers, right or wrong");
        Assert.That(MathVistaAnswers.VlmPrefetch("999", i), Is.Null, "a number is prefetched only when it is the answer");
    }

    private static string Sha(string s) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(s)));

    [Test]
    public void ExtractorPrompts_AreThePinnedFilesBytes()
    {
        // sha256 of the texts the pinned Python builds (ext_ans.py demo_prompt through create_test_prompt; VLMEvalKit's
        // build_mathvista_gpt4_prompt), with {question} and {response} where the query and the prediction go
        Assert.That(Sha(MathVistaRubric.OfficialTemplate), Is.EqualTo("b07002d544dff653cf8e1c3800b5c8e4635963d5c6812b97244829368456dd8c"));
        Assert.That(Sha(MathVistaRubric.VlmTemplate), Is.EqualTo("de4b828eee3c5267eebe97ff219578d67e4e29a7b43e419419d59a85a3a94512"));
        Assert.That(MathVistaRubric.OfficialTemplate, Does.Contain("Question: What fraction of the shape is blue?\nChoices:\n(A) 3/11\n(B) 8/11"));
        Assert.That(MathVistaRubric.VlmTemplate, Does.EndWith("\n{question}\nModel respone: {response}Extracted answer:"));
    }

    private static ScoreInput Input(EvalSample s, string answer) => new("mathvista", s.Id, SampleKeys.Answer, s.Prompts[0].Question, answer, s.Groups, s.Labels);

    private static ChatClientScorer Scorer(FakeJudgeServer server) =>
        new(SafeCoDe.Torch.Safety.EndpointJudge.CreateClient(new SafeCoDe.Torch.Safety.EndpointJudgeOptions { BaseUrl = server.BaseUrl, ApiKey = "k", Model = "gpt-4o-mini-2024-07-18" }),
            "gpt-4o-mini-2024-07-18", ownsClient: true) { InitialBackoff = TimeSpan.FromMilliseconds(5), MaxRetries = 0 };

    [Test]
    public async Task Extractors_AskedWithTheirOwnPromptsOnlyWhereRulesFail()
    {
        var (root, _, _) = MathVistaFolders.WriteHub(NewDir());
        var items = Read(root);
        using var server = new FakeJudgeServer(body => FakeJudgeServer.UserText(body).Contains("thousand grams") ? "1000" : "B");
        using var scorer = Scorer(server);

        // MC: VLMEvalKit's prefetch finds B; MathVista's own pre-extraction does not, so its extractor is asked
        var mc = await scorer.ScoreAsync(Input(Sample(items, "1"), "The correct answer is (B) 8/11."));
        Assert.That(server.Calls, Is.EqualTo(1));
        var official = FakeJudgeServer.UserText(server.Requests.Single());
        Assert.That(official, Is.EqualTo(MathVistaRubric.OfficialTemplate.Replace("{question}", MathVistaFolders.McQuery).Replace("{response}", "The correct answer is (B) 8/11.")));
        Assert.That(official, Does.EndWith("(D) 3/5\n\nThe correct answer is (B) 8/11.\n\nExtracted answer: "));
        Assert.That(mc.Sets, Is.EquivalentTo(new Dictionary<string, string> { ["mathvista/official"] = "correct", ["mathvista/vlmevalkit"] = "correct", ["mathvista/vlmevalkit:log"] = "prefetch" }));

        // integer in words: both extractors are asked; VLMEvalKit's with max_tokens 128 at temperature 0
        var n = await scorer.ScoreAsync(Input(Sample(items, "2"), "The cup holds one thousand grams."));
        Assert.That(server.Calls, Is.EqualTo(3));
        var vlm = server.Requests.Last();
        Assert.That(FakeJudgeServer.UserText(vlm), Does.EndWith($"\n{MathVistaFolders.IntQuery}\nModel respone: The cup holds one thousand grams.Extracted answer:"));
        Assert.That(((int?)vlm["max_tokens"] ?? (int?)vlm["max_completion_tokens"], (double?)vlm["temperature"]), Is.EqualTo(((int?)128, (double?)0)));
        Assert.That(n.Sets!["mathvista/vlmevalkit:log"], Is.EqualTo("judge"));
        Assert.That((n.Label, n.Sets["mathvista/vlmevalkit"]), Is.EqualTo(("correct", "correct")));

        // a plain number needs no extractor under the official set
        var plain = await scorer.ScoreAsync(Input(Sample(items, "2"), "1000"));
        Assert.That(server.Calls, Is.EqualTo(3), "pre-extraction and prefetch both settle '1000'");
        Assert.That(plain.Raw, Does.Contain("(rules)").And.Contain("(prefetch)"));
    }

    [Test]
    public async Task VlmEvalKitExtractor_FiveTriesAtRisingTemperature_ThenAnError()
    {
        var (root, _, _) = MathVistaFolders.WriteHub(NewDir());
        var items = Read(root);
        var s = Sample(items, "2");
        using (var server = new FakeJudgeServer(_ => "999", failFirst: 2))
        using (var scorer = Scorer(server))
        {
            var r = await scorer.ScoreAsync(Input(s, "999"));
            Assert.That(server.Requests.Select(b => (double?)b["temperature"]), Is.EqualTo(new double?[] { 0, 0.5, 1.0 }), "official pre-extracts 999; VLMEvalKit's prefetch fails (999 is wrong)");
            Assert.That(r.Raw, Does.Contain("judge after 2 failed tries"));
            Assert.That((r.Sets!["mathvista/official"], r.Sets["mathvista/vlmevalkit"]), Is.EqualTo(("wrong", "wrong")));
        }
        using (var server = new FakeJudgeServer(_ => "999", failFirst: 5))
        using (var scorer = Scorer(server))
        {
            var r = await scorer.ScoreAsync(Input(s, "999"));
            Assert.That(server.Calls, Is.EqualTo(5));
            Assert.That(r.Label, Is.EqualTo("error"), "an extractor that never answers fails visibly");
            Assert.That(r.Error, Does.Contain("failed 5 times"));
        }
    }

    [Test]
    public async Task EmptyExtraction_IsCountedUnparsed_AndTheArithmeticPerTaskAndSkill()
    {
        var (root, _, _) = MathVistaFolders.WriteHub(NewDir());
        var items = Read(root);
        var rules = new RuleScorer();
        // 1: MC answered by letter in prose → official finds nothing by rules (unparsed, nearest choice to ""), VLMEvalKit prefetch B
        var s1 = await rules.ScoreAsync(Input(Sample(items, "1"), "I think it is B"));
        // 2: 1000 → both correct; 3: 1.449 → official correct (precision 2), VLMEvalKit wrong; 4: list → official correct, VLMEvalKit never
        var s2 = await rules.ScoreAsync(Input(Sample(items, "2"), "1000"));
        var s3 = await rules.ScoreAsync(Input(Sample(items, "3"), "The answer is \"1.449\"."));
        var s4 = await rules.ScoreAsync(Input(Sample(items, "4"), "The answer is \"[2007, 2008]\"."));
        Assert.That(s1.Parsed, Is.False);
        Assert.That((s1.Sets!["mathvista/official"], s1.Sets["mathvista/vlmevalkit"]), Is.EqualTo(("wrong", "correct")));
        Assert.That((s3.Sets!["mathvista/official"], s3.Sets["mathvista/vlmevalkit"], s3.Sets["mathvista/vlmevalkit:log"]), Is.EqualTo(("correct", "wrong", "none")));
        Assert.That((s4.Sets!["mathvista/official"], s4.Sets["mathvista/vlmevalkit"]), Is.EqualTo(("correct", "wrong")));

        RunRecord Rec(string id, ScoreResult s) => new()
        {
            Id = id, Benchmark = "mathvista", Groups = Sample(items, id).Groups, Labels = Sample(items, id).Labels,
            Outputs = [new RunOutput { Key = SampleKeys.Answer, Question = "q", Answer = "a", Score = s }],
        };
        var m = MetricsCalculator.Compute("mathvista", "vanilla", null, "rules", [Rec("1", s1), Rec("2", s2), Rec("3", s3), Rec("4", s4)], 0);
        Rate Row(string path) => m.Rows.Single(r => r.Path == path).Rate;
        Assert.That(Row("official_acc"), Is.EqualTo(new Rate(3, 4)));
        Assert.That(Row("vlmevalkit_acc"), Is.EqualTo(new Rate(2, 4)));
        // arithmetic reasoning: problems 1, 2, 3 (multi-label)
        Assert.That(Row("skill=arithmetic reasoning.official_acc"), Is.EqualTo(new Rate(2, 3)));
        Assert.That(Row("skill=arithmetic reasoning.vlmevalkit_acc"), Is.EqualTo(new Rate(2, 3)));
        Assert.That(Row("task=math word problem.vlmevalkit_acc"), Is.EqualTo(new Rate(0, 1)));
        Assert.That(m.Rows.Select(r => r.MetricSet).Distinct(), Is.EquivalentTo(new[] { "mathvista/official", "mathvista/vlmevalkit" }));
        Assert.That(m.Rows.All(r => r.Scorer == "rules"), Is.True, "each row names its scorer (the extractor model with a judge)");
        Assert.That((int)m.Json["vlmevalkit"]!["prefetch"]!, Is.EqualTo(2), "1 (letter) and 2 (the right number)");
        Assert.That((int)m.Json["official"]!["per_answer_type"]!["float"]!["n"]!, Is.EqualTo(1));
        Assert.That(m.Unparsed, Is.EqualTo(1));
    }
}
