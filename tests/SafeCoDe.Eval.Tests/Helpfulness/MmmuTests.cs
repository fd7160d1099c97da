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

public class MmmuTests
{
    private static List<ReadItem> Read(string root, ReaderSelection? s = null) => BenchmarkReaders.Get("mmmu").Read(root, s ?? ReaderSelection.All).ToList();

    private static EvalSample Sample(List<ReadItem> items, string id) => items.Single(i => i.Sample?.Id == id).Sample!;

    [Test]
    public void HubLayout_IdsImagesProblemsAndTheOfficialPrompt()
    {
        var (root, valid, problems) = MmmuFolders.WriteHub(NewDir(), broken: true);
        var items = Read(root);
        Assert.That(items.Where(i => i.Sample is not null).Select(i => i.Sample!.Id), Is.EqualTo(valid), "dev-*.parquet is not read by default");
        Assert.That(items.Where(i => i.Problem is not null).Select(i => i.Problem!.Id), Is.EquivalentTo(problems.Keys));
        foreach (var p in items.Select(i => i.Problem).OfType<SampleProblem>()) Assert.That(p.Reason, Does.Contain(problems[p.Id]), p.Id);

        var one = Sample(items, "validation_Accounting_1");
        Assert.That(one.Prompts.Single().Question, Is.EqualTo(
            "How much is <image 1> worth?\n\n(A) $6\n(B) $7\n(C) $8\n(D) $9\n\n\nAnswer with the option's letter from the given choices directly."));
        Assert.That(one.Groups, Is.EquivalentTo(new Dictionary<string, string> { ["subject"] = "Accounting", ["discipline"] = "Business", ["split"] = "validation" }));
        Assert.That(one.Prompts.Single().Framing, Is.EqualTo(Framing.FirstPersonInMethodRuns));
        Assert.That(Sample(items, "validation_Math_1").Prompts.Single().Question, Is.EqualTo("What is x in <image 1>?\n\nAnswer the question using a single word or phrase."));
        Assert.That(Sample(items, "validation_Math_1").Groups["discipline"], Is.EqualTo("Science"));

        var three = Sample(items, "validation_Accounting_2").Prompts.Single();
        Assert.That(three.Question, Does.Contain(BenchmarkFolders.NonAscii).And.StartWith("Compare <image 1>, <image 3> and <image 2>."));
        Assert.That(three.MoreImages, Has.Count.EqualTo(2), "three images: the first on the prompt, two more");
        Assert.That(((ImageRef.Embedded)three.Image!).Origin, Does.Contain("image_1"));

        var dev = Read(root, new ReaderSelection(Splits: new HashSet<string> { "dev" }));
        Assert.That(dev.Select(i => i.Sample!.Id), Is.EqualTo(new[] { "dev_Math_1" }));
    }

    [Test]
    public void VlmEvalKitPrompts_AsItsDatasetBuildsThem_ImagesWhereTheirPlaceholdersStand()
    {
        var (root, _, _) = MmmuFolders.WriteHub(NewDir());
        var items = Read(root, new ReaderSelection(Prompts: "VLMEvalKit"));
        Assert.That(Sample(items, "validation_Accounting_1").Prompts.Single().Question, Is.EqualTo(
            "Question: How much is  worth?\nOptions:\nA. $6\nB. $7\nC. $8\nD. $9\nPlease select the correct answer from the options above. \n"));
        Assert.That(Sample(items, "validation_Math_1").Prompts.Single().Question, Is.EqualTo("Question: What is x in ?\n"));
        Assert.That(Sample(items, "validation_Math_1").Labels["prompts"], Is.EqualTo("vlmevalkit"));
        var three = Sample(items, "validation_Accounting_2").Prompts.Single();
        var order = new[] { three.Image! }.Concat(three.MoreImages).Select(i => ((ImageRef.Embedded)i).Origin.Split('\'')[^2]).ToList();
        Assert.That(order, Is.EqualTo(new[] { "image_1", "image_3", "image_2" }));
        Assert.Throws<BenchmarkLayoutException>(() => Read(root, new ReaderSelection(Prompts: "lmms-eval")));
    }

