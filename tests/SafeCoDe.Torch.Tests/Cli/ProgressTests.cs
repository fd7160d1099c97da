using System.Diagnostics;
using NUnit.Framework;
using SafeCoDe.Cli;

namespace SafeCoDe.Torch.Tests.Cli;

/// <summary>
/// Progress output of the real <c>safecode</c> executable: a live display on a pseudo-terminal (util-linux
/// <c>script</c>), plain lines when stderr is redirected, nothing with <c>--quiet</c>.
/// </summary>
[NonParallelizable]
public class ProgressTests
{
    private static string Exe => Path.Combine(AppContext.BaseDirectory, "safecode");
    private static string Config => Path.Combine(TestPaths.Root, "weights", "llava-next-tiny", "config.json");

    private static (int code, string stdout, string stderr) Start(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment.Remove("SAFECODE_PROGRESS");
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        var o = p.StandardOutput.ReadToEnd();
        Assert.That(p.WaitForExit(120_000), Is.True, "timed out");
        return (p.ExitCode, o, err.Result);
    }

    private static string Quote(string s) => "'" + s.Replace("'", "'\\''") + "'";

    [Test]
    public void MakeRandom_LiveOnATerminal_PlainWhenRedirected_NoneWhenQuiet()
    {
        var dir = TestPaths.NewTempDir();
        try
        {
            // a pseudo-terminal: script runs the command with stdin/stdout/stderr on a pty; stdout goes to a file
            var outFile = Path.Combine(dir, "stdout.txt");
            var cmd = $"{Quote(Exe)} make-random --config {Quote(Config)} --out {Quote(Path.Combine(dir, "a"))} > {Quote(outFile)}";
            var (code, tty, _) = Start("script", "-qec", cmd, "/dev/null");
            Assert.That(code, Is.EqualTo(0), tty);
            Assert.That(tty, Does.Contain("\u001b["), "ANSI control sequences: a live display");
            Assert.That(tty, Does.Contain("drawing random weights"));
            Assert.That(File.ReadAllText(outFile), Does.StartWith("wrote llava_next").And.Not.Contain("\u001b"), "stdout carries only the result");

            var (code2, o2, e2) = Start(Exe, "make-random", "--config", Config, "--out", Path.Combine(dir, "b"));
            Assert.That(code2, Is.EqualTo(0), e2);
            Assert.That(e2, Does.Contain("· drawing random weights (").And.Contain("MB"));
            Assert.That(e2, Does.Not.Contain("\u001b"), "no control sequences in a redirected stream");
            Assert.That(o2, Does.StartWith("wrote llava_next"));

            var (code3, _, e3) = Start(Exe, "make-random", "--config", Config, "--out", Path.Combine(dir, "c"), "--quiet");
            Assert.That(code3, Is.EqualTo(0), e3);
            Assert.That(e3, Is.Empty);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Test]
    public void PlainBars_ReportRateAndEta_AndAreThrottled()
    {
        var err = new StringWriter();
        var saved = CliProgress.Plain.Interval;
        try
        {
            CliProgress.Plain.Interval = TimeSpan.Zero;
            var progress = CliProgress.For(new CliIO(TextWriter.Null, err, TextReader.Null, false), silent: false);
            using (var bar = progress.Start("eval", total: 4, unit: "samples"))
            {
                Thread.Sleep(20);
                bar.Report(1);
                Thread.Sleep(20);
                bar.Report(2);
                bar.Complete("4 samples");
            }
            var lines = err.ToString().Trim().Split('\n');
            Assert.That(lines[0], Is.EqualTo("· eval (4 samples) …"));
            Assert.That(lines[1], Does.Match(@"^· eval: 25% \(1 samples of 4 samples, [\d.]+ samples/s, ETA \d+ s\)$"));
            Assert.That(lines[^1], Does.Match(@"^· eval: 4 samples \(\d+ s\)$"));

            err.GetStringBuilder().Clear();
            CliProgress.Plain.Interval = TimeSpan.FromHours(1);
            using (var bar = progress.Start("load", total: 1e9, unit: "bytes"))
                for (int i = 0; i < 100; i++) bar.Report(i * 1e7);
            Assert.That(err.ToString().Trim().Split('\n'), Has.Length.EqualTo(1), "a throttled bar prints its start line only");

            err.GetStringBuilder().Clear();
            using (var bar = CliProgress.For(new CliIO(TextWriter.Null, err, TextReader.Null, false), silent: true).Start("x", 3))
                bar.Report(2);
            Assert.That(err.ToString(), Is.Empty);
        }
        finally { CliProgress.Plain.Interval = saved; }
    }
}
