using System.Text.Json;
using System.Text.Json.Nodes;
using NUnit.Framework;
using SafeCoDe.Eval.Benchmarks;
using SafeCoDe.Eval.Runs;
using static SafeCoDe.Eval.Tests.Harness.T;

namespace SafeCoDe.Eval.Tests.Toy;

/// <summary>
/// The toy benchmark, registered at run time, goes through <c>eval run</c> → <c>score</c> → <c>report</c> →
/// <c>compare</c> on the tiny checkpoint: the central code asks its descriptor for everything.
/// </summary>
[NonParallelizable]
public class ToyBenchmarkTests
{
    private static readonly string[] Fast = ["--device", "cpu", "--max-new-tokens", "2", "--max-steps", "2", "--greedy", "--quiet", "--judge", "fixed:safe"];


    /// <summary>A toy folder; an empty colour is named by every answer, one no answer holds by none.</summary>
    private static string WriteFolder(string red = "red", string blue = "blue")
    {
        var dir = NewDir();
        File.WriteAllBytes(Path.Combine(dir, "red.png"), BenchmarkFolders.Png(1));
        File.WriteAllBytes(Path.Combine(dir, "blue.png"), BenchmarkFolders.Png(2));
        var entries = new JsonArray(
            new JsonObject { ["key"] = "r", ["question"] = "Which colour is the square?", ["image"] = "red.png", ["colour"] = red, ["shade"] = "warm" },
            new JsonObject { ["key"] = "b", ["question"] = "Name the colour of the square.", ["image"] = "blue.png", ["colour"] = blue, ["shade"] = "cold" },
            new JsonObject { ["key"] = "x", ["question"] = "And this one?", ["image"] = "missing.png", ["colour"] = "green", ["shade"] = "cold" });
        File.WriteAllText(Path.Combine(dir, "colours.json"), entries.ToJsonString());
        return dir;
    }

    [OneTimeSetUp]
    public void Register() => EvalBenchmarks.Register(new ToyColours());

    [Test]
    public void ToyBenchmark_RunScoreReportCompare_ThroughTheCommandLine()
    {
        Assert.That(EvalBenchmarks.Registered, Does.Contain(ToyColours.BenchmarkName));
        var data = WriteFolder("qqq-no-answer-says-this", "blue");
        var help = RunCli("eval", "run", "--help");
        Assert.That(help.stdout, Does.Contain("toy-colours (a test-only benchmark"), "--help lists a benchmark registered at run time");

        var runA = Path.Combine(NewDir(), "a");
        var (code, _, err) = RunCli(["eval", "run", "-b", "toy-colours", "-d", data, "-m", TinyModel, "-o", runA, "--scorer", "rules", "--seed", "1", .. Fast]);
        Assert.That(code, Is.EqualTo(0), err);
        var records = RunStore.ReadRecords(runA);
        Assert.That(records.Select(r => r.Id), Is.EquivalentTo(new[] { "colour/r", "colour/b" }));
        Assert.That(RunStore.ReadProblems(runA).Single().Id, Is.EqualTo("colour/x"));
        var scores = records.SelectMany(r => r.Outputs).Select(o => o.Score!).ToList();
        Assert.That(scores.All(s => s.Scorer == "rules" && s.Rubric == "toy_colour" && s.Label is "right" or "wrong"), Is.True);
        Assert.That(records.All(r => r.Outputs.Single().UserText!.StartsWith("You are a helpful multimodal chat assistant.")), Is.True,
            "the toy's framing: SafeCoDe's first-person prompt in a safecode run");

        // the keyword scorer through its rubric's own labels, then the rules again
        var (sc, _, serr) = RunCli("eval", "score", runA, "--scorer", "keyword", "--quiet");
        Assert.That(sc, Is.EqualTo(0), serr);
        Assert.That(RunStore.ReadRecords(runA).SelectMany(r => r.Outputs).All(o => o.Score!.Label is "declined" or "answered"), Is.True);
        Assert.That(RunCli("eval", "score", runA, "--scorer", "rules", "--quiet").code, Is.EqualTo(0));

        // a scorer kind the descriptor does not list is refused before anything runs
        var refused = RunCli("eval", "score", runA, "--scorer", "openai:m", "--quiet");
        Assert.That(refused.code, Is.Not.EqualTo(0));
        Assert.That(refused.stderr, Does.Contain("toy-colours is scored with rules, keyword"));

        var (rc, json, rerr) = RunCli("eval", "report", runA, "--json");
        Assert.That(rc, Is.EqualTo(0), rerr);
        var run = JsonNode.Parse(json)!["runs"]!.AsArray().Single()!;
        int right = RunStore.ReadRecords(runA).Count(r => r.Outputs.Single().Score!.Label == "right");
        Assert.That((int)run["n_right"]!, Is.EqualTo(right));
        Assert.That((int)run["n"]!, Is.EqualTo(2));
        var rows = run["rows"]!.AsArray().Select(r => ((string)r!["group"]!, (string)r["metric"]!, (string)r["metric_set"]!)).ToList();
        Assert.That(rows, Is.EqualTo(new[] { ("", "hit_rate", ToyColours.Set), ("shade=cold", "hit_rate", ToyColours.Set), ("shade=warm", "hit_rate", ToyColours.Set) }));
        Assert.That((string)run["metric_sets"]![ToyColours.Set]!, Is.EqualTo("the toy's own hit rate"));
        var md = File.ReadAllText(Path.Combine(runA, "report", "report.md"));
        Assert.That(md, Does.Contain("## toy-colours").And.Contain("| shade=warm.hit_rate | toy-colours/own |").And.Contain("- toy note: 1 run(s) of the toy benchmark"));

        // a second run (vanilla mode) on a copy whose colours every answer names: colour/r flips from not right to right
        var runB = Path.Combine(NewDir(), "b");
        (code, _, err) = RunCli(["eval", "run", "-b", "toy-colours", "-d", WriteFolder("", ""), "-m", TinyModel, "-o", runB, "--scorer", "rules", "--mode", "vanilla", .. Fast]);
        Assert.That(code, Is.EqualTo(0), err);
        var (cc, cjson, cerr) = RunCli("eval", "compare", runA, runB, "--json");
        Assert.That(cc, Is.EqualTo(0), cerr);
        var cmp = JsonNode.Parse(cjson)!;
        Assert.That((string?)cmp["benchmark"], Is.EqualTo("toy-colours"));
        Assert.That((int)cmp["n_common"]!, Is.EqualTo(2));
        Assert.That(cmp["deltas"]!.AsArray().Select(d => (string)d!["metric"]!), Is.EqualTo(new[] { "hit_rate", "shade=cold.hit_rate", "shade=warm.hit_rate" }));
        var outcomesA = RunStore.ReadRecords(runA).ToDictionary(r => r.Id, r => r.Outputs.Single().Score!.Label == "right" ? "right" : "not right");
        var outcomesB = RunStore.ReadRecords(runB).ToDictionary(r => r.Id, r => r.Outputs.Single().Score!.Label == "right" ? "right" : "not right");
        var flips = cmp["flips"]!.AsArray().Select(f => ((string)f!["id"]!, (string)f["a"]!, (string)f["b"]!)).ToList();
        Assert.That(flips, Is.EquivalentTo(outcomesA.Where(kv => kv.Value != outcomesB[kv.Key]).Select(kv => (kv.Key, kv.Value, outcomesB[kv.Key]))));
        Assert.That(flips, Does.Contain(("colour/r", "not right", "right")), "outcomes in the toy's own terms");
    }
}