    [Test]
    public void TsvLayout_ListAndReferencedImages_SplitsMd5AndProblems()
    {
        var (file, valid, problems) = MmmuFolders.WriteTsv(NewDir(), broken: true);
        foreach (var root in new[] { file, Path.GetDirectoryName(file)! })
        {
            var items = Read(root);
            Assert.That(items.Where(i => i.Sample is not null).Select(i => i.Sample!.Id), Is.EqualTo(valid), "the dev row is skipped");
            Assert.That(items.Where(i => i.Problem is not null).Select(i => i.Problem!.Id), Is.EquivalentTo(problems.Keys));
            foreach (var p in items.Select(i => i.Problem).OfType<SampleProblem>()) Assert.That(p.Reason, Does.Contain(problems[p.Id]), p.Id);
            var two = Sample(items, "validation_Accounting_2");
            Assert.That(two.Prompts.Single().MoreImages, Has.Count.EqualTo(1));
            Assert.That(two.Prompts.Single().Question, Does.StartWith("Compare <image 2> with\n<image 1>.\n\n(A) eins\n(B) zwei\n"), "a quoted cell keeps its newline");
            var open = Sample(items, "validation_Math_1");
            Assert.That(((ImageRef.Embedded)open.Prompts.Single().Image!).Bytes, Is.EqualTo(BenchmarkFolders.Png(1)), "index 3 reuses the image of index 1");
            Assert.That(open.Labels["question_type"], Is.EqualTo("open"));
            Assert.That(open.Labels["tsv_md5"], Does.Contain(VlmEvalTsv.Md5(file)).And.Contain("differs from VLMEvalKit's 585e8ad75e73f75dcad265dfd0417d64"));
        }
    }

    [TestCase("(B) $7", "B")]
    [TestCase("B", "B")]
    [TestCase("The answer is C.", "C")]
    [TestCase("Not (A) but (D).", "D")]
    [TestCase("I think the value of the item is clearly $8 here", "C")]
    [TestCase("$8", null)]
    [TestCase("no letter at all", null)]
    public void OfficialMultipleChoiceParsing(string response, string? expected)
    {
        var letters = new[] { "A", "B", "C", "D" };
        var options = new Dictionary<string, string> { ["A"] = "$6", ["B"] = "$7", ["C"] = "$8", ["D"] = "$9" };
        Assert.That(MmmuOfficial.MultiChoice(response, letters, options), Is.EqualTo(expected));
    }

    [TestCase("The answer is 42.", "42", true)]
    [TestCase("x = 42.001", "42", true)]
    [TestCase("So the capital is Paris", "paris", true)]
    [TestCase("It is 1,000 grams", "1000", true)]
    [TestCase("It is 41.", "42", false)]
    [TestCase("London", "paris", false)]
    public void OfficialOpenParsing(string response, string gold, bool correct) =>
        Assert.That(MmmuOfficial.OpenCorrect(MmmuOfficial.Open(response), [gold]), Is.EqualTo(correct));

    [TestCase("A", "A")]
    [TestCase("The answer is (B).", "B")]
    [TestCase("A or B", null)]
    [TestCase("Cannot determine the answer", "Z")]
    [TestCase("Z", "Z")]
    [TestCase("a cute teddy bear", "A")]
    [TestCase("Failed to obtain answer via API. ", null)]
    public void VlmEvalKitMatching(string answer, string? expected)
    {
        var choices = new Dictionary<string, string> { ["A"] = "teddy bear", ["B"] = "rabbit", ["C"] = "cat", ["D"] = "dog" };
        Assert.That(VlmEvalMatching.CanInfer(answer, choices), Is.EqualTo(expected));
    }

    private static ScoreInput Input(string id, string answer, EvalSample s) =>
        new("mmmu", id, SampleKeys.Answer, s.Prompts[0].Question, answer, s.Groups, s.Labels);

