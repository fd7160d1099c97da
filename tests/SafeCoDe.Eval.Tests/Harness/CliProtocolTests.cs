using System.Text.Json.Nodes;
using NUnit.Framework;
using SafeCoDe.Eval.Benchmarks;
using SafeCoDe.Eval.Runs;
using static SafeCoDe.Eval.Tests.Harness.T;

namespace SafeCoDe.Eval.Tests.Harness;

/// <summary><c>safecode eval run</c> on the tiny checkpoint: framing recorded and sent, subsets and id lists hashed, language lists reported.</summary>
[NonParallelizable]
public class CliProtocolTests
{
    private static readonly string[] Fast = ["--device", "cpu", "--max-new-tokens", "2", "--max-steps", "2", "--seed", "3", "--greedy", "--quiet"];


    private static string[] Run(BenchmarkFolder f, string run, params string[] extra) =>
        ["eval", "run", "-b", f.Benchmark, "-d", f.Root, "-m", TinyModel, "-o", run, .. Fast, .. extra];

    private static JsonNode Report(string run) => JsonNode.Parse(RunCli("eval", "report", run, "--json").stdout)!["runs"]![0]!;

    [Test]
    public void MossBenchBaseSendsTheBareQuestionMethodTheFirstPersonPrompt_AndRunAndReportSayWhich()
    {
        var folder = BenchmarkFolders.Write("mossbench", NewDir());
        var baseRun = Path.Combine(NewDir(), "base");
        var (code, _, err) = RunCli(Run(folder, baseRun, "--mode", "vanilla", "--scorer", "keyword")); // auto: base for vanilla
        Assert.That(code, Is.EqualTo(0), err);
        var outputs = RunStore.ReadRecords(baseRun).SelectMany(r => r.Outputs).ToList();
        Assert.That(outputs.Select(o => o.UserText), Is.EqualTo(outputs.Select(o => o.Question)), "MOSSBench's own harness sends the bare question");
        Assert.That(RunStore.ReadManifest(baseRun).Framing, Is.EqualTo("base"));
        Assert.That((string?)Report(baseRun)["framing"], Is.EqualTo("base"));

        var methodRun = Path.Combine(NewDir(), "method");
        (code, _, err) = RunCli(Run(folder, methodRun, "--mode", "vanilla", "--framing", "method", "--scorer", "keyword"));
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(RunStore.ReadRecords(methodRun).SelectMany(r => r.Outputs).Select(o => o.UserText),
            Is.All.StartWith(PromptFraming.FirstPerson).And.All.EndWith(" "));
        Assert.That(RunStore.ReadManifest(methodRun).Framing, Is.EqualTo("method"));
        var (rc, md, rerr) = RunCli("eval", "report", baseRun, methodRun);
        Assert.That(rc, Is.EqualTo(0), rerr);
        Assert.That(md, Does.Contain("| framing |").And.Contain("| base |").And.Contain("| method |"));
        Assert.That(md, Does.Contain("| metric | metric set |").And.Contain("| refusal_rate | mossbench/safecode-ref |"));
        Assert.That(md, Does.Contain("metric set `mossbench/safecode-ref`"));
    }

