using System.Text.Json.Nodes;
using NUnit.Framework;
using SafeCoDe.Torch.Decoding;
using SafeCoDe.Torch.Processing.Tokenizers;

namespace SafeCoDe.Torch.Tests.EndToEnd;

/// <summary><c>safecode generate</c> in-process on the shipped default weights/llava-next-tiny, and its errors.</summary>
public sealed class GenerateCliTests
{
    private static string Default => Path.Combine(TestPaths.Root, "weights", "llava-next-tiny");
    private static string Example => Path.Combine(Default, "example.png");

    private static (int code, string stdout, string stderr) Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = SafeCoDe.Cli.Cli.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    [Test]
    public void Json_IsOneObjectWithTheAcceptanceFields()
    {
        var (code, o, e) = Run("generate", "--model", Default, "--image", Example, "--prompt", "What is in the picture?", "--json",
            "--device", "cpu", "--max-new-tokens", "8", "--seed", "21");
        Assert.That(code, Is.EqualTo(0), e);
        var j = JsonNode.Parse(o)!.AsObject(); // throws unless stdout is exactly one JSON value
        foreach (var key in new[] { "answer", "verdict", "caption", "guided_tokens", "timings", "options", "token_ids", "judge" })
            Assert.That(j.ContainsKey(key), Is.True, $"'{key}' missing from {o}");
        Assert.That(j["verdict"]!.GetValue<string>(), Is.AnyOf("safe", "unsafe"));
        Assert.That(j["judge"]!.GetValue<string>(), Is.EqualTo("self"), "the default judge is the model itself");
        Assert.That(j["family"]!.GetValue<string>(), Is.EqualTo("llava_next"));
        Assert.That(j["timings"]!["total_ms"]!.GetValue<double>(), Is.GreaterThan(0));
        Assert.That(j["timings"]!["judge_ms"]!.GetValue<double>(), Is.GreaterThan(0));
        Assert.That(j["options"]!["seed"]!.GetValue<long>(), Is.EqualTo(21));
        Assert.That(j["options"]!["max_new_tokens"]!.GetValue<int>(), Is.EqualTo(8));
        var ids = j["token_ids"]!.AsArray().Select(x => (int)x!.GetValue<long>()).ToList();
        int guided = j["guided_tokens"]!.GetValue<int>();
        Assert.That(ids.Count, Is.InRange(1, guided + 8));
        var tokenizer = TokenizerLoader.Load(Default);
        Assert.That(j["answer"]!.GetValue<string>(), Is.EqualTo(tokenizer.Decode(ids, skipSpecialTokens: true).Trim()));
        Assert.That(j["guided_text"]!.GetValue<string>(), Is.EqualTo(tokenizer.Decode(ids.Take(guided).ToList(), skipSpecialTokens: true)));
        Assert.That(e, Is.Empty, "--json writes no progress");

        var (code2, o2, _) = Run("generate", "--model", Default, "--image", Example, "--prompt", "What is in the picture?", "--json",
            "--device", "cpu", "--max-new-tokens", "8", "--seed", "21");
        Assert.That(code2, Is.EqualTo(0));
        Assert.That(JsonNode.Parse(o2)!["token_ids"]!.ToJsonString(), Is.EqualTo(j["token_ids"]!.ToJsonString()), "seeded runs reproduce");
    }

    [Test]
    public void Json_ResultReplaysThroughTheOptionsFile()
    {
        var (code, o, e) = Run("generate", "--model", Default, "--image", Example, "--prompt", "What is in the picture?", "--json",
            "--device", "cpu", "--max-new-tokens", "6", "--seed", "5", "--alpha", "0.4", "--early-exit", "false", "--judge", "fixed:safe");
        Assert.That(code, Is.EqualTo(0), e);
        Assert.That(o, Does.Contain("\"mode\": \"safecode\"").And.Contain("\"preset\": \"faithful\""), "enum values as the CLI spells them");
        var dir = TestPaths.NewTempDir();
        try
        {
            var file = Path.Combine(dir, "run.json");
            File.WriteAllText(file, o);
            var (code2, o2, e2) = Run("generate", "--model", Default, "--image", Example, "--prompt", "What is in the picture?", "--json",
                "--device", "cpu", "--judge", "fixed:safe", "--options", file);
            Assert.That(code2, Is.EqualTo(0), e2);
            var a = JsonNode.Parse(o)!;
            var b = JsonNode.Parse(o2)!;
            Assert.That(b["options"]!.ToJsonString(), Is.EqualTo(a["options"]!.ToJsonString()), "the replay ran with the same options");
            Assert.That(b["token_ids"]!.ToJsonString(), Is.EqualTo(a["token_ids"]!.ToJsonString()), "and produced the same tokens");
        }
        finally { Directory.Delete(dir, true); }
    }

