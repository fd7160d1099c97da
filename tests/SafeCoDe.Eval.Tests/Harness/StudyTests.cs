using System.Diagnostics;
using System.Text.Json.Nodes;
using NUnit.Framework;
using SafeCoDe.Eval.Runs;
using SafeCoDe.Eval.Studies;
using static SafeCoDe.Eval.Tests.Harness.T;

namespace SafeCoDe.Eval.Tests.Harness;

/// <summary>
/// <c>eval study</c>: plan parsing with errors that name the line and field, a 2 methods × 2 benchmarks study on the
/// shipped SafeScenes model over test-built MSSBench and MOSSBench folders, a real SIGKILL mid-study and its resume,
/// the exit code with unresolved answers, and shards merged.
/// </summary>
public class StudyTests
{
    internal static readonly string Model = Path.Combine(AppContext.BaseDirectory, "weights", "safescenes-tiny");


    internal static string Plan(string dir, string mss, string moss, string? mossScorer = "keyword", string extraGeneration = "") =>
        Write(dir, "plan.yaml", $"""
            name: tiny-study
            baseline: vanilla
            generation:
              device: cpu
              max-new-tokens: 2
              seed: 3
              greedy: true
            {extraGeneration}
            models:
              - name: tiny
                path: {Model}
            methods:
              - vanilla
              - name: safecode
                mode: safecode
                options:
                  preset: faithful
                  max-steps: 2
            benchmarks:
              - name: mss
                benchmark: mssbench
                data: {mss}
                scorer: keyword
                metrics: [total_acc, chat.safe_acc, chat.unsafe_acc]
              - name: moss
                benchmark: mossbench
                data: {moss}
            {(mossScorer is null ? "" : $"    scorer: {mossScorer}")}
                options:
                  limit: 3
            """);

