using NUnit.Framework;

namespace SafeCoDe.Eval.Tests;

public class SafeScenesCliTests
{
    private static (int code, string stdout, string stderr) Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = SafeCoDe.Cli.Cli.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    [Test]
    public void SafeScenesWritesTheEvaluationAndTrainingFolders()
    {
        string root = Directory.CreateTempSubdirectory("safescenes-cli-").FullName;
        try
        {
            string eval = Path.Combine(root, "eval"), train = Path.Combine(root, "train");
            var (code, stdout, stderr) = Run("safescenes", "--seed", "4", "--out", eval, "--count", "3", "--train", train, "--renders", "1");
            Assert.That(code, Is.EqualTo(0), stderr);
            Assert.That(stdout, Does.Contain("wrote 3 MSSBench chat items"));
            Assert.That(File.Exists(Path.Combine(eval, "combined.json")));
            Assert.That(File.Exists(Path.Combine(eval, "mossbench", "images_information", "information.json")));
            Assert.That(File.Exists(Path.Combine(train, "train.jsonl")));
            Assert.That(Directory.GetFiles(Path.Combine(train, "images")), Is.Not.Empty);
        }
        finally { Directory.Delete(root, true); }
    }

    [Test]
    public void SafeScenesWithoutAnOutputIsAUsageErrorAndTrainNeedsAWorld()
    {
        var (code, _, stderr) = Run("safescenes", "--seed", "1");
        Assert.That(code, Is.Not.EqualTo(0));
        Assert.That(stderr, Does.Contain("--out"));
        var (code2, _, stderr2) = Run("safescenes", "train", "--out", "/tmp/nowhere");
        Assert.That(code2, Is.Not.EqualTo(0));
        Assert.That(stderr2, Does.Contain("--world"));
    }

    [Test]
    public void MeasureJson_UsesSnakeCaseKeys_AsEveryOtherJsonOutput()
    {
        string root = Directory.CreateTempSubdirectory("safescenes-measure-").FullName;
        try
        {
            string eval = Path.Combine(root, "eval");
            Assert.That(Run("safescenes", "--seed", "4", "--out", eval, "--count", "2").code, Is.EqualTo(0));
            var model = Path.Combine(AppContext.BaseDirectory, "weights", "safescenes-tiny");
            var (code, stdout, stderr) = Run("safescenes", "measure", "--model", model, "--data", eval, "--modes", "vanilla");
            Assert.That(code, Is.EqualTo(0), stderr);
            var json = System.Text.Json.Nodes.JsonNode.Parse(stdout[stdout.IndexOf("\n{", StringComparison.Ordinal)..])!.AsObject();
            Assert.That(json.Select(kv => kv.Key), Does.Contain("caption_exact").And.Contain("verdict_held_out").And.Contain("answers"));
            Assert.That(json["caption_exact"]!.AsObject().Select(kv => kv.Key), Is.EquivalentTo(new[] { "hits", "total", "value" }));
            Assert.That(json["answers"]!["vanilla"]!.AsObject().Select(kv => kv.Key), Does.Contain("unsafe_acc").And.Contain("total_acc"));
        }
        finally { Directory.Delete(root, true); }
    }
}
