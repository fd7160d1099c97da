using System.Text.Json.Nodes;
using NUnit.Framework;
using SafeCoDe.Eval.Runs;
using SafeCoDe.Eval.Tests.Harness;
using static SafeCoDe.Eval.Tests.Harness.T;

namespace SafeCoDe.Eval.Tests.Helpfulness;

/// <summary><c>eval run -b mia-bench</c> graded by a local test endpoint, then <c>eval report</c>, in both layouts.</summary>
[NonParallelizable]
public class MiaBenchCliTests
{
    private static readonly string[] Fast = ["--device", "cpu", "--max-new-tokens", "2", "--greedy", "--quiet", "--mode", "vanilla"];


    [TestCase(false)]
    [TestCase(true)]
    public void RunGradedByAnEndpoint_ThenReport_DroppedRepliesReported(bool tsv)
    {
        var dir = NewDir();
        var (root, valid, problems) = tsv ? MiaFolders.WriteTsv(dir, broken: true) : MiaFolders.WriteApple(dir, broken: true);
        // the grader answers in form for two-component items and rambles for the others
        using var server = new FakeJudgeServer(body => FakeJudgeServer.UserText(body).Contains("The first and second component is each worth 6 and 4 scores.")
            ? "score of component 1: 3/6, score of component 2: 4/4, total score: 7/10. Fine." : "Quite good.");
        Environment.SetEnvironmentVariable("SAFECODE_EVAL_BASE_URL", server.BaseUrl);
        Environment.SetEnvironmentVariable("SAFECODE_EVAL_API_KEY", "test");
        try
        {
            var run = Path.Combine(NewDir(), "run");
            var (code, _, err) = RunCli(["eval", "run", "-b", "mia-bench", "-d", root, "-m", TinyModel, "-o", run, "--scorer", "openai:grader-test", "--scorer-retries", "0", .. Fast]);
            Assert.That(code, Is.EqualTo(0), err);
            Assert.That(RunStore.ReadRecords(run).Select(r => r.Id), Is.EquivalentTo(valid));
            Assert.That(RunStore.ReadProblems(run).Select(p => p.Id), Is.EquivalentTo(problems.Keys));
            Assert.That(server.Requests.All(FakeJudgeServer.HasImage), Is.True, "the grader sees the image");
            var (rc, json, rerr) = RunCli("eval", "report", run, "--json");
            Assert.That(rc, Is.EqualTo(0), rerr);
            var r0 = JsonNode.Parse(json)!["runs"]!.AsArray().Single()!;
            Assert.That((double)r0["official"]!["score"]!, Is.EqualTo(0.7).Within(1e-12));
            Assert.That((int)r0["official"]!["n"]!, Is.EqualTo(1));
            Assert.That((int)r0["official"]!["n_dropped"]!, Is.EqualTo(valid.Length - 1));
            Assert.That((double)r0["official"]!["per_component_type"]!["describe"]!["score"]!, Is.EqualTo(0.5));
            var paths = r0["rows"]!.AsArray().Select(x => $"{(string)x!["group"]!}|{(string)x["metric"]!}|{(string)x["metric_set"]!}").ToList();
            Assert.That(paths, Does.Contain("|official_score|mia-bench/official").And.Contain("component=mention|vlmevalkit_score|mia-bench/vlmevalkit"));
            Assert.That(RunCli("eval", "report", run).code, Is.EqualTo(0));
            Assert.That(File.ReadAllText(Path.Combine(run, "report", "report.md")), Does.Contain($"did not parse (dropped from the means, as both scorers drop them): {valid.Length - 1} (official)"));
        }
        finally
        {
            Environment.SetEnvironmentVariable("SAFECODE_EVAL_BASE_URL", null);
            Environment.SetEnvironmentVariable("SAFECODE_EVAL_API_KEY", null);
        }
    }

    [Test]
    public void HelpListsTheBenchmark() => Assert.That(RunCli("eval", "run", "--help").stdout, Does.Contain("mia-bench (helpfulness"));
}