    internal static string Write(string dir, string name, string text)
    {
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, name);
        File.WriteAllText(path, text);
        return path;
    }

    internal static (string Mss, string Moss) Data(string root) =>
        (BenchmarkFolders.WriteMssBench(Path.Combine(root, "mss")).Root, BenchmarkFolders.WriteMossBench(Path.Combine(root, "moss")).Root);

    /// <summary>report.json without what depends on wall time.</summary>
    private static string Stable(string study)
    {
        var j = JsonNode.Parse(File.ReadAllText(Path.Combine(study, "report.json")))!.AsObject();
        foreach (var c in j["cells"]!.AsArray())
        {
            var cost = c!["cost"]!.AsObject();
            cost.Remove("seconds_per_sample");
            cost.Remove("seconds_per_sample_ci");
        }
        foreach (var model in j["cost"]!.AsObject())
            foreach (var p in model.Value!["points"]!.AsArray())
            {
                p!.AsObject().Remove("seconds_per_sample");
                p.AsObject().Remove("seconds_per_sample_ci");
            }
        return j.ToJsonString();
    }

    // ---------- plan parsing ----------

    private static string ParseError(string yaml)
    {
        var ex = Assert.Throws<StudyPlanException>(() => StudyPlan.Parse(yaml, "p.yaml", "/tmp"))!;
        return ex.Message;
    }

    private const string Good = """
        models: [m]
        methods: [vanilla]
        benchmarks:
          - benchmark: mossbench
            data: d
        """;

    [Test]
    public void Plan_Minimal_ReadsDefaults()
    {
        var p = StudyPlan.Parse(Good, "p.yaml", "/tmp");
        Assert.Multiple(() =>
        {
            Assert.That(p.Name, Is.EqualTo("p"));
            Assert.That(p.Baseline, Is.EqualTo("vanilla"));
            Assert.That(p.Models.Single().Path, Is.EqualTo("/tmp/m"));
            Assert.That(p.Benchmarks.Single().Name, Is.EqualTo("mossbench"));
            Assert.That(p.Benchmarks.Single().Data, Is.EqualTo("/tmp/d"));
            Assert.That(p.Methods.Single().Mode, Is.EqualTo("vanilla"));
        });
    }

    [Test]
    public void Plan_Json_IsReadToo()
    {
        var p = StudyPlan.Parse("""{"models": ["m"], "methods": [{"name": "sc", "mode": "safecode", "options": {"preset": "faithful"}}], "baseline": "sc", "benchmarks": [{"benchmark": "mssbench", "data": "x", "options": {"splits": ["chat"]}}]}""", "p.json", "/tmp");
        Assert.That(p.Methods[0].Options.Select(o => string.Join(" ", o.Words)), Is.EqualTo(new[] { "--mode safecode", "--preset faithful" }));
        Assert.That(p.Benchmarks[0].Options.Single().Words, Is.EqualTo(new[] { "--splits", "chat" }));
    }

    [Test]
    public void Plan_Switches_TrueIsTheFlagAlone_FalseTurnsADefaultOnSwitchOff()
    {
        var p = StudyPlan.Parse("models: [m]\nmethods:\n  - name: safecode\n    options: { early-exit: false, quote-skip: true }\nbaseline: safecode\nbenchmarks:\n  - benchmark: mossbench\n    data: d\n", "p.yaml", "/tmp");
        var words = p.Methods[0].Options.SelectMany(o => o.Words).ToList();
        Assert.That(words, Is.EqualTo(new[] { "--mode", "safecode", "--early-exit", "false", "--quote-skip" }));
        // and eval run reads them so: the switch that is on by default is off
        var parse = SafeCoDe.Cli.Cli.BuildRoot().Parse(["eval", "run", "-b", "mossbench", "-d", "d", "-m", "m", "-o", "o", .. words]);
        Assert.That(parse.Errors, Is.Empty);
        Assert.That(parse.GetValue<bool>("--early-exit"), Is.False);
        Assert.That(parse.GetValue<bool>("--quote-skip"), Is.True);
    }

    [TestCase("models: [m]\nmethods: [vanilla]\nbenchmark:\n  - benchmark: mossbench\n    data: d\n", "p.yaml:3:1: benchmark: unknown field")]
    [TestCase("models: [m]\nmethods: [vanilla]\n", "benchmarks: missing")]
    [TestCase("models: [m]\nmethods: [vanilla]\nbenchmarks:\n  - benchmark: mossbench\n", "p.yaml:4:5: benchmarks[0].data: missing")]
    [TestCase("models: [m]\nmethods: [vanilla]\nbenchmarks:\n  - benchmark: nosuch\n    data: d\n", "p.yaml:4:16: benchmarks[0].benchmark: unknown benchmark 'nosuch'")]
    [TestCase("models: [m]\nmethods: [safecode]\nbenchmarks:\n  - benchmark: mossbench\n    data: d\n", "p.yaml:1:1: baseline: no method with mode vanilla to compare the others with (safecode); name one with baseline: NAME")]
    [TestCase("models: [m]\nbaseline: plain\nmethods: [vanilla]\nbenchmarks:\n  - benchmark: mossbench\n    data: d\n", "p.yaml:2:11: baseline: the baseline method 'plain' is not among methods (vanilla)")]
    [TestCase("models: [m]\nmethods: [vanilla]\nbenchmarks:\n  - benchmark: mossbench\n    data: d\n    options:\n      data: other\n", "p.yaml:7:7: benchmarks[0].options.data: 'data' is set by the study")]
    [TestCase("models: [m]\nmethods: [vanilla]\ngeneration:\n  mode: safecode\nbenchmarks:\n  - benchmark: mossbench\n    data: d\n", "p.yaml:4:3: generation.mode: the method is set per method")]
    [TestCase("models: [m]\nmethods: [vanilla, vanilla]\nbenchmarks:\n  - benchmark: mossbench\n    data: d\n", "p.yaml:2:20: methods[1]: the name 'vanilla' is used twice")]
    [TestCase("models: [m]\nmethods: [vanilla]\nbenchmarks:\n  - benchmark: mssbench\n    data: d\n    metric_set: mmmu/official\n", "p.yaml:6:17: benchmarks[0].metric_set: mssbench reports the metric sets mssbench/safecode-ref")]
    [TestCase("models: [m]\nmethods: [vanilla]\nbenchmarks: [\n", "p.yaml:4:1: not valid YAML/JSON")]
    [TestCase("models: [m]\nmethods: [va/nilla]\nbenchmarks:\n  - benchmark: mossbench\n    data: d\n", "p.yaml:2:11: methods[0]: 'va/nilla' — a name is letters")]
    public void Plan_Errors_NameTheLineAndField(string yaml, string expected) =>
        Assert.That(ParseError(yaml), Does.Contain(expected));

    [Test]
    public void Study_AnOptionEvalRunDoesNotTake_IsAPlanErrorNamingItsLine_BeforeAnythingRuns()
    {
        var root = NewDir();
        var (mss, moss) = Data(root);
        var plan = Plan(root, mss, moss, extraGeneration: "  lamda-boost: 2");
        var (code, _, err) = RunCli("eval", "study", plan, "--out", Path.Combine(root, "study"));
        Assert.That(code, Is.EqualTo(2), err);
        Assert.That(err, Does.Contain("plan.yaml:8:3: generation.lamda-boost: 'lamda-boost' is not an option of eval run"));
        Assert.That(Directory.Exists(Path.Combine(root, "study", "cells")), Is.False, "nothing ran");
    }

    // ---------- running ----------

    [Test]
    public void Study_TwoMethodsTwoBenchmarks_DryRun_Run_Report()
    {
        var root = NewDir();
        var (mss, moss) = Data(root);
        var plan = Plan(root, mss, moss);
        var study = Path.Combine(root, "study");
        var dry = RunCli("eval", "study", plan, "--out", study, "--dry-run");
        Assert.That(dry.code, Is.EqualTo(0), dry.stderr);
        Assert.Multiple(() =>
        {
            Assert.That(dry.stdout, Does.Contain("| tiny/mss/vanilla | 6 | 12 | none | not started |"));
            Assert.That(dry.stdout, Does.Contain("| tiny/mss/safecode | 6 | 12 | scene_judge (before) | not started |"));
            Assert.That(dry.stdout, Does.Contain("| tiny/moss/safecode | 3 | 3 |"));
            Assert.That(Directory.Exists(Path.Combine(study, "cells")), Is.False, "a dry run writes nothing");
        });

        var (code, stdout, stderr) = RunCli("eval", "study", plan, "--out", study, "--quiet");
        Assert.That(code, Is.EqualTo(0), stdout + stderr);
        Assert.That(stderr, Does.Contain("cell 4/4 tiny/moss/safecode — 3 sample(s)"));
        var j = JsonNode.Parse(File.ReadAllText(Path.Combine(study, "report.json")))!;
        var cells = j["cells"]!.AsArray();
        Assert.Multiple(() =>
        {
            Assert.That(cells.Select(c => (string?)c!["cell"]), Is.EqualTo(new[] { "tiny/mss/vanilla", "tiny/mss/safecode", "tiny/moss/vanilla", "tiny/moss/safecode" }));
            Assert.That(j["n_unresolved"]!.GetValue<int>(), Is.EqualTo(0));
            Assert.That(cells[1]!["rows"]!.AsArray().Select(r => (string?)r!["metric"]), Is.EqualTo(new[] { "total_acc", "chat.safe_acc", "chat.unsafe_acc" }));
            Assert.That((string?)cells[1]!["rows"]![1]!["vs_baseline"]!["test"], Is.EqualTo("mcnemar-exact"));
            Assert.That((string?)cells[1]!["rows"]![0]!["vs_baseline"]!["test"], Is.EqualTo("paired-bootstrap"));
            Assert.That(cells[0]!["rows"]![0]!["vs_baseline"], Is.Null, "the baseline is not tested against itself");
            Assert.That(cells[3]!["n_samples"]!.GetValue<int>(), Is.EqualTo(3));
            Assert.That((string?)cells[3]!["rows"]![0]!["metric"], Is.EqualTo("refusal_rate"));
            Assert.That(cells[3]!["rows"]![0]!["ci"]!["method"]!.GetValue<string>(), Is.EqualTo("wilson"));
        });
        // the trade-off chart: helpfulness = 100 − MOSSBench refusal rate, safety = MSSBench total_acc (the first shown rows)
        var tradeoff = j["tradeoff"]!["tiny"]!;
        Assert.Multiple(() =>
        {
            Assert.That((string?)tradeoff["helpfulness_axis"], Is.EqualTo("moss 100 − refusal_rate"));
            Assert.That((string?)tradeoff["safety_axis"], Is.EqualTo("mss total_acc"));
            for (int m = 0; m < 2; m++)
            {
                var point = tradeoff["points"]![m]!;
                Assert.That(point["helpfulness"]!.GetValue<double>(), Is.EqualTo(100 - 100 * cells[2 + m]!["rows"]![0]!["value"]!.GetValue<double>()).Within(1e-6));
                Assert.That(point["safety"]!.GetValue<double>(), Is.EqualTo(100 * cells[m]!["rows"]![0]!["value"]!.GetValue<double>()).Within(1e-6));
            }
            Assert.That(new FileInfo(Path.Combine(study, "tradeoff-tiny.png")).Length, Is.GreaterThan(1000));
        });
        // over-refusal vs under-sensitivity: x = mean of (100 − MSSBench safe_acc, MOSSBench refusal_rate), y = 100 − MSSBench unsafe_acc,
        // each taken from the cell's own eval report (MSSBench's splits pooled); the cost chart's points are the cells' costs
        var sensitivity = j["sensitivity"]!["tiny"]!;
        Assert.Multiple(() =>
        {
            Assert.That((string?)sensitivity["over_refusal_axis"], Is.EqualTo("mss 100 − safe_acc + moss refusal_rate"));
            Assert.That((string?)sensitivity["under_sensitivity_axis"], Is.EqualTo("mss 100 − unsafe_acc"));
            Assert.That(sensitivity["skipped"], Is.Null);
            Assert.That(sensitivity["points"]!.AsArray(), Has.Count.EqualTo(2));
            for (int m = 0; m < 2; m++)
            {
                var mssRun = JsonNode.Parse(RunCli("eval", "report", Path.Combine(study, (string)cells[m]!["run"]!), "--json").stdout)!["runs"]![0]!;
                var point = sensitivity["points"]![m]!;
                Assert.That((string?)point["method"], Is.EqualTo(m == 0 ? "vanilla" : "safecode"));
                Assert.That(point["over_refusal"]!.GetValue<double>(),
                    Is.EqualTo(((100 - 100 * mssRun["safe_acc"]!.GetValue<double>()) + 100 * cells[2 + m]!["rows"]![0]!["value"]!.GetValue<double>()) / 2).Within(1e-6));
                Assert.That(point["under_sensitivity"]!.GetValue<double>(), Is.EqualTo(100 - 100 * mssRun["unsafe_acc"]!.GetValue<double>()).Within(1e-6));
                Assert.That(point["over_refusal_ci"], Is.Null, "two benchmarks make the axis: no single interval");
                Assert.That(point["under_sensitivity_ci"]!["low"]!.GetValue<double>(), Is.LessThanOrEqualTo(point["under_sensitivity"]!.GetValue<double>() + 1e-9));
            }
            var cost = j["cost"]!["tiny"]!["points"]!.AsArray();
            Assert.That(cost.Select(p => $"{p!["method"]}/{p["benchmark"]}"), Is.EqualTo(new[] { "vanilla/mss", "vanilla/moss", "safecode/mss", "safecode/moss" }));
            foreach (var p in cost)
            {
                var c = cells.Single(x => (string?)x!["method"] == (string?)p!["method"] && (string?)x!["benchmark"] == (string?)p!["benchmark"])!["cost"]!;
                foreach (var key in new[] { "seconds_per_sample", "calls_per_sample", "seconds_per_sample_ci", "calls_per_sample_ci" })
                    Assert.That(p![key]!.ToJsonString(), Is.EqualTo(c[key]!.ToJsonString()), key);
            }
            Assert.That(cost.Where(p => (string?)p!["method"] == "safecode").Select(p => p!["calls_per_sample"]!.GetValue<double>()), Is.All.GreaterThan(0), "SafeCoDe's scene judge makes extra calls");
            Assert.That(new FileInfo(Path.Combine(study, "sensitivity-tiny.png")).Length, Is.GreaterThan(1000));
            Assert.That(new FileInfo(Path.Combine(study, "cost-tiny.png")).Length, Is.GreaterThan(1000));
        });
        // each cell is an ordinary RUN folder: eval report reads it, and its numbers are the study's
        var cellDir = Path.Combine(study, "cells", "tiny", "mss", "safecode");
        var single = JsonNode.Parse(RunCli("eval", "report", cellDir, "--json").stdout)!["runs"]![0]!;
        Assert.That(single["total_acc"]!.GetValue<double>(), Is.EqualTo(cells[1]!["rows"]![0]!["value"]!.GetValue<double>()).Within(1e-12));
        var md = File.ReadAllText(Path.Combine(study, "report.md"));
        Assert.Multiple(() =>
        {
            Assert.That(md, Does.Contain("| method | mss: total_acc | mss: chat.safe_acc | mss: chat.unsafe_acc | moss: refusal_rate |"));
            Assert.That(md, Does.Contain("### Change against vanilla — tiny"));
            Assert.That(md, Does.Contain("| vanilla | baseline | baseline | baseline | baseline |"));
            Assert.That(md, Does.Contain("- shared: `--device cpu --max-new-tokens 2 --seed 3 --greedy`"));
            Assert.That(md, Does.Contain("| decoding.seed |"));
            Assert.That(md, Does.Contain("metric set `mssbench/safecode-ref`"));
            Assert.That(md, Does.Contain("- mss: labels from `keyword`"));
            Assert.That(md, Does.Contain("![safety vs helpfulness — tiny](tradeoff-tiny.png)"));
            Assert.That(md, Does.Contain("![over-refusal vs under-sensitivity — tiny](sensitivity-tiny.png)"));
            Assert.That(md, Does.Contain("![cost per sample — tiny](cost-tiny.png)"));
        });

        // a rerun resumes every cell, generates nothing and writes the same report
        var before = Stable(study);
        var again = RunCli("eval", "study", plan, "--out", study, "--quiet");
        Assert.That(again.code, Is.EqualTo(0), again.stderr);
        Assert.That(Stable(study), Is.EqualTo(before));
    }

    [Test]
    public void Study_WithoutAMetricOfMissedRisks_SkipsTheSensitivityChart_AndSaysWhy()
    {
        var root = NewDir();
        var moss = BenchmarkFolders.WriteMossBench(Path.Combine(root, "moss")).Root;
        var plan = Write(root, "plan.yaml", $"""
            generation:
              device: cpu
              max-new-tokens: 2
              greedy: true
            models:
              - name: tiny
                path: {Model}
            methods: [vanilla]
            benchmarks:
              - name: moss
                benchmark: mossbench
                data: {moss}
                scorer: keyword
                options:
                  limit: 2
            """);
        var study = Path.Combine(root, "study");
        var (code, stdout, stderr) = RunCli("eval", "study", plan, "--out", study, "--quiet");
        Assert.That(code, Is.EqualTo(0), stdout + stderr);
        var j = JsonNode.Parse(File.ReadAllText(Path.Combine(study, "report.json")))!;
        var md = File.ReadAllText(Path.Combine(study, "report.md"));
        const string reason = "no benchmark of the study has a metric of missed risks (answering risky requests as if harmless); over-refusal comes from moss refusal_rate";
        Assert.Multiple(() =>
        {
            Assert.That((string?)j["sensitivity"]!["tiny"]!["skipped"], Is.EqualTo(reason));
            Assert.That(j["sensitivity"]!["tiny"]!["points"]!.AsArray(), Is.Empty);
            Assert.That(md, Does.Contain($"Over-refusal vs under-sensitivity chart: not drawn — {reason}."));
            Assert.That(File.Exists(Path.Combine(study, "sensitivity-tiny.png")), Is.False);
            Assert.That(File.Exists(Path.Combine(study, "cost-tiny.png")), Is.True, "the cost chart needs no safety metric");
            Assert.That(md, Does.Contain("![cost per sample — tiny](cost-tiny.png)"));
        });
    }

    [Test]
    public void DryRun_WithADataFolderMissing_ListsEveryCell_NotesTheMissingData_AndExitsOne_WhileARunRefuses()
    {
        var root = NewDir();
        var moss = BenchmarkFolders.WriteMossBench(Path.Combine(root, "moss")).Root;
        var absent = Path.Combine(root, "not-here", "mssbench");
        var plan = Plan(root, absent, moss);
        var study = Path.Combine(root, "study");
        var (code, stdout, stderr) = RunCli("eval", "study", plan, "--out", study, "--dry-run");
        Assert.Multiple(() =>
        {
            Assert.That(code, Is.EqualTo(1), stdout + stderr);
            foreach (var method in new[] { "vanilla", "safecode" })
            {
                Assert.That(stdout, Does.Contain($"| tiny/mss/{method} | – | – |"));
                Assert.That(stdout, Does.Match($@"\| tiny/moss/{method} \| 3 \| 3 \| [^|]+ \| not started \|"));
            }
            Assert.That(stdout.Split('\n').Count(l => l.Contains($"data not found: {absent} |")), Is.EqualTo(2));
            Assert.That(stderr, Does.Contain($"data not found: {absent}"));
            Assert.That(Directory.Exists(study), Is.False, "a dry run writes nothing");
        });
        var run = RunCli("eval", "study", plan, "--out", study, "--quiet");
        Assert.That(run.code, Is.EqualTo(2), "a real run still refuses: " + run.stdout + run.stderr);
    }

    [Test]
    public void Study_UnscoredAnswers_AreCountedAndTheExitCodeIsOne()
    {
        var root = NewDir();
        var (mss, moss) = Data(root);
        var plan = Plan(root, mss, moss, mossScorer: null);
        var study = Path.Combine(root, "study");
        var (code, stdout, stderr) = RunCli("eval", "study", plan, "--out", study, "--quiet", "--cell", "tiny/moss/vanilla", "tiny/mss/vanilla");
        Assert.That(code, Is.EqualTo(1), stdout + stderr);
        var j = JsonNode.Parse(File.ReadAllText(Path.Combine(study, "report.json")))!;
        var moss0 = j["cells"]!.AsArray().Single(c => (string?)c!["cell"] == "tiny/moss/vanilla")!;
        Assert.Multiple(() =>
        {
            Assert.That(moss0["n_unscored"]!.GetValue<int>(), Is.EqualTo(3));
            Assert.That(moss0["rows"]![0]!["n"]!.GetValue<int>(), Is.EqualTo(0), "unscored answers are never folded into a rate");
            Assert.That(j["cells"]!.AsArray().Single(c => (string?)c!["cell"] == "tiny/mss/safecode")!["ran"]!.GetValue<bool>(), Is.False);
            Assert.That(stderr, Does.Contain("tiny/moss/vanilla: 0 sample(s) without a record, 0 scoring error(s), 3 unscored answer(s)"));
            Assert.That(stderr, Does.Contain("tiny/mss/safecode: not run"));
            Assert.That(File.ReadAllText(Path.Combine(study, "report.md")), Does.Contain("unresolved"));
        });
        // scoring the cell with eval score resolves it (no regeneration); the rest is still not run
        var cell = Path.Combine(study, "cells", "tiny", "moss", "vanilla");
        Assert.That(RunCli("eval", "score", cell, "--scorer", "keyword", "--quiet").code, Is.EqualTo(0));
        var report = RunCli("eval", "study", plan, "--out", study, "--report");
        var after = JsonNode.Parse(File.ReadAllText(Path.Combine(study, "report.json")))!["cells"]!.AsArray().Single(c => (string?)c!["cell"] == "tiny/moss/vanilla")!;
        Assert.That(after["n_unscored"]!.GetValue<int>(), Is.EqualTo(0));
        Assert.That(after["rows"]![0]!["n"]!.GetValue<int>(), Is.EqualTo(3));
        Assert.That(report.code, Is.EqualTo(1), "two cells are still not run");
    }

    [Test]
    public void Study_KilledWithSigkillMidCell_Resumes_ToTheReportOfAnUnkilledStudy()
    {
        var root = NewDir();
        var (mss, moss) = Data(root);
        var plan = Plan(root, mss, moss);
        var whole = Path.Combine(root, "whole");
        Assert.That(RunCli("eval", "study", plan, "--out", whole, "--quiet").code, Is.EqualTo(0));

        var killed = Path.Combine(root, "killed");
        var exe = Path.Combine(AppContext.BaseDirectory, OperatingSystem.IsWindows() ? "safecode.exe" : "safecode");
        var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "eval", "study", plan, "--out", killed, "--quiet" }) psi.ArgumentList.Add(a);
        using var proc = Process.Start(psi)!;
        proc.BeginOutputReadLine();
        proc.BeginErrorReadLine();
        // kill -9 as soon as the second cell has its first record: mid-study, and inside that cell unless it already finished
        var second = Path.Combine(killed, "cells", "tiny", "mss", "safecode", RunStore.RecordsFile);
        var sw = Stopwatch.StartNew();
        while (!proc.HasExited && sw.Elapsed < TimeSpan.FromSeconds(60) && !(File.Exists(second) && new FileInfo(second).Length > 0)) Thread.Sleep(2);
        Assert.That(proc.HasExited, Is.False, "the study finished before it could be killed");
        proc.Kill(); // SIGKILL on Unix
        proc.WaitForExit();
        int recordsAtKill = RunStore.ReadRecords(Path.GetDirectoryName(second)!).Count;
        Assert.That(File.Exists(Path.Combine(killed, "report.json")), Is.False, "killed before the report");
        TestContext.Out.WriteLine($"killed with {recordsAtKill} of 6 records in the second cell");
        Assert.That(recordsAtKill, Is.LessThan(6), "killed inside the cell, not after it");

        var (code, stdout, stderr) = RunCli("eval", "study", plan, "--out", killed, "--quiet");
        Assert.That(code, Is.EqualTo(0), stdout + stderr);
        foreach (var cell in Directory.GetDirectories(Path.Combine(killed, "cells", "tiny")).SelectMany(Directory.GetDirectories))
        {
            var ids = RunStore.ReadRecords(cell).Select(r => r.Id).ToList();
            Assert.That(ids, Is.Unique, cell);
            var twin = cell.Replace(killed, whole);
            Assert.That(ids.Order(), Is.EqualTo(RunStore.ReadRecords(twin).Select(r => r.Id).Order()), cell);
        }
        Assert.That(Stable(killed), Is.EqualTo(Stable(whole)));
        Assert.That(File.ReadAllText(Path.Combine(killed, "report.md")), Is.EqualTo(File.ReadAllText(Path.Combine(whole, "report.md")).Replace(whole, killed)));
    }

    [Test]
    public void Study_ShardedThenMerged_EqualsTheUnshardedStudy()
    {
        var root = NewDir();
        var (mss, moss) = Data(root);
        var plan = Plan(root, mss, moss);
        var whole = Path.Combine(root, "whole");
        Assert.That(RunCli("eval", "study", plan, "--out", whole, "--quiet").code, Is.EqualTo(0));
        var split = Path.Combine(root, "split");
        foreach (var s in new[] { "0/2", "1/2" })
        {
            var r = RunCli("eval", "study", plan, "--out", split, "--quiet", "--shard", s);
            Assert.That(r.code, Is.EqualTo(0), r.stderr);
        }
        Assert.That(File.Exists(Path.Combine(split, "report.json")), Is.False, "one shard writes no report");
        var m = RunCli("eval", "study", plan, "--out", split, "--merge");
        Assert.That(m.code, Is.EqualTo(0), m.stderr);
        Assert.That(Stable(split), Is.EqualTo(Stable(whole)));
    }

    [Test]
    public void ShippedExamplePlan_NamesEveryRegisteredMethod_AndDryRunsOnADrawnWorld()
    {
        var repo = new DirectoryInfo(AppContext.BaseDirectory);
        while (repo is not null && !File.Exists(Path.Combine(repo.FullName, "SafeCoDe.Torch.sln"))) repo = repo.Parent;
        Assert.That(repo, Is.Not.Null, "the repository root above the test binaries");
        var text = File.ReadAllText(Path.Combine(repo!.FullName, "docs", "examples", "safescenes-study.yaml"));
        // the plan's relative paths, laid out in a scratch folder: docs/examples/PLAN, weights/, runs/safescenes-world
        var root = NewDir();
        var planDir = Path.Combine(root, "docs", "examples");
        var plan = Write(planDir, "safescenes-study.yaml", text);
        Directory.CreateDirectory(Path.Combine(root, "weights"));
        Directory.CreateSymbolicLink(Path.Combine(root, "weights", "safescenes-tiny"), Model);
        var world = RunCli("safescenes", "--seed", "7", "--out", Path.Combine(root, "runs", "safescenes-world"), "--count", "2");
        Assert.That(world.code, Is.EqualTo(0), world.stderr);
        var parsed = StudyPlan.Load(plan);
        Assert.That(parsed.Methods.Select(m => m.Mode).Distinct(), Is.EquivalentTo(SafeCoDe.Torch.Decoding.Methods.DecodingMethods.Names));
        var (code, stdout, stderr) = RunCli("eval", "study", plan, "--dry-run");
        Assert.That(code, Is.EqualTo(0), stderr);
        Assert.That(stdout, Does.Contain("study safescenes-study: 26 cell(s), baseline vanilla, folder "));
        Assert.That(stdout, Does.Contain("| safescenes-tiny/mssbench/safecode | 2 | 4 | scene_judge (before) | not started |"));
    }

    [Test]
    public void PaperComparisonPlan_NamesEveryMethodAndBenchmark_AndDryRunsEveryCellWithItsDataMissing()
    {
        var repo = new DirectoryInfo(AppContext.BaseDirectory);
        while (repo is not null && !File.Exists(Path.Combine(repo.FullName, "SafeCoDe.Torch.sln"))) repo = repo.Parent;
        Assert.That(repo, Is.Not.Null, "the repository root above the test binaries");
        var plan = Path.Combine(repo!.FullName, "docs", "examples", "paper-comparison.yaml");
        var parsed = StudyPlan.Load(plan);
        Assert.That(parsed.Benchmarks.Select(b => b.Data).Where(Path.Exists), Is.Empty, "the plan's placeholder data paths are not on this machine");
        // jsonl is a user's own prompt file, not a published benchmark
        var published = SafeCoDe.Eval.Benchmarks.EvalBenchmarks.Registered.Where(b => b != "jsonl").ToList();
        Assert.Multiple(() =>
        {
            Assert.That(parsed.Methods.Select(m => m.Mode).Distinct(), Is.EquivalentTo(SafeCoDe.Torch.Decoding.Methods.DecodingMethods.Names));
            Assert.That(parsed.Benchmarks.Select(b => b.Benchmark), Is.EquivalentTo(published));
            Assert.That(parsed.Models, Has.Count.EqualTo(4));
        });
        var (code, stdout, stderr) = RunCli("eval", "study", plan, "--dry-run");
        int cells = parsed.Models.Count * parsed.Methods.Count * parsed.Benchmarks.Count;
        Assert.Multiple(() =>
        {
            Assert.That(code, Is.EqualTo(1), stderr);
            Assert.That(stdout, Does.Contain($"study paper-comparison: {cells} cell(s), baseline vanilla"));
            foreach (var model in parsed.Models)
                foreach (var b in parsed.Benchmarks)
                    foreach (var m in parsed.Methods)
                        Assert.That(stdout, Does.Contain($"| {model.Name}/{b.Name}/{m.Name} | – | – |"));
            Assert.That(stdout.Split('\n').Count(l => l.Contains(" | data not found: /")), Is.EqualTo(cells));
            foreach (var b in parsed.Benchmarks)
                Assert.That(stderr, Does.Contain($"{b.Where}: data not found: {b.Data}"));
        });
    }
}
