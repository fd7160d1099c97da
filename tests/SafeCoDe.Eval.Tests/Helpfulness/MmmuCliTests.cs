using System.Text.Json.Nodes;
using NUnit.Framework;
using SafeCoDe.Eval.Runs;
using SafeCoDe.Torch.Processing.Images;
using static SafeCoDe.Eval.Tests.Harness.T;

namespace SafeCoDe.Eval.Tests.Helpfulness;

/// <summary><c>eval run -b mmmu</c> then <c>eval report</c> on the tiny checkpoint, in both layouts.</summary>
[NonParallelizable]
public class MmmuCliTests
{
    private static readonly string[] Fast = ["--device", "cpu", "--max-new-tokens", "2", "--greedy", "--quiet", "--mode", "vanilla"];


    [TestCase(false)]
    [TestCase(true)]
    public void RunThenReport_SeveralImagesCombinedAndRecorded(bool tsv)
    {
        var dir = NewDir();
        var (root, valid, problems) = tsv ? MmmuFolders.WriteTsv(dir, broken: true) : MmmuFolders.WriteHub(dir, broken: true);
        var run = Path.Combine(NewDir(), "run");
        var (code, _, err) = RunCli(["eval", "run", "-b", "mmmu", "-d", root, "-m", TinyModel, "-o", run, "--scorer", "rules", "--prompts", "vlmevalkit", .. Fast]);
        Assert.That(code, Is.EqualTo(0), err);
        var records = RunStore.ReadRecords(run);
        Assert.That(records.Select(r => r.Id), Is.EquivalentTo(valid));
        Assert.That(RunStore.ReadProblems(run).Select(p => p.Id), Is.EquivalentTo(problems.Keys));
        var multi = records.Single(r => r.Id == "validation_Accounting_2").Outputs.Single();
        Assert.That(multi.Images, Has.Count.EqualTo(tsv ? 2 : 3));
        Assert.That(multi.ImageNote, Does.StartWith($"{(tsv ? 2 : 3)} images combined side by side into one"));
        Assert.That(records.Single(r => r.Id == "validation_Accounting_1").Outputs.Single().ImageNote, Is.Null);
        Assert.That(records.All(r => r.Outputs.Single().UserText!.StartsWith("Question: ")), Is.True, "vlmevalkit prompts, base framing in a vanilla run");
        Assert.That(RunStore.ReadManifest(run).Options["prompts"], Is.EqualTo("vlmevalkit"));

        var (rc, json, rerr) = RunCli("eval", "report", run, "--json");
        Assert.That(rc, Is.EqualTo(0), rerr);
        var r0 = JsonNode.Parse(json)!["runs"]!.AsArray().Single()!;
        Assert.That((int)r0["official"]!["n"]!, Is.EqualTo(3));
        Assert.That((int)r0["vlmevalkit"]!["n"]!, Is.EqualTo(3));
        var paths = r0["rows"]!.AsArray().Select(x => $"{(string)x!["group"]!}|{(string)x["metric"]!}").ToList();
        Assert.That(paths, Does.Contain("|official_acc").And.Contain("|vlmevalkit_acc").And.Contain("discipline=Science|official_acc").And.Contain("subject=Accounting|vlmevalkit_acc"));
    }

    [Test]
    public void HelpListsTheBenchmark_AndKeywordScoringIsRefused()
    {
        Assert.That(RunCli("eval", "run", "--help").stdout, Does.Contain("mmmu (helpfulness"));
        var (root, _, _) = MmmuFolders.WriteHub(NewDir());
        var (code, _, err) = RunCli(["eval", "run", "-b", "mmmu", "-d", root, "-m", TinyModel, "-o", Path.Combine(NewDir(), "r"), "--scorer", "keyword", .. Fast]);
        Assert.That(code, Is.Not.EqualTo(0));
        Assert.That(err, Does.Contain("mmmu is scored with rules, openai, local"));
    }

    [Test]
    public void ImageStrip_SideBySide_TopAligned_BlackBelowTheShorter()
    {
        var a = RgbImage.Filled(2, 3, 10, 20, 30);
        var b = RgbImage.Filled(3, 1, 200, 100, 50);
        var s = ImageStrip.Horizontal([a, b]);
        Assert.That((s.Width, s.Height), Is.EqualTo((5, 3)));
        byte[] Px(int x, int y) => s.Pixels.AsSpan((y * 5 + x) * 3, 3).ToArray();
        Assert.That(Px(1, 2), Is.EqualTo(new byte[] { 10, 20, 30 }));
        Assert.That(Px(2, 0), Is.EqualTo(new byte[] { 200, 100, 50 }));
        Assert.That(Px(4, 1), Is.EqualTo(new byte[] { 0, 0, 0 }));
    }
}
