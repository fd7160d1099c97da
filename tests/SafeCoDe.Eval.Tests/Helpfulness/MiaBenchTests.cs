using System.Text;
using System.Text.Json;
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

public class MiaBenchTests
{
    private static List<ReadItem> Read(string root, ReaderSelection? s = null) => BenchmarkReaders.Get("mia-bench").Read(root, s ?? ReaderSelection.All).ToList();

    private static EvalSample Sample(List<ReadItem> items, string id) => items.Single(i => i.Sample?.Id == id).Sample!;

    [Test]
    public void AppleLayout_PositionsAsIds_ImagesByUrlFileName_Problems()
    {
        var (root, valid, problems) = MiaFolders.WriteApple(NewDir(), broken: true);
        var items = Read(root);
        Assert.That(items.Where(i => i.Sample is not null).Select(i => i.Sample!.Id), Is.EqualTo(valid));
        Assert.That(items.Where(i => i.Problem is not null).Select(i => i.Problem!.Id), Is.EquivalentTo(problems.Keys));
        foreach (var p in items.Select(i => i.Problem).OfType<SampleProblem>()) Assert.That(p.Reason, Does.Contain(problems[p.Id]), p.Id);
        var s = Sample(items, "1");
        Assert.That(s.Prompts.Single().Question, Does.StartWith("Explain the activity").And.EndWith(BenchmarkFolders.NonAscii), "the instruction is the prompt");
        Assert.That(((ImageRef.File)s.Prompts.Single().Image!).Path, Does.EndWith("000000397133.jpg"));
        Assert.That(s.Groups["type"], Is.EqualTo("intermediate"));
        Assert.That(s.Labels["component_weight"], Is.EqualTo("[\"4\",\"3\",\"3\"]"));
        Assert.Throws<BenchmarkLayoutException>(() => Read(NewDir()));
    }

    [Test]
    public void TsvLayout_ListsAsPythonText_LegacyName_Md5()
    {
        var (file, valid, problems) = MiaFolders.WriteTsv(NewDir(), broken: true);
        var items = Read(Path.GetDirectoryName(file)!);
        Assert.That(items.Where(i => i.Sample is not null).Select(i => i.Sample!.Id), Is.EqualTo(valid));
        Assert.That(items.Where(i => i.Problem is not null).Select(i => i.Problem!.Id), Is.EquivalentTo(problems.Keys));
        foreach (var p in items.Select(i => i.Problem).OfType<SampleProblem>()) Assert.That(p.Reason, Does.Contain(problems[p.Id]), p.Id);
        Assert.That(Sample(items, "0").Labels["component_type"], Is.EqualTo("[\"describe\",\"mention\"]"));
        Assert.That(Sample(items, "0").Labels["tsv_md5"], Does.Contain("differs from VLMEvalKit's 0b9de595f4dd40af18a69b94d89aba82"));
    }

