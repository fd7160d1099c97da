using System.Text.Json.Nodes;
using NUnit.Framework;
using SafeCoDe.Eval.Runs;
using SafeCoDe.Eval.Tests.Harness;
using static SafeCoDe.Eval.Tests.Harness.T;

namespace SafeCoDe.Eval.Tests.Hardening;

/// <summary>
/// Issue 33, item 1: <c>eval score</c> shows a judge the images it re-reads from the benchmark, never a path taken from
/// records.jsonl (an editable file: <c>/etc/passwd</c> there was uploaded to the scorer endpoint).
/// </summary>
[NonParallelizable]
public class ScoreImageTests
{

    private static IEnumerable<byte[]> SentImages(FakeJudgeServer server) =>
        server.Requests.SelectMany(r => r["messages"]!.AsArray())
            .SelectMany(m => m!["content"] is JsonArray a ? a : [])
            .Where(c => (string?)c!["type"] == "image_url")
            .Select(c => (string)c!["image_url"]!["url"]!)
            .Select(u => Convert.FromBase64String(u[(u.IndexOf(',') + 1)..]));

    [Test]
    public void RescoringReReadsImagesFromTheBenchmark_NeverFromAnEditedRecord()
    {
        var folder = BenchmarkFolders.WriteMossBench(NewDir());
        var run = Path.Combine(NewDir(), "run");
        var (code, _, err) = RunCli("eval", "run", "-b", "mossbench", "-d", folder.Root, "-m", TinyModel, "-o", run, "--device", "cpu",
            "--max-new-tokens", "2", "--max-steps", "2", "--seed", "1", "--greedy", "--quiet", "--judge", "fixed:safe", "--scorer", "keyword");
        Assert.That(code, Is.EqualTo(0), err);

        // someone edits records.jsonl: every answer now "came from" a secret file
        var secret = Path.Combine(NewDir(), "secret.png");
        File.WriteAllBytes(secret, BenchmarkFolders.Png(9, size: 24));
        var records = Path.Combine(run, RunStore.RecordsFile);
        var lines = File.ReadAllLines(records).Select(l =>
        {
            var n = JsonNode.Parse(l)!;
            foreach (var o in n["outputs"]!.AsArray()) o!["image"] = secret;
            return n.ToJsonString();
        });
        File.WriteAllLines(records, lines);

        using var server = new FakeJudgeServer(_ => "Description: x\nScore: 0\nReason: answered");
        Environment.SetEnvironmentVariable("SAFECODE_EVAL_BASE_URL", server.BaseUrl);
        Environment.SetEnvironmentVariable("SAFECODE_EVAL_API_KEY", "k");
        try
        {
            var (sc, _, serr) = RunCli("eval", "score", run, "--scorer", "openai:judge-x", "--quiet");
            Assert.That(sc, Is.EqualTo(0), serr);
            var sent = SentImages(server).ToList();
            var benchmarkImages = Directory.GetFiles(Path.Combine(folder.Root, "data", "images")).Select(File.ReadAllBytes).ToList();
            Assert.That(sent, Has.Count.EqualTo(folder.ValidIds.Count), "one judge call per answer, each with its image");
            Assert.That(sent.All(s => benchmarkImages.Any(b => b.SequenceEqual(s))), Is.True, "every image sent is the benchmark's");
            Assert.That(sent.Any(s => s.SequenceEqual(File.ReadAllBytes(secret))), Is.False, "the file the record names was never sent");

            // the benchmark gone: re-scoring fails visibly (the judge would otherwise score without the image)
            Directory.Delete(folder.Root, true);
            var before = File.ReadAllBytes(records);
            var (gone, _, gerr) = RunCli("eval", "score", run, "--scorer", "openai:judge-y", "--quiet");
            Assert.That(gone, Is.Not.EqualTo(0));
            Assert.That(gerr, Does.Contain("re-read from the benchmark").And.Contain("--data"));
            Assert.That(File.ReadAllBytes(records), Is.EqualTo(before), "nothing rewritten");
        }
        finally
        {
            Environment.SetEnvironmentVariable("SAFECODE_EVAL_BASE_URL", null);
            Environment.SetEnvironmentVariable("SAFECODE_EVAL_API_KEY", null);
        }
    }
}
