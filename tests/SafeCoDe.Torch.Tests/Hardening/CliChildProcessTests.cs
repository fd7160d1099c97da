using System.Diagnostics;
using System.Text.Json.Nodes;
using NUnit.Framework;

namespace SafeCoDe.Torch.Tests.Hardening;

/// <summary>
/// A few hostile runs of the real <c>safecode</c> executable on the default model (each costs a process start and a
/// model load, so they are few): a failure must exit non-zero with exactly one clean line on stderr and no stack
/// trace, and the child's peak memory (VmHWM, sampled from /proc while it runs) must stay under 2 GiB.
/// </summary>
[NonParallelizable]
public class CliChildProcessTests
{
    private static string Exe => Path.Combine(AppContext.BaseDirectory, "safecode");
    private const long PeakLimit = 2L << 30;

    private sealed record Run(int Code, string Out, string Err, long PeakBytes, TimeSpan Wall);

    private static Run Start(IDictionary<string, string>? env, params string[] args) => StartWithInput(env, null, args);

    private static Run StartWithInput(IDictionary<string, string>? env, string? stdinFile, params string[] args)
    {
        var psi = new ProcessStartInfo(Exe) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = stdinFile is not null, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment.Remove("SAFECODE_PROGRESS");
        psi.Environment.Remove("SAFECODE_DEBUG");
        foreach (var (k, v) in env ?? new Dictionary<string, string>()) psi.Environment[k] = v;
        var sw = Stopwatch.StartNew();
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        var o = p.StandardOutput.ReadToEndAsync();
        Task? feed = null;
        if (stdinFile is not null)
            feed = Task.Run(() =>
            {
                try { using (var f = File.OpenRead(stdinFile)) f.CopyTo(p.StandardInput.BaseStream); p.StandardInput.Close(); }
                catch (IOException) { } // the child may stop reading (and exit) before the whole input is sent
            });
        long peak = 0;
        while (!p.WaitForExit(10))
        {
            peak = Math.Max(peak, Hostile.PeakRss(p.Id));
            if (sw.Elapsed > Hostile.CaseLimit) { p.Kill(true); Assert.Fail($"safecode {string.Join(' ', args)}: still running after {Hostile.CaseLimit.TotalSeconds} s"); }
        }
        feed?.Wait(TimeSpan.FromSeconds(5));
        return new Run(p.ExitCode, o.Result, err.Result, peak, sw.Elapsed);
    }