    // expected texts: the output of the notebook's and VLMEvalKit's generate_prompt at their pinned commits for these items
    private static IEnumerable<TestCaseData> Prompts()
    {
        yield return new TestCaseData("Describe the image.", new[] { "Describe the image" }, new[] { "10" }, "Here is an instruction for a multimodal LLM: ' Describe the image. You need to grade if the response from the model follows each component of the instruction. The first component is:' Describe the image' The response is:' RESPONSE' You need to score the response and be strict. The total score ranges from 0 to 10, depending on if the response follows the instruction. The first component is worth 10 scores. List scores of each component, and the total score in one sentence in this format: score of component 1: x/2, score of component 2: y/8, total score: z/10. Then explain your reasons.", "Here is an instruction for a multimodal LLM: 'Describe the image.'. You need to grade if the response from the model follows each component of the instruction. The first component is: 'Describe the image'. The response is: 'RESPONSE'. You need to score the response and be strict. The total score ranges from 0 to 10, depending on if the response follows the instruction. The first component is worth: 10 scores. List scores of each component, and the total score in one sentence in this format: score of component 1: x/2, score of component 2: y/8, total score: z/10. Then explain your reasons.");
        yield return new TestCaseData("Describe the activities of the two individuals in the image without mentioning the color of their clothing.", new[] { "Describe the activities of the two individuals in the image", "without mentioning the color of their clothing" }, new[] { "6", "4" }, "Here is an instruction for a multimodal LLM: ' Describe the activities of the two individuals in the image without mentioning the color of their clothing. You need to grade if the response from the model follows each component of the instruction. The first component is:' Describe the activities of the two individuals in the image', and the second component is:' without mentioning the color of their clothing' The response is:' RESPONSE' You need to score the response and be strict. The total score ranges from 0 to 10, depending on if the response follows the instruction. The first and second component is each worth 6 and 4 scores. List scores of each component, and the total score in one sentence in this format: score of component 1: x/2, score of component 2: y/8, total score: z/10. Then explain your reasons.", "Here is an instruction for a multimodal LLM: 'Describe the activities of the two individuals in the image without mentioning the color of their clothing.'. You need to grade if the response from the model follows each component of the instruction. The first component is: 'Describe the activities of the two individuals in the image', and the second component is 'without mentioning the color of their clothing'. The response is: 'RESPONSE'. You need to score the response and be strict. The total score ranges from 0 to 10, depending on if the response follows the instruction. The first and second component is each worth 6 and 4 scores. List scores of each component, and the total score in one sentence in this format: score of component 1: x/2, score of component 2: y/8, total score: z/10. Then explain your reasons.");
        yield return new TestCaseData("Explain the activity taking place in the image using exactly two sentences, including one metaphor.", new[] { "Explain the activity taking place in the image", "using exactly two sentences", "including one metaphor" }, new[] { "4", "3", "3" }, "Here is an instruction for a multimodal LLM: ' Explain the activity taking place in the image using exactly two sentences, including one metaphor. You need to grade if the response from the model follows each component of the instruction. The first component is:' Explain the activity taking place in the image', and the second component is:' using exactly two sentences', and the third component is:' including one metaphor' The response is:' RESPONSE' You need to score the response and be strict. The total score ranges from 0 to 10, depending on if the response follows the instruction. The first second, and third component is each worth 4, 3 and 3 scores. List scores of each component, and the total score in one sentence in this format: score of component 1: x/2, score of component 2: y/8, total score: z/10. Then explain your reasons.", "Here is an instruction for a multimodal LLM: 'Explain the activity taking place in the image using exactly two sentences, including one metaphor.'. You need to grade if the response from the model follows each component of the instruction. The first component is: 'Explain the activity taking place in the image', and the second component is 'using exactly two sentences', and the third component is 'including one metaphor'. The response is: 'RESPONSE'. You need to score the response and be strict. The total score ranges from 0 to 10, depending on if the response follows the instruction. The first, second, and third component is each worth 4, 3, and 3 scores.List scores of each component, and the total score in one sentence in this format: score of component 1: x/2, score of component 2: y/8, total score: z/10. Then explain your reasons.");
        yield return new TestCaseData("Q5.", new[] { "a", "b", "c", "d", "e" }, new[] { "2", "2", "2", "2", "2" }, "Here is an instruction for a multimodal LLM: ' Q5. You need to grade if the response from the model follows each component of the instruction. The first component is:' a', and the second component is:' b', and the third component is:' c', and the fourth component is:' d', and the fifth component is:' e' The response is:' RESPONSE' You need to score the response and be strict. The total score ranges from 0 to 10, depending on if the response follows the instruction. The first second, third, fourth and fifth component is each worth 2, 2, 2, 2 and 2 scores. List scores of each component, and the total score in one sentence in this format: score of component 1: x/2, score of component 2: y/8, total score: z/10. Then explain your reasons.", "Here is an instruction for a multimodal LLM: 'Q5.'. You need to grade if the response from the model follows each component of the instruction. The first component is: 'a', and the second component is 'b', and the third component is 'c', and the fourth component is 'd', and the fifth component is 'e'. The response is: 'RESPONSE'. You need to score the response and be strict. The total score ranges from 0 to 10, depending on if the response follows the instruction. The first, second, third, fourth, and fifth component is each worth 2, 2, 2, 2, and 2 scores.List scores of each component, and the total score in one sentence in this format: score of component 1: x/2, score of component 2: y/8, total score: z/10. Then explain your reasons.");
    }

