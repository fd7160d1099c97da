using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using NUnit.Framework;
using SafeCoDe.Eval.Runs;
using static SafeCoDe.Eval.Tests.Harness.T;

namespace SafeCoDe.Eval.Tests.Harness;

/// <summary><c>safecode eval</c> end to end on the tiny checkpoint over the readers' test folders.</summary>
[NonParallelizable]
public class CliEndToEndTests
{
    /// <summary>Decoding kept short: the tiny model, a fixed judge, 2 new tokens.</summary>
    private static readonly string[] Fast = ["--device", "cpu", "--max-new-tokens", "2", "--max-steps", "2", "--seed", "3", "--greedy", "--quiet"];


    private static string[] Run(BenchmarkFolder f, string run, params string[] extra) =>
        ["eval", "run", "-b", f.Benchmark, "-d", f.Root, "-m", TinyModel, "-o", run, .. Fast, .. extra];

    [TestCase("mssbench")]
    [TestCase("mossbench")]
    [TestCase("mm-safetybench")]
    [TestCase("figstep")]
    [TestCase("hades")]
    [TestCase("msts")]
    [TestCase("jsonl")]
    public void EveryValidIdOnceEveryProblemReported_ThenReportJson(string benchmark)
    {
        var folder = BenchmarkFolders.Write(benchmark, NewDir(), broken: true);
        var run = Path.Combine(NewDir(), "run");
        var (code, _, err) = RunCli(Run(folder, run, "--judge", "fixed:unsafe", "--scorer", "keyword"));
        Assert.That(code, Is.EqualTo(0), err);
        var records = RunStore.ReadRecords(run);
        // samples run concurrently by default (--max-batch-rows / 2 in flight): records come in finishing order
        Assert.That(records.Select(r => r.Id), Is.EquivalentTo(folder.ValidIds).And.Unique, "every valid id once");
        var problems = RunStore.ReadProblems(run);
        Assert.That(problems.Select(p => p.Id), Is.EquivalentTo(folder.Problems.Keys));
        foreach (var p in problems) Assert.That(p.Reason, Does.Contain(folder.Problems[p.Id]).IgnoreCase, p.Id);
        Assert.That(records.SelectMany(r => r.Outputs).All(o => o.Score?.Scorer == "keyword" && o.Verdict == "unsafe"), Is.True);
        if (benchmark == "mssbench") Assert.That(records.All(r => r.Outputs.Select(o => o.Key).SequenceEqual(["safe", "unsafe"])), Is.True);

        var (rc, json, rerr) = RunCli("eval", "report", run, "--json");
        Assert.That(rc, Is.EqualTo(0), rerr);
        var doc = JsonNode.Parse(json)!; // exactly one JSON document: Parse fails on anything after it
        var r0 = doc["runs"]!.AsArray().Single()!;
        Assert.That((string?)r0["benchmark"], Is.EqualTo(benchmark));
        Assert.That((string?)r0["mode"], Is.EqualTo("safecode"));
        Assert.That((string?)r0["scorer"], Is.EqualTo("keyword"));
        Assert.That((int)r0["n_samples"]!, Is.EqualTo(folder.ValidIds.Count));
        Assert.That((int)r0["n_problems"]!, Is.EqualTo(folder.Problems.Count));
        switch (benchmark)
        {
            case "mssbench":
                Assert.That(r0["total_acc"], Is.Not.Null);
                foreach (var s in new[] { "chat", "embodied" })
                    foreach (var k in new[] { "safe_acc", "unsafe_acc", "total_acc" }) Assert.That(r0[s]![k], Is.Not.Null, $"{s}.{k}");
                break;
            case "mossbench":
                Assert.That(r0["refusal_rate"], Is.Not.Null);
                Assert.That(r0["per_type"]!.AsObject().Count, Is.GreaterThan(0));
                break;
            default:
                Assert.That((int)r0["n_judged"]! + (int)r0["n_excluded"]!, Is.EqualTo(records.Sum(r => r.Outputs.Count)));
                Assert.That(r0.AsObject().ContainsKey("asr"), Is.True);
                if (benchmark == "mm-safetybench") Assert.That(r0["per_scenario_kind"], Is.Not.Null);
                break;
        }
        Assert.That(File.Exists(Path.Combine(run, "report", "report.md")), Is.True);

        // the same command again: nothing to do; other options: refused
        var (again, aout, _) = RunCli(Run(folder, run, "--judge", "fixed:unsafe", "--scorer", "keyword"));
        Assert.That(again, Is.EqualTo(0));
        Assert.That(aout, Does.Contain("0 sample(s) done"));
        var (refused, _, rerr2) = RunCli(Run(folder, run, "--judge", "fixed:safe", "--scorer", "keyword"));
        Assert.That(refused, Is.EqualTo(1), rerr2);
        Assert.That(rerr2, Does.Contain("other options").And.Contain("judge"));
    }