    [Test]
    public async Task RulesScorer_BothMetricSets_AndTheirArithmetic()
    {
        var (root, _, _) = MmmuFolders.WriteHub(NewDir());
        var items = Read(root);
        var scorer = new RuleScorer();
        // MC B correct; the open question: "A" matches VLMEvalKit's A = gold (a stray article counts), MMMU's parser does not find 42
        var s1 = await scorer.ScoreAsync(Input("validation_Accounting_1", "(B)", Sample(items, "validation_Accounting_1")));
        var s2 = await scorer.ScoreAsync(Input("validation_Accounting_2", "I am not sure", Sample(items, "validation_Accounting_2")));
        var s3 = await scorer.ScoreAsync(Input("validation_Math_1", "A number", Sample(items, "validation_Math_1")));
        Assert.That(s1.Sets, Is.EquivalentTo(new Dictionary<string, string> { ["mmmu/official"] = "correct", ["mmmu/vlmevalkit"] = "correct" }));
        Assert.That(s2.Parsed, Is.False, "nothing found: MMMU's random letter");
        Assert.That(s2.Sets!["mmmu/vlmevalkit"], Is.EqualTo("wrong"));
        Assert.That(s2.Raw, Does.Contain("no judge: Z"));
        Assert.That(s3.Sets, Is.EquivalentTo(new Dictionary<string, string> { ["mmmu/official"] = "wrong", ["mmmu/vlmevalkit"] = "correct" }));

        RunRecord Rec(string id, ScoreResult s) => new()
        {
            Id = id, Benchmark = "mmmu", Groups = Sample(items, id).Groups, Labels = Sample(items, id).Labels,
            Outputs = [new RunOutput { Key = SampleKeys.Answer, Question = "q", Answer = "a", Score = s }],
        };
        var m = MetricsCalculator.Compute("mmmu", "vanilla", null, "rules", [Rec("validation_Accounting_1", s1), Rec("validation_Accounting_2", s2), Rec("validation_Math_1", s3)], 0);
        Rate Row(string path) => m.Rows.Single(r => r.Path == path).Rate;
        int official2 = s2.Sets!["mmmu/official"] == "correct" ? 1 : 0;
        Assert.That(Row("official_acc"), Is.EqualTo(new Rate(1 + official2, 3)));
        Assert.That(Row("vlmevalkit_acc"), Is.EqualTo(new Rate(2, 3)));
        Assert.That(Row("discipline=Business.vlmevalkit_acc"), Is.EqualTo(new Rate(1, 2)));
        Assert.That(Row("subject=Math.official_acc"), Is.EqualTo(new Rate(0, 1)));
        Assert.That(m.Rows.Select(r => r.MetricSet).Distinct(), Is.EquivalentTo(new[] { "mmmu/official", "mmmu/vlmevalkit" }));
        Assert.That(m.Rows.Any(r => r.Group.StartsWith("split=")), Is.False, "one split: no split rows");
        Assert.That((int)m.Json["vlmevalkit"]!["per_subject"]!["Accounting"]!["n"]!, Is.EqualTo(2));
        Assert.That(m.Unparsed, Is.EqualTo(1), "the answer MMMU's parser found nothing in is counted");
    }

    [Test]
    public async Task JudgeScorer_AsksTheMatcherOnlyWhereMatchingFails_ThreeTries()
    {
        var (root, _, _) = MmmuFolders.WriteHub(NewDir());
        var items = Read(root);
        using var server = new FakeJudgeServer(body => FakeJudgeServer.UserText(body).Contains("Answer: seven dollars") ? "B" : "I cannot tell");
        using var scorer = new ChatClientScorer(SafeCoDe.Torch.Safety.EndpointJudge.CreateClient(new SafeCoDe.Torch.Safety.EndpointJudgeOptions { BaseUrl = server.BaseUrl, ApiKey = "k", Model = "judge-m" }), "judge-m", ownsClient: true)
            { InitialBackoff = TimeSpan.FromMilliseconds(10) };
        var matched = await scorer.ScoreAsync(Input("validation_Accounting_1", "(B)", Sample(items, "validation_Accounting_1")));
        Assert.That((matched.Sets!["mmmu/vlmevalkit"], server.Calls), Is.EqualTo(("correct", 0)), "matched by rules: no judge call");
        var judged = await scorer.ScoreAsync(Input("validation_Accounting_1", "seven dollars", Sample(items, "validation_Accounting_1")));
        Assert.That(judged.Sets!["mmmu/vlmevalkit"], Is.EqualTo("correct"));
        Assert.That(server.Calls, Is.EqualTo(1));
        var text = FakeJudgeServer.UserText(server.Requests.Last());
        Assert.That(text, Does.StartWith("You are an AI assistant who will help me to match an answer").And
            .EndWith("Example 3: \nQuestion: How much is <image 1> worth??\nOptions: A. $6 B. $7 C. $8 D. $9\nAnswer: seven dollars\nYour output: "));
        var failed = await scorer.ScoreAsync(Input("validation_Accounting_1", "nothing useful", Sample(items, "validation_Accounting_1")));
        Assert.That(server.Calls, Is.EqualTo(4), "three tries for an answer the judge cannot match");
        Assert.That(failed.Raw, Does.Contain("judge failed 3 times"));
    }
}