    [TestCaseSource(nameof(Prompts))]
    public void GraderPrompts_AsBothGenerateThem(string instruction, string[] components, string[] weights, string official, string vlm)
    {
        Assert.That(MiaRubric.OfficialPrompt(instruction, components, weights, "RESPONSE"), Is.EqualTo(official));
        Assert.That(MiaRubric.VlmPrompt(instruction, components, weights, "RESPONSE"), Is.EqualTo(vlm));
    }

    [Test]
    public void ScoreParsing_TheSpecsWorkedExample_AndWhatPythonRejects()
    {
        var s = MiaRubric.ParseScore("score of component 1: 5/6, score of component 2: 3/4, total score: 8/10.", ["describe", "length_limit"])!.Value;
        Assert.That(s.Components["describe"], Is.EqualTo(5.0 / 6));
        Assert.That(s.Components["length_limit"], Is.EqualTo(0.75));
        Assert.That(s.Total, Is.EqualTo(0.8));
        Assert.That(MiaRubric.ParseScore("score of component 1: 2.5/3, score of component 2: 3/4, total score: 8/10.", ["a", "b"]), Is.Null, "a decimal");
        Assert.That(MiaRubric.ParseScore("total score: 8/10.", ["a"]), Is.Null, "one piece only");
        Assert.That(MiaRubric.ParseScore("score of component 1: 1/2, score of component 2: 1/2, score of component 3: 1/2, total score: 3/10", ["a", "b"]), Is.Null, "more pieces than types");
        Assert.That(MiaRubric.ParseScore("score of component 1:5/6, total score: 5/10", ["a"]), Is.Null, "the character after ':' is skipped");
        var dup = MiaRubric.ParseScore("score of component 1: 1/2, score of component 2: 2/2, total score: 9/10. Then", ["x", "x"])!.Value;
        Assert.That((dup.Components["x"], dup.Total), Is.EqualTo((1.0, 0.9)), "a later component of the same type replaces the earlier");
    }

    private static ScoreInput Input(EvalSample s, string answer, byte[] image) => new("mia-bench", s.Id, SampleKeys.Answer, s.Prompts[0].Question, answer, s.Groups, s.Labels, image);

    [Test]
    public async Task BothGraders_AskedWithTheImage_UnparsableDroppedAndCounted()
    {
        var (root, _, _) = MiaFolders.WriteApple(NewDir());
        var s = Sample(Read(root), "0");
        using var server = new FakeJudgeServer(body => FakeJudgeServer.UserText(body).Contains("is:' ")
            ? "score of component 1: 5/6, score of component 2: 3/4, total score: 8/10. The answer leaves out one person."
            : "I would give this response a fairly good score overall.");
        using var scorer = new ChatClientScorer(SafeCoDe.Torch.Safety.EndpointJudge.CreateClient(new SafeCoDe.Torch.Safety.EndpointJudgeOptions { BaseUrl = server.BaseUrl, ApiKey = "k", Model = "gpt-4o" }),
            "gpt-4o", ownsClient: true) { InitialBackoff = TimeSpan.FromMilliseconds(5), MaxRetries = 0 };
        var r = await scorer.ScoreAsync(Input(s, "Two people walk a dog.", BenchmarkFolders.Png(1)));
        Assert.That(server.Calls, Is.EqualTo(2));
        Assert.That(server.Requests.All(FakeJudgeServer.HasImage), Is.True);
        Assert.That(FakeJudgeServer.UserText(server.Requests.First()), Is.EqualTo(MiaRubric.OfficialPrompt(s.Labels["instruction"],
            JsonSerializer.Deserialize<string[]>(s.Labels["components"])!, ["6", "4"], "Two people walk a dog.")));
        Assert.That(((int?)server.Requests.Last()["max_tokens"] ?? (int?)server.Requests.Last()["max_completion_tokens"], (double?)server.Requests.Last()["temperature"]), Is.EqualTo(((int?)2048, (double?)0)));
        Assert.That(r.Sets!["mia-bench/official"], Is.EqualTo("0.8"));
        Assert.That(r.Sets["mia-bench/official:components"], Is.EqualTo("{\"describe\":0.8333333333333334,\"mention\":0.75}"));
        Assert.That(r.Sets.ContainsKey("mia-bench/vlmevalkit"), Is.False, "VLMEvalKit's reply did not parse: dropped from its means");
        Assert.That((r.Sets["mia-bench/vlmevalkit:dropped"], r.Parsed), Is.EqualTo(("1", false)));
        Assert.That(r.Raw, Does.Contain("[dropped"));
    }