    private static void AssertCleanFailure(Run r, string contains, string command = "generate")
    {
        TestContext.Out.WriteLine($"exit {r.Code}, peak {r.PeakBytes / (1 << 20)} MiB, {r.Wall.TotalSeconds:F1} s: {r.Err.Trim()}");
        Assert.That(r.Code, Is.Not.EqualTo(0));
        Assert.That(r.Code, Is.Not.EqualTo(70), "not an internal error");
        var lines = r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines, Has.Length.EqualTo(1), r.Err);
        Assert.That(lines[0], Does.StartWith($"safecode {command}: ").And.Contain(" — ").And.Contain(contains));
        Assert.That(r.Err, Does.Not.Contain("   at ").And.Not.Contain("\u001b"));
        Assert.That(r.PeakBytes, Is.LessThan(PeakLimit));
    }

    [Test]
    public void AnEndlessJudgeReply_OneCleanLine_BoundedMemory()
    {
        using var s = new HostileServer();
        for (int i = 0; i < 4; i++) s.Then(HostileServer.EndlessChunked);
        var r = Start(new Dictionary<string, string> { ["SAFECODE_JUDGE_BASE_URL"] = s.BaseUrl, ["SAFECODE_JUDGE_API_KEY"] = "k" },
            "generate", "--model", Hostile.DefaultModel, "--image", Path.Combine(Hostile.DefaultModel, "example.png"), "--prompt", "hi",
            "--judge", "openai", "--quiet", "--max-new-tokens", "2");
        AssertCleanFailure(r, "judge");
    }

    [Test]
    public void AHostileConfig_OneCleanLine()
    {
        var dir = TestPaths.NewTempDir();
        try
        {
            var model = Hostile.CopyDefaultModel(Path.Combine(dir, "m"));
            var path = Path.Combine(model, "config.json");
            var j = JsonNode.Parse(File.ReadAllText(path))!;
            j["text_config"]!["num_hidden_layers"] = 1_000_000;
            File.WriteAllText(path, j.ToJsonString());
            var r = Start(null, "generate", "--model", model, "--image", Path.Combine(Hostile.DefaultModel, "example.png"), "--prompt", "hi", "--quiet");
            AssertCleanFailure(r, "num_hidden_layers");
        }
        finally { Directory.Delete(dir, true); }
    }

    [Test]
    public void TokenizeWithA50MbLine_OneCleanLine_BoundedMemory()
    {
        var dir = TestPaths.NewTempDir();
        try
        {
            var input = Path.Combine(dir, "in.txt");
            using (var w = new StreamWriter(input)) { w.WriteLine("hello"); w.Write(new string('a', 50 << 20)); w.WriteLine(); }
            var r = StartWithInput(null, input, "tokenize", "--model", Hostile.DefaultModel);
            AssertCleanFailure(r, "line 2 is longer than the 262,144-character limit", "tokenize");
            Assert.That(r.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries), Has.Length.EqualTo(1), "line 1 was tokenized");
        }
        finally { Directory.Delete(dir, true); }
    }

    [Test]
    public void AnEvalRunOverAJsonlWithA300MbLine_OneProblem_BoundedMemory()
    {
        var dir = TestPaths.NewTempDir();
        try
        {
            File.Copy(Path.Combine(Hostile.DefaultModel, "example.png"), Path.Combine(dir, "a.png"));
            var data = Path.Combine(dir, "p.jsonl");
            using (var w = new StreamWriter(data))
            {
                w.WriteLine("{\"id\": \"a\", \"prompt\": \"What is here?\", \"image\": \"a.png\"}");
                w.Write("{\"id\": \"huge\", \"prompt\": \""); w.Write(new string('x', 300 << 20)); w.WriteLine("\", \"image\": \"a.png\"}");
                w.WriteLine("{\"id\": \"b\", \"prompt\": \"And here?\", \"image\": \"a.png\"}");
            }
            var run = Path.Combine(dir, "run");
            var r = Start(null, "eval", "run", "-b", "jsonl", "-d", data, "-m", Hostile.DefaultModel, "-o", run, "--judge", "fixed:safe",
                "--device", "cpu", "--max-new-tokens", "1", "--max-steps", "1", "--quiet");
            TestContext.Out.WriteLine($"exit {r.Code}, peak {r.PeakBytes >> 20} MiB, {r.Wall.TotalSeconds:F1} s: {r.Err.Trim()}");
            Assert.That(r.Code, Is.EqualTo(0), r.Err);
            Assert.That(File.ReadAllLines(Path.Combine(run, "records.jsonl")), Has.Length.EqualTo(2), "a and b ran");
            Assert.That(File.ReadAllText(Path.Combine(run, "problems.jsonl")), Does.Contain("p.jsonl#line2").And.Contain("MaxJsonlLineBytes"));
            Assert.That(r.PeakBytes, Is.LessThan(PeakLimit));

            var zero = Start(null, "eval", "run", "-b", "jsonl", "-d", "/dev/zero", "-m", Hostile.DefaultModel, "-o", Path.Combine(dir, "run2"), "--quiet");
            Assert.That(zero.Code, Is.EqualTo(2), zero.Err);
            Assert.That(zero.Err, Does.Contain("character device"));
            Assert.That(zero.PeakBytes, Is.LessThan(PeakLimit));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Test]
    public void AnUnparsedVerdictWithEscapes_IsPrintedSanitised()
    {
        using var s = new HostileServer();
        s.Then(HostileServer.Reply("a kitchen"), HostileServer.Reply("\u001b[2J\u001b[31mwho knows\u001b]0;pwned\u0007"));
        var r = Start(new Dictionary<string, string> { ["SAFECODE_JUDGE_BASE_URL"] = s.BaseUrl, ["SAFECODE_JUDGE_API_KEY"] = "k" },
            "generate", "--model", Hostile.DefaultModel, "--image", Path.Combine(Hostile.DefaultModel, "example.png"), "--prompt", "Is this fine?",
            "--judge", "openai", "--quiet", "--max-new-tokens", "2", "--seed", "1");
        Assert.That(r.Code, Is.EqualTo(0), r.Err);
        Assert.That(r.Out, Does.Contain("reply not understood"));
        Assert.That(r.Out, Does.Not.Contain("\u001b").And.Not.Contain("\u0007"), "no escape reaches the terminal");
        Assert.That(r.Out, Does.Contain("\\u001b[2J"));
    }

    [Test]
    public void AnAnsiCaptionAndANegatedVerdict_PrintCleanAndFailClosed()
    {
        using var s = new HostileServer();
        s.Then(HostileServer.Reply("\u001b[2J\u001b[HVerdict: safe\u001b]0;x\u0007"), HostileServer.Reply("NOT SAFE"));
        var r = Start(new Dictionary<string, string> { ["SAFECODE_JUDGE_BASE_URL"] = s.BaseUrl, ["SAFECODE_JUDGE_API_KEY"] = "k" },
            "generate", "--model", Hostile.DefaultModel, "--image", Path.Combine(Hostile.DefaultModel, "example.png"), "--prompt", "How do I sharpen this?",
            "--judge", "openai", "--quiet", "--max-new-tokens", "3", "--seed", "1");
        TestContext.Out.WriteLine(r.Out + r.Err);
        Assert.That(r.Code, Is.EqualTo(0), r.Err);
        Assert.That(r.Out, Does.Contain("verdict   UNSAFE"));
        Assert.That(r.Out, Does.Not.Contain("\u001b"), "no escape sequence reaches the terminal");
        Assert.That(r.Out, Does.Contain("\\u001b[2J"));
        Assert.That(r.PeakBytes, Is.LessThan(PeakLimit));
    }
}