    [Test]
    public void SubsetAndIdListAreHashed_AResumeWithAnotherSelectionIsRefused()
    {
        var folder = BenchmarkFolders.Write("figstep", NewDir());
        var data = folder.ReaderRoot;
        File.WriteAllText(Path.Combine(data, "question", "SafeBench-Tiny.csv"),
            "dataset,category_id,task_id,category_name,question,instruction\r\nForbidQI,1,1,Illegal Activity,q1,Steps.\r\n");
        Directory.CreateDirectory(Path.Combine(data, "images", "SafeBench-Tiny"));
        File.WriteAllBytes(Path.Combine(data, "images", "SafeBench-Tiny", "query_ForbidQI_1_1_6.png"), BenchmarkFolders.Png(7));

        var tiny = Path.Combine(NewDir(), "tiny");
        var (code, _, err) = RunCli(Run(folder, tiny, "--mode", "vanilla", "--subset", "safebench-tiny"));
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(RunStore.ReadRecords(tiny).Select(r => r.Id), Is.EqualTo(new[] { "1_1" }));
        Assert.That(RunStore.ReadManifest(tiny).Options["subset"], Is.EqualTo("SafeBench-Tiny"));
        var (refused, _, rerr) = RunCli(Run(folder, tiny, "--mode", "vanilla"));
        Assert.That(refused, Is.EqualTo(1), rerr);
        Assert.That(rerr, Does.Contain("other options").And.Contain("subset"));

        var dir = NewDir();
        File.WriteAllLines(Path.Combine(dir, "a.txt"), ["# two of them", "9_1", "", "10_2"]);
        File.WriteAllLines(Path.Combine(dir, "b.txt"), ["9_1"]);
        var listed = Path.Combine(NewDir(), "listed");
        (code, _, err) = RunCli(Run(folder, listed, "--mode", "vanilla", "--ids", Path.Combine(dir, "a.txt")));
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(RunStore.ReadRecords(listed).Select(r => r.Id), Is.EquivalentTo(new[] { "9_1", "10_2" }));
        Assert.That(RunStore.ReadManifest(listed).Options["ids"], Does.StartWith("2 ids, sha256 "));
        (refused, _, rerr) = RunCli(Run(folder, listed, "--mode", "vanilla", "--ids", Path.Combine(dir, "b.txt")));
        Assert.That(refused, Is.EqualTo(1), rerr);
        Assert.That(rerr, Does.Contain("other options").And.Contain("ids"));

        File.WriteAllLines(Path.Combine(dir, "c.txt"), ["9_1", "99_1"]);
        var wrong = Path.Combine(NewDir(), "wrong");
        (code, _, err) = RunCli(Run(folder, wrong, "--mode", "vanilla", "--ids", Path.Combine(dir, "c.txt")));
        Assert.That(code, Is.EqualTo(2), err);
        Assert.That(err, Does.Contain("--ids").And.Contain("'99_1'"));
        Assert.That(Directory.Exists(wrong), Is.False, "nothing is written for an id the data lacks");
        (code, _, err) = RunCli(Run(folder, wrong, "--mode", "vanilla", "--subset", "tiny"));
        Assert.That(code, Is.EqualTo(2), err);
        Assert.That(err, Does.Contain("SafeBench-Tiny"));
    }

    [Test]
    public void MstsKeywordScoringUsesEachLanguagesListAndTheReportSaysWhich()
    {
        var folder = BenchmarkFolders.Write("msts", NewDir());
        var run = Path.Combine(NewDir(), "run");
        var (code, _, err) = RunCli(Run(folder, run, "--mode", "vanilla", "--scorer", "keyword"));
        Assert.That(code, Is.EqualTo(0), err);
        var byId = RunStore.ReadRecords(run).ToDictionary(r => r.Id, r => r.Outputs.Single().Score!);
        Assert.That(byId["german/case_0001/assistance"].Language, Is.EqualTo("de"));
        Assert.That(byId["chinese/case_0001/assistance"].Language, Is.EqualTo("zh"));
        Assert.That(byId["english/case_0001/assistance"].Language, Is.EqualTo("en"));
        var r0 = Report(run);
        Assert.That((int)r0["keyword_languages"]!["en"]!, Is.EqualTo(4));
        Assert.That((int)r0["keyword_languages"]!["de"]!, Is.EqualTo(1));
        Assert.That((int)r0["keyword_languages"]!["zh"]!, Is.EqualTo(1));
        var (_, md, _) = RunCli("eval", "report", run);
        Assert.That(md, Does.Contain("keyword refusal lists used: ").And.Contain("de (1 answers)"));
    }
}