    private static ScoreResult Graded(double? official, string components, double? vlm) => new()
    {
        Scorer = "openai:gpt-4o", Rubric = "mia_bench_grade", Label = official?.ToString("R", System.Globalization.CultureInfo.InvariantCulture) ?? "dropped", Parsed = official is not null && vlm is not null,
        Sets = new Dictionary<string, string?>
        {
            ["mia-bench/official"] = official?.ToString("R", System.Globalization.CultureInfo.InvariantCulture), ["mia-bench/official:components"] = official is null ? null : components,
            ["mia-bench/official:dropped"] = official is null ? "1" : "0",
            ["mia-bench/vlmevalkit"] = vlm?.ToString("R", System.Globalization.CultureInfo.InvariantCulture), ["mia-bench/vlmevalkit:components"] = vlm is null ? null : components,
            ["mia-bench/vlmevalkit:dropped"] = vlm is null ? "1" : "0",
        }.Where(kv => kv.Value is not null).ToDictionary(kv => kv.Key, kv => kv.Value!),
    };

    [Test]
    public void Metrics_MeanTotalAndPerComponentType_OverParsedReplies_DroppedCounted()
    {
        var (root, _, _) = MiaFolders.WriteApple(NewDir());
        var items = Read(root);
        RunRecord Rec(string id, ScoreResult s) => new()
        {
            Id = id, Benchmark = "mia-bench", Groups = Sample(items, id).Groups, Labels = Sample(items, id).Labels,
            Outputs = [new RunOutput { Key = SampleKeys.Answer, Question = "q", Answer = "a", Score = s }],
        };
        var m = MetricsCalculator.Compute("mia-bench", "vanilla", null, "openai:gpt-4o",
        [
            Rec("0", Graded(0.8, "{\"describe\":0.5,\"mention\":1.0}", 0.6)),
            Rec("1", Graded(0.4, "{\"describe\":1.0,\"length_limit\":0.0,\"linguistics\":0.5}", null)),
            Rec("2", Graded(null, "{\"describe\":1.0}", 1.0)),
        ], 0);
        Rate Row(string path) => m.Rows.Single(r => r.Path == path).Rate;
        Assert.That((Row("official_score").Value, Row("official_score").N), Is.EqualTo(((double?)0.6, 2)).Using<(double?, int)>((a, b) => Math.Abs(a.Item1!.Value - b.Item1!.Value) < 1e-12 && a.Item2 == b.Item2),
            "the dropped reply is not in the mean");
        Assert.That(Row("component=describe.official_score"), Is.EqualTo(Rate.Mean(1.5, 2)));
        Assert.That(Row("component=mention.official_score"), Is.EqualTo(Rate.Mean(1.0, 1)));
        Assert.That(Row("vlmevalkit_score").Value, Is.EqualTo(0.8).Within(1e-12));
        Assert.That(Row("vlmevalkit_score").N, Is.EqualTo(2));
        Assert.That((int)m.Json["official"]!["n_dropped"]!, Is.EqualTo(1));
        Assert.That((int)m.Json["vlmevalkit"]!["n_dropped"]!, Is.EqualTo(1));
        Assert.That(m.Unparsed, Is.EqualTo(2));
    }
}
