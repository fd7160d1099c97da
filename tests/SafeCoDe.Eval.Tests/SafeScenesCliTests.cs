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
        Assert.That(code, Is.EqualTo(2), "usage");
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

    /// <summary>
    /// select refuses a non-empty --out folder before measuring anything (its files stay), and with --force copies the
    /// chosen snapshot even when it misses targets, saying so on stderr and exiting 1.
    /// </summary>
    [Test]
    public void Select_RefusesANonEmptyOut_AndExitsOneWhenTargetsAreMissed()
    {
        string root = Directory.CreateTempSubdirectory("safescenes-select-").FullName;
        try
        {
            var shipped = Path.Combine(AppContext.BaseDirectory, "weights", "safescenes-tiny");
            string snaps = Path.Combine(root, "keep"), val = Path.Combine(root, "val"), dst = Path.Combine(root, "dst");
            // random weights: no caption or verdict target can be met
            Assert.That(Run("make-random", "--config", Path.Combine(shipped, "config.json"), "--tokenizer", shipped, "--out", Path.Combine(snaps, "step-00001"), "--quiet").code, Is.EqualTo(0));
            Assert.That(Run("safescenes", "--seed", "3", "--out", val, "--count", "2").code, Is.EqualTo(0));
            Directory.CreateDirectory(dst);
            File.WriteAllText(Path.Combine(dst, "config.json"), "mine");

            var (code, stdout, stderr) = Run("safescenes", "select", "--snapshots", snaps, "--data", val, "--top", "1", "--out", dst);
            Assert.That(code, Is.EqualTo(2), stderr);
            Assert.That(stderr, Does.Contain("not empty").And.Contain("--force"));
            Assert.That(stdout, Does.Not.Contain("step "), "refused before any snapshot was measured");
            Assert.That(File.ReadAllText(Path.Combine(dst, "config.json")), Is.EqualTo("mine"));

            (code, stdout, stderr) = Run("safescenes", "select", "--snapshots", snaps, "--data", val, "--top", "1", "--out", dst, "--force");
            Assert.That(code, Is.EqualTo(1), stdout + stderr);
            Assert.That(stdout, Does.Contain("NOT MET").And.Contain("although it misses a target"));
            Assert.That(stderr, Does.Contain("not all targets met"));
            Assert.That(File.ReadAllText(Path.Combine(dst, "config.json")), Is.Not.EqualTo("mine"), "--force copied the snapshot");
            Assert.That(File.Exists(Path.Combine(dst, "model.safetensors")));
        }
        finally { Directory.Delete(root, true); }
    }
}
