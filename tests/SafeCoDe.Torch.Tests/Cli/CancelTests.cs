using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using NUnit.Framework;

namespace SafeCoDe.Torch.Tests.Cli;

/// <summary>Ctrl+C (SIGINT) sent to the real <c>safecode</c> executable while it streams an answer.</summary>
[NonParallelizable]
public class CancelTests
{
    private static string Exe => Path.Combine(AppContext.BaseDirectory, "safecode");

    /// <summary>
    /// The shipped model with its end-of-sequence id moved to the image placeholder (a token the engine never
    /// generates) and room for a million positions (65,536 new tokens, the input limit, take minutes): greedy decoding then streams until it is stopped. SIGINT mid-answer
    /// ends the answer's line, writes one "cancelled" line on stderr and exits 130, well within the grace period.
    /// </summary>
    [Test]
    public void CtrlC_DuringAStreamedAnswer_EndsTheLine_SaysCancelled_Exits130()
    {
        var shipped = Path.Combine(TestPaths.Root, "weights", "safescenes-tiny");
        var dir = TestPaths.NewTempDir();
        try
        {
            foreach (var f in Directory.GetFiles(shipped)) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
            void Patch(string file, Action<JsonObject> edit)
            {
                var path = Path.Combine(dir, file);
                var node = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
                edit(node);
                File.WriteAllText(path, node.ToJsonString());
            }
            Patch("config.json", c => { c["text_config"]!["eos_token_id"] = 4; c["text_config"]!["max_position_embeddings"] = 1 << 20; });
            Patch("generation_config.json", c => c["eos_token_id"] = 4);
            Patch("tokenizer_config.json", c => c["eos_token"] = "<image>");

            // env resets SIGINT to its default: a test runner started with SIGINT ignored would pass that on, and .NET keeps an ignored signal ignored
            var psi = new ProcessStartInfo("env") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in new[] { "--default-signal=INT", Exe, "generate", "--model", dir, "--image", Path.Combine(shipped, "example.png"),
                         "--prompt", "How do I cut wood with this saw?", "--mode", "vanilla", "--greedy", "--max-new-tokens", "65536", "--max-total-tokens", "65536" })
                psi.ArgumentList.Add(a);
            using var p = Process.Start(psi)!;
            var err = p.StandardError.ReadToEndAsync(); // its Result waits for the child's exit: read it only after
            var stdout = new StringBuilder();
            var reader = Task.Run(() =>
            {
                var buffer = new char[256];
                for (int n; (n = p.StandardOutput.Read(buffer, 0, buffer.Length)) > 0;)
                    lock (stdout) stdout.Append(buffer, 0, n);
            });
            string Seen() { lock (stdout) return stdout.ToString(); }
            try
            {
                var waited = Stopwatch.StartNew();
                while (!(Seen() is var s && s.Contains("answer    ") && s.Length > 200))
                {
                    if (p.HasExited) Assert.Fail($"the answer ended by itself: {Seen()} {err.Result}");
                    Assert.That(waited.Elapsed, Is.LessThan(TimeSpan.FromSeconds(90)), $"no streamed answer: {Seen()}");
                    Thread.Sleep(50);
                }
                using (var kill = Process.Start("kill", ["-INT", p.Id.ToString()])) kill.WaitForExit();
                var sent = Stopwatch.StartNew();
                Assert.That(p.WaitForExit(20_000), Is.True, $"still running after SIGINT: {Seen()}");
                Assert.That(reader.Wait(5_000), Is.True);
                Assert.That(p.ExitCode, Is.EqualTo(130), err.Result);
                Assert.That(sent.Elapsed, Is.LessThan(TimeSpan.FromSeconds(3)), "stopped by itself at the next step, not by the grace period's forced exit");
            }
            finally { if (!p.HasExited) p.Kill(); }
            var text = Seen();
            Assert.That(text, Does.EndWith("\n"), "the streamed answer ends with its newline");
            Assert.That(text, Does.Not.Contain("tokens    "), "cancelled before the summary");
            var lines = err.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.That(lines[^1], Is.EqualTo("safecode generate: cancelled (Ctrl+C)"));
            Assert.That(lines.Count(l => l.Contains("cancelled")), Is.EqualTo(1));
        }
        finally { Directory.Delete(dir, true); }
    }
}
