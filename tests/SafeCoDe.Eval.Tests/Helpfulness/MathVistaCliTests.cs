using System.Text.Json.Nodes;
using NUnit.Framework;
using SafeCoDe.Eval.Runs;
using static SafeCoDe.Eval.Tests.Harness.T;

namespace SafeCoDe.Eval.Tests.Helpfulness;

/// <summary><c>eval run -b mathvista</c> then <c>eval report</c> on the tiny checkpoint, in both layouts.</summary>
[NonParallelizable]
public class MathVistaCliTests
{
    private static readonly string[] Fast = ["--device", "cpu", "--max-new-tokens", "2", "--greedy", "--quiet", "--mode", "vanilla"];


    [TestCase(false)]
    [TestCase(true)]
    public void RunThenReport_BothMetricSetsPerTaskAndSkill(bool tsv)
    {
        var dir = NewDir();
        var (root, valid, problems) = tsv ? MathVistaFolders.WriteTsv(dir, broken: true) : MathVistaFolders.WriteHub(dir, broken: true);
        var run = Path.Combine(NewDir(), "run");
        var (code, _, err) = RunCli(["eval", "run", "-b", "mathvista", "-d", root, "-m", TinyModel, "-o", run, "--scorer", "rules", "--prompts", "vlmevalkit", .. Fast]);
        Assert.That(code, Is.EqualTo(0), err);
        var records = RunStore.ReadRecords(run);
        Assert.That(records.Select(r => r.Id), Is.EquivalentTo(valid));
        Assert.That(RunStore.ReadProblems(run).Select(p => p.Id), Is.EquivalentTo(problems.Keys));
        Assert.That(records.Single(r => r.Id == "1").Outputs.Single().UserText, Is.EqualTo(MathVistaFolders.McQuery), "the query, base framing in a vanilla run");
        Assert.That(records.All(r => r.Labels["prompts"] == "vlmevalkit"), Is.True);
        Assert.That(records.All(r => r.Outputs.Single().Score!.Sets!.ContainsKey("mathvista/vlmevalkit")), Is.True);

        var (rc, json, rerr) = RunCli("eval", "report", run, "--json");
        Assert.That(rc, Is.EqualTo(0), rerr);
        var r0 = JsonNode.Parse(json)!["runs"]!.AsArray().Single()!;
        Assert.That((int)r0["official"]!["n"]!, Is.EqualTo(valid.Length));
        Assert.That((int)r0["vlmevalkit"]!["n"]!, Is.EqualTo(valid.Length));
        var paths = r0["rows"]!.AsArray().Select(x => $"{(string)x!["group"]!}|{(string)x["metric"]!}|{(string)x["metric_set"]!}").ToList();
        Assert.That(paths, Does.Contain("|official_acc|mathvista/official").And.Contain("|vlmevalkit_acc|mathvista/vlmevalkit")
            .And.Contain("task=textbook question answering|official_acc|mathvista/official").And.Contain("skill=arithmetic reasoning|vlmevalkit_acc|mathvista/vlmevalkit"));
        var (mdc, _, mderr) = RunCli("eval", "report", run);
        Assert.That(mdc, Is.EqualTo(0), mderr);
    }

    [Test]
    public void HelpListsTheBenchmark_AndKeywordScoringIsRefused()
    {
        Assert.That(RunCli("eval", "run", "--help").stdout, Does.Contain("mathvista (helpfulness"));
        var (root, _, _) = MathVistaFolders.WriteHub(NewDir());
        var (code, _, err) = RunCli(["eval", "run", "-b", "mathvista", "-d", root, "-m", TinyModel, "-o", Path.Combine(NewDir(), "r"), "--scorer", "keyword", .. Fast]);
        Assert.That(code, Is.Not.EqualTo(0));
        Assert.That(err, Does.Contain("mathvista is scored with rules, openai, local"));
    }
}
