using System.Text.Json.Nodes;
using NUnit.Framework;
using SafeCoDe.Eval.Runs;
using SafeCoDe.Eval.Tests.Harness;
using static SafeCoDe.Eval.Tests.Harness.T;

namespace SafeCoDe.Eval.Tests.Helpfulness;

/// <summary><c>eval run -b mm-vet</c> graded by a local test endpoint, then <c>eval report</c>, in both layouts.</summary>
[NonParallelizable]
public class MmVetCliTests
{
    private static readonly string[] Fast = ["--device", "cpu", "--max-new-tokens", "2", "--greedy", "--quiet", "--mode", "vanilla"];


    [TestCase(false)]
    [TestCase(true)]
    public void RunGradedByAnEndpoint_ThenReport_RunsAndUnparsedReported(bool tsv)
    {
        var dir = NewDir();
        var (root, valid, problems) = tsv ? MmVetFolders.WriteTsv(dir, broken: true) : MmVetFolders.WriteRelease(dir, broken: true);
        // the official grader says 0.5 except on the meme question, where it never gives a number
        using var server = new FakeJudgeServer(body => FakeJudgeServer.UserText(body).Contains("| It is a joke <OR> A pun |") ? "unsure" : "0.5");
        Environment.SetEnvironmentVariable("SAFECODE_EVAL_BASE_URL", server.BaseUrl);
        Environment.SetEnvironmentVariable("SAFECODE_EVAL_API_KEY", "test");
        try
        {
            var run = Path.Combine(NewDir(), "run");
            var (code, _, err) = RunCli(["eval", "run", "-b", "mm-vet", "-d", root, "-m", TinyModel, "-o", run, "--scorer", "openai:grader-test", "--scorer-runs", "2", "--scorer-retries", "0", .. Fast]);
            Assert.That(code, Is.EqualTo(0), err);
            var records = RunStore.ReadRecords(run);
            Assert.That(records.Select(r => r.Id), Is.EquivalentTo(valid));
            Assert.That(RunStore.ReadProblems(run).Select(p => p.Id), Is.EquivalentTo(problems.Keys));
            var (rc, json, rerr) = RunCli("eval", "report", run, "--json");
            Assert.That(rc, Is.EqualTo(0), rerr);
            var r0 = JsonNode.Parse(json)!["runs"]!.AsArray().Single()!;
            Assert.That((int)r0["official"]!["n_runs"]!, Is.EqualTo(2));
            Assert.That((double)r0["official"]!["score"]!, Is.EqualTo(1.0 / 3).Within(1e-9), "0.5, 0.5 and 0.0 for the unparsable one");
            Assert.That((int)r0["official"]!["n_unparsed_runs"]!, Is.EqualTo(2), "both runs of the meme answer");
            Assert.That((int)r0["vlmevalkit"]!["n_unparsed"]!, Is.EqualTo(1));
            Assert.That((int)r0["n_unparsed"]!, Is.EqualTo(1));
            var paths = r0["rows"]!.AsArray().Select(x => $"{(string)x!["group"]!}|{(string)x["metric"]!}|{(string)x["scorer"]!}").ToList();
            Assert.That(paths, Does.Contain("|official_score|openai:grader-test").And.Contain("capability=ocr|vlmevalkit_score|openai:grader-test"));
            var (mdc, _, _) = RunCli("eval", "report", run);
            Assert.That(mdc, Is.EqualTo(0));
            Assert.That(File.ReadAllText(Path.Combine(run, "report", "report.md")), Does.Contain("over 2 grader run(s)").And.Contain("unparsed grader replies: 2"));
        }
        finally
        {
            Environment.SetEnvironmentVariable("SAFECODE_EVAL_BASE_URL", null);
            Environment.SetEnvironmentVariable("SAFECODE_EVAL_API_KEY", null);
        }
    }

    [Test]
    public void HelpListsTheBenchmark_RunsAreRefusedWhereTheyDoNothing()
    {
        var help = RunCli("eval", "run", "--help").stdout;
        Assert.That(help, Does.Contain("mm-vet (helpfulness").And.Contain("--scorer-runs"));
        var (root, _, _) = MathVistaFolders.WriteHub(NewDir());
        var (code, _, err) = RunCli(["eval", "run", "-b", "mathvista", "-d", root, "-m", TinyModel, "-o", Path.Combine(NewDir(), "r"), "--scorer", "openai", "--scorer-runs", "5", .. Fast]);
        Assert.That(code, Is.Not.EqualTo(0));
        Assert.That(err, Does.Contain("mathvista grades each answer once"));
        var (mv, _, _) = MmVetFolders.WriteRelease(NewDir());
        (code, _, err) = RunCli(["eval", "run", "-b", "mm-vet", "-d", mv, "-m", TinyModel, "-o", Path.Combine(NewDir(), "r"), "--scorer", "rules", .. Fast]);
        Assert.That(code, Is.Not.EqualTo(0));
        Assert.That(err, Does.Contain("mm-vet is scored with openai, local"));
    }
}
