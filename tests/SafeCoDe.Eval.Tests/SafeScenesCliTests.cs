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
}