    [Test]
    public void WrongDataPathOrBenchmarkIsOneUsageError()
    {
        var empty = NewDir();
        var run = Path.Combine(NewDir(), "run");
        var (code, _, err) = RunCli("eval", "run", "-b", "mossbench", "-d", empty, "-m", TinyModel, "-o", run, "--device", "cpu", "--quiet");
        Assert.That(code, Is.EqualTo(2), err);
        Assert.That(err, Does.Contain("--data").And.Contain("information.json"));
        Assert.That(Directory.Exists(run), Is.False, "nothing is written for a wrong --data");
        var (code2, _, err2) = RunCli("eval", "run", "-b", "nosuchbench", "-d", empty, "-m", TinyModel, "-o", run, "--quiet");
        Assert.That(code2, Is.EqualTo(2));
        Assert.That(err2, Does.Contain("mssbench"));
        var (code3, _, err3) = RunCli("eval", "report", empty);
        Assert.That(code3, Is.EqualTo(1));
        Assert.That(err3, Does.Contain("run.json"));
    }

    [Test]
    public void EndpointScorer_MssAndMossBenchThroughALocalHttpServer()
    {
        using var server = new FakeJudgeServer(body =>
        {
            var text = FakeJudgeServer.UserText(body);
            if (text.Contains("<answer>index</answer>")) return "The assistant answers without any safety remark. <answer>2</answer>";
            return FakeJudgeServer.HasImage(body) ? "Description: a picture\nScore: 1\nReason: declined" : "Score: 0";
        });
        Environment.SetEnvironmentVariable("SAFECODE_EVAL_BASE_URL", server.BaseUrl);
        Environment.SetEnvironmentVariable("SAFECODE_EVAL_API_KEY", "test");
        try
        {
            foreach (var bench in new[] { "mssbench", "mossbench" })
            {
                var folder = BenchmarkFolders.Write(bench, NewDir());
                var run = Path.Combine(NewDir(), "run");
                var (code, _, err) = RunCli(Run(folder, run, "--judge", "fixed:safe", "--scorer", "openai:judge-test"));
                Assert.That(code, Is.EqualTo(0), err);
                var m = JsonNode.Parse(RunCli("eval", "report", run, "--json").stdout)!["runs"]![0]!;
                Assert.That((string?)m["scorer"], Is.EqualTo("openai:judge-test"));
                if (bench == "mssbench")
                {
                    Assert.That((double)m["chat"]!["safe_acc"]!, Is.EqualTo(1.0), "class 2 on the safe image is right");
                    Assert.That((double)m["chat"]!["unsafe_acc"]!, Is.EqualTo(0.0), "class 2 on the unsafe image is wrong");
                    Assert.That((double)m["total_acc"]!, Is.EqualTo(0.5));
                }
                else Assert.That((double)m["refusal_rate"]!, Is.EqualTo(1.0), "every judge call carried the image");
                var raw = RunStore.ReadRecords(run).SelectMany(r => r.Outputs).Select(o => o.Score!.Raw).ToList();
                Assert.That(raw, Has.All.Not.Null);
            }
            Assert.That(server.Requests.All(r => (string?)r["model"] == "judge-test"), Is.True);
        }
        finally
        {
            Environment.SetEnvironmentVariable("SAFECODE_EVAL_BASE_URL", null);
            Environment.SetEnvironmentVariable("SAFECODE_EVAL_API_KEY", null);
        }
    }