    [Test]
    public void Human_ShowsVerdictCaptionAndGuidedSpan()
    {
        var (code, o, e) = Run("generate", "--model", Default, "--image", Example, "--prompt", "How do I sharpen this?",
            "--device", "cpu", "--max-new-tokens", "6", "--seed", "4");
        Assert.That(code, Is.EqualTo(0), e);
        Assert.That(o, Does.Match(@"(?m)^verdict   (safe|UNSAFE)  \(judge self, \d+ ms"));
        Assert.That(o, Does.Match(@"(?m)^caption   \S"), "the self judge's caption");
        Assert.That(o, Does.Match(@"(?m)^answer    "));
        Assert.That(o, Does.Match(@"(?m)^guided    \d+ token\(s\): "".*"""));
        Assert.That(o, Does.Match(@"(?m)^timings   judge \d+ ms"));
        Assert.That(e, Does.Contain("loading llava_next"));

        (code, o, e) = Run("generate", "--model", Default, "--image", Example, "--prompt", "How do I sharpen this?",
            "--device", "cpu", "--max-new-tokens", "4", "--judge", "fixed:unsafe", "--greedy");
        Assert.That(code, Is.EqualTo(0), e);
        Assert.That(o, Does.Contain("verdict   UNSAFE  (judge fixed:unsafe"));
        Assert.That(o, Does.Match(@"(?m)^guided    \d+ token\(s\): "".*"" \(forced from "".+""\)"));
        Assert.That(o, Does.Not.Contain("caption"), "a fixed judge has no caption");
    }

    [Test]
    public void VanillaMode_HasNoVerdict()
    {
        var (code, o, e) = Run("generate", "--model", Default, "--image", Example, "--prompt", "Describe it.", "--json",
            "--device", "cpu", "--mode", "vanilla", "--max-new-tokens", "5", "--greedy");
        Assert.That(code, Is.EqualTo(0), e);
        var j = JsonNode.Parse(o)!;
        Assert.That(j["verdict"], Is.Null);
        Assert.That(j["guided_tokens"]!.GetValue<int>(), Is.Zero);
        Assert.That(j["token_ids"]!.AsArray().Count, Is.InRange(1, 5));
    }

    [Test]
    public void MissingImage_NamesTheFile()
    {
        var missing = Path.Combine(TestPaths.Root, "no-such-scene.png");
        var (code, o, e) = Run("generate", "--model", Default, "--image", missing, "--prompt", "Hi");
        Assert.That(code, Is.Not.EqualTo(0));
        Assert.That(e, Does.Contain(missing).And.Contain("not found"));
        Assert.That(o, Is.Empty);
    }

    [Test]
    public void UndecodableImage_NamesTheFileAndTheReason()
    {
        var dir = TestPaths.NewTempDir();
        try
        {
            var bad = Path.Combine(dir, "noise.png");
            var bytes = new byte[4096];
            new Random(5).NextBytes(bytes);
            File.WriteAllBytes(bad, bytes);
            var (code, o, e) = Run("generate", "--model", Default, "--image", bad, "--prompt", "Hi", "--device", "cpu", "--json");
            Assert.That(code, Is.EqualTo(1), e);
            Assert.That(e, Does.Contain(bad).And.Contain("cannot decode image"));
            Assert.That(o, Is.Empty);

            var truncated = Path.Combine(dir, "truncated.png");
            File.WriteAllBytes(truncated, File.ReadAllBytes(Example)[..100]);
            (code, _, e) = Run("generate", "--model", Default, "--image", truncated, "--prompt", "Hi", "--device", "cpu", "--json");
            Assert.That(code, Is.EqualTo(1), e);
            Assert.That(e, Does.Contain(truncated).And.Contain("cannot decode image"));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Test]
    public void UnsupportedArchitecture_NamesTheModelType()
    {
        var dir = TestPaths.NewTempDir();
        try
        {
            foreach (var f in Directory.GetFiles(Default)) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
            var config = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))!;
            config["model_type"] = "gpt9";
            config["architectures"] = new JsonArray("Gpt9ForConditionalGeneration");
            File.WriteAllText(Path.Combine(dir, "config.json"), config.ToJsonString());
            var (code, o, e) = Run("generate", "--model", dir, "--image", Example, "--prompt", "Hi", "--device", "cpu");
            Assert.That(code, Is.EqualTo(1), e);
            Assert.That(e, Does.Contain("gpt9").And.Contain("unsupported model_type").And.Contain("llava_next"));
            Assert.That(o, Does.Not.Contain("answer"));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Test]
    public void BadOption_IsAUsageError()
    {
        var (code, _, e) = Run("generate", "--model", Default, "--image", Example, "--prompt", "Hi", "--mode", "beam");
        Assert.That(code, Is.EqualTo(2));
        Assert.That(e, Does.Contain("--mode 'beam'"));
        (code, _, e) = Run("generate", "--model", Default, "--image", Example, "--prompt", "Hi", "--alpha", "-1", "--device", "cpu");
        Assert.That(code, Is.Not.EqualTo(0));
        Assert.That(e, Does.Contain("alpha"));
    }
}