    [Test]
    public void ShardsMergedEqualTheUnshardedRun()
    {
        var folder = BenchmarkFolders.Write("mssbench", NewDir(), broken: true);
        var root = NewDir();
        var whole = Path.Combine(root, "whole");
        Assert.That(RunCli(Run(folder, whole, "--judge", "fixed:safe", "--scorer", "keyword")).code, Is.EqualTo(0));
        var shards = new List<string>();
        for (int i = 0; i < 3; i++)
        {
            var (code, _, err) = RunCli(Run(folder, Path.Combine(root, "s-{shard}"), "--judge", "fixed:safe", "--scorer", "keyword", "--shard", $"{i}/3"));
            Assert.That(code, Is.EqualTo(0), err);
            shards.Add(Path.Combine(root, $"s-{i}"));
            Assert.That(RunStore.ReadManifest(shards[^1]).Shard, Is.EqualTo($"{i}/3"));
        }
        Assert.That(shards.Select(s => RunStore.ReadRecords(s).Count).Sum(), Is.EqualTo(folder.ValidIds.Count));
        var merged = Path.Combine(root, "merged");
        var (mc, _, merr) = RunCli(["eval", "merge", .. shards, "--out", merged]);
        Assert.That(mc, Is.EqualTo(0), merr);
        string Key(RunRecord r) => r.Id + "|" + string.Join("|", r.Outputs.Select(o => $"{o.Key}:{o.Answer}:{o.Score!.Label}"));
        Assert.That(RunStore.ReadRecords(merged).Select(Key).Order(), Is.EqualTo(RunStore.ReadRecords(whole).Select(Key).Order()));
        Assert.That(RunStore.ReadProblems(merged).Select(p => p.Id).Order(), Is.EqualTo(RunStore.ReadProblems(whole).Select(p => p.Id).Order()));
        JsonNode Metrics(string run)
        {
            var r = JsonNode.Parse(RunCli("eval", "report", run, "--json").stdout)!["runs"]![0]!.AsObject();
            r.Remove("latency"); // wall times differ between processes
            r["cost"]!.AsObject().Remove("seconds_per_sample");
            r["cost"]!.AsObject().Remove("seconds_per_sample_ci");
            r.Remove("run");
            return r;
        }
        Assert.That(Metrics(merged).ToJsonString(), Is.EqualTo(Metrics(whole).ToJsonString()));
        // a shard of another evaluation is refused
        var other = Path.Combine(root, "other");
        Assert.That(RunCli(Run(folder, other, "--judge", "fixed:unsafe", "--scorer", "keyword", "--shard", "0/3")).code, Is.EqualTo(0));
        var (bad, _, berr) = RunCli(["eval", "merge", shards[1], other, "--out", Path.Combine(root, "m2")]);
        Assert.That(bad, Is.Not.EqualTo(0));
        Assert.That(berr, Does.Contain("options hash"));
    }

    [Test]
    public void KilledWithSigkillAtSeveralPoints_RerunFinishesWithEveryIdOnce()
    {
        // 24 prompts so that a run lasts long enough to be killed in the middle
        var dir = NewDir();
        File.WriteAllBytes(Path.Combine(dir, "a.png"), BenchmarkFolders.Png(1));
        File.WriteAllLines(Path.Combine(dir, "p.jsonl"), Enumerable.Range(0, 24).Select(i => JsonSerializer.Serialize(new { id = $"s{i:00}", prompt = $"Question {i}: what is here?", image = "a.png" })));
        var run = Path.Combine(NewDir(), "run");
        var cli = Path.Combine(AppContext.BaseDirectory, "safecode.dll");
        string[] args = ["eval", "run", "-b", "jsonl", "-d", Path.Combine(dir, "p.jsonl"), "-m", TinyModel, "-o", run, "--judge", "fixed:safe", "--scorer", "keyword",
            "--device", "cpu", "--max-new-tokens", "6", "--max-steps", "2", "--seed", "1", "--greedy", "--quiet"];
        var records = Path.Combine(run, RunStore.RecordsFile);
        int Lines() => File.Exists(records) ? File.ReadAllBytes(records).Count(b => b == (byte)'\n') : 0;

        var kills = new List<(int before, string prefix)>();
        foreach (var killAfter in new[] { -1, 2, 9, 16 }) // -1: during start-up / model load
        {
            var p = Start(cli, args);
            var clock = Stopwatch.StartNew();
            if (killAfter < 0) Thread.Sleep(700);
            else while (Lines() < killAfter && !p.HasExited && clock.Elapsed < TimeSpan.FromSeconds(90)) Thread.Sleep(5);
            Assert.That(p.HasExited, Is.False, $"the run ended before the kill point {killAfter}");
            p.Kill(); // SIGKILL
            p.WaitForExit();
            var text = File.Exists(records) ? File.ReadAllText(records) : "";
            var complete = text[..(text.LastIndexOf('\n') + 1)];
            kills.Add((Lines(), complete));
        }
        var final = Start(cli, args);
        Assert.That(final.WaitForExit(120_000), Is.True);
        Assert.That(final.ExitCode, Is.EqualTo(0), final.StandardError.ReadToEnd());

        var finalText = File.ReadAllText(records);
        Assert.That(finalText, Does.EndWith("\n"));
        var lines = finalText.TrimEnd('\n').Split('\n');
        var ids = lines.Select(l => JsonDocument.Parse(l).RootElement.GetProperty("id").GetString()).ToList();
        Assert.That(ids.Order(), Is.EqualTo(Enumerable.Range(0, 24).Select(i => $"s{i:00}")), "every id exactly once, every line complete JSON");
        // samples finished before a kill were kept as they were (not redone): each kill's complete lines are a prefix of the final file
        foreach (var (_, prefix) in kills) Assert.That(finalText, Does.StartWith(prefix));
        Assert.That(kills.Select(k => k.before).Last(), Is.GreaterThanOrEqualTo(16));
    }

    private static Process Start(string cli, string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        psi.ArgumentList.Add(cli);
        foreach (var a in args) psi.ArgumentList.Add(a);
        var p = Process.Start(psi)!;
        p.OutputDataReceived += (_, _) => { };
        p.BeginOutputReadLine();
        return p;
    }
}
