using NUnit.Framework;

namespace SafeCoDe.Torch.Tests.Cli;

/// <summary>Issue 32: what a new user hits on the documented paths (help texts, messages, exit codes), run in-process.</summary>
public class NewUserTests
{
    private static (int code, string stdout, string stderr) Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = SafeCoDe.Cli.Cli.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    private static string Shipped => Path.Combine(TestPaths.Root, "weights", "safescenes-tiny");

    /// <summary>
    /// The paper preset only boosts refusal tokens on an unsafe verdict: on the shipped model at λ_boost 1 it complies
    /// (as the README's example shows), at 1000 it refuses; --help says what each preset does so "paper" is not read as safer.
    /// </summary>
    [Test]
    public void PaperPreset_IsWeakAtTheDefaultBoost_AndHelpSaysSo()
    {
        string[] example = ["generate", "--model", Shipped, "--image", Path.Combine(Shipped, "example.png"), "--prompt", "How do I cut wood with this saw?", "--seed", "1", "--json"];
        var (code, o, e) = Run([.. example, "--preset", "paper"]);
        Assert.That(code, Is.EqualTo(0), e);
        var paper = System.Text.Json.Nodes.JsonNode.Parse(o)!;
        Assert.That(paper["verdict"]!.GetValue<string>(), Is.EqualTo("unsafe"));
        Assert.That(paper["answer"]!.GetValue<string>(), Does.StartWith("Sure"), "the ×2 boost does not turn this answer into a refusal");
        (code, o, e) = Run([.. example, "--preset", "paper", "--lambda-boost", "1000"]);
        Assert.That(code, Is.EqualTo(0), e);
        Assert.That(System.Text.Json.Nodes.JsonNode.Parse(o)!["answer"]!.GetValue<string>(), Does.StartWith("Sorry"));

        var (_, help, _) = Run("generate", "--help");
        Assert.That(help, Does.Contain("an unsafe verdict forces the best-ranked refusal phrase"));
        Assert.That(help, Does.Contain("nothing forced — weak at the default λ_boost 1").And.Contain("docs/method.md"));
        var method = File.ReadAllText(Path.Combine(SafeCoDe.Torch.Tests.Serve.ServeTestServer.RepoRoot(), "docs", "method.md"));
        Assert.That(method, Does.Contain("| `paper` (λ_boost 1, the default) | 0 / 60 |").And.Contain("safecode safescenes --seed 7 --out /tmp/w7 --count 60"));
    }

    /// <summary>
    /// bench's concurrent part runs on the shipped model wherever safecode is started (its default is an absolute path
    /// in the tool's own files), a --model that cannot be used is refused before anything runs, and a skipped part has
    /// its reason (concurrent8_skipped in --json).
    /// </summary>
    [Test]
    public void Bench_DefaultModelIsTheShippedOne_AndASkippedPartSaysWhy()
    {
        var root = SafeCoDe.Cli.Cli.BuildRoot();
        var bench = root.Subcommands.Single(c => c.Name == "bench");
        var model = bench.Options.OfType<System.CommandLine.Option<string>>().Single(o => o.Name == "--model");
        var value = root.Parse(["bench"]).GetValue(model)!;
        Assert.That(Path.IsPathRooted(value), Is.True, value);
        Assert.That(value, Is.EqualTo(SafeCoDe.Cli.ShippedModel.Dir));
        Assert.That(File.Exists(Path.Combine(value, "config.json")), Is.True, "the build copies the shipped model next to safecode.dll");
        Assert.That(SafeCoDe.Cli.BenchDecode.SkipReason(value), Is.Null);

        var dir = TestPaths.NewTempDir();
        try
        {
            Assert.That(SafeCoDe.Cli.BenchDecode.SkipReason(dir), Is.EqualTo("the folder holds no config.json"));
            Assert.That(SafeCoDe.Cli.BenchDecode.SkipReason(Path.Combine(dir, "nope")), Is.EqualTo("no such folder"));
            var (code, o, e) = Run("bench", "--model", Path.Combine(dir, "nope"), "--json");
            Assert.That(code, Is.EqualTo(2), o + e);
            Assert.That(e, Does.Contain("--model").And.Contain("no such folder"));
            Assert.That(o, Is.Empty, "refused before any part ran");
        }
        finally { Directory.Delete(dir, true); }
    }

    /// <summary>A judge option with a method that uses no judge is a warning in generate, eval run and serve (unless serve's clients may pick a method with a judge).</summary>
    [Test]
    public void JudgeWithoutEffect_WarnsInGenerateEvalRunAndServe()
    {
        var dir = TestPaths.NewTempDir();
        try
        {
            const string warning = "warning — --judge has no effect with --mode vcd (it uses no judge)";
            var (code, _, e) = Run("generate", "--mode", "vcd", "--judge", "openai", "--image", Path.Combine(dir, "none.png"), "--prompt", "hi");
            Assert.That(code, Is.EqualTo(2), e);
            Assert.That(e, Does.Contain("safecode generate: " + warning));
            (code, _, e) = Run("eval", "run", "--benchmark", "jsonl", "--data", Path.Combine(dir, "none.jsonl"), "--out", Path.Combine(dir, "run"), "--mode", "vcd", "--judge", "openai");
            Assert.That(code, Is.Not.EqualTo(0), e);
            Assert.That(e, Does.Contain("safecode eval run: " + warning));
            (code, _, e) = Run("serve", "--mode", "vcd", "--judge", "openai", "--port", "70000");
            Assert.That(code, Is.EqualTo(2), e);
            Assert.That(e, Does.Contain("safecode serve: " + warning));
            (code, _, e) = Run("serve", "--mode", "vcd", "--judge", "openai", "--client-overrides", "all", "--port", "70000");
            Assert.That(code, Is.EqualTo(2), e);
            Assert.That(e, Does.Not.Contain("warning"), "a client may choose safecode, which asks this judge");
        }
        finally { Directory.Delete(dir, true); }
    }

    private static IEnumerable<System.CommandLine.Command> AllCommands(System.CommandLine.Command c) =>
        c.Subcommands.SelectMany(AllCommands).Prepend(c);

    /// <summary>No --help line names a default twice (a description's own "[default: …]" beside the parser's).</summary>
    [Test]
    public void EveryHelp_NamesEachDefaultOnce()
    {
        var doubled = new System.Text.RegularExpressions.Regex(@"\[default: [^\]]*\]\s*\[default: ");
        var bad = new List<string>();
        foreach (var c in AllCommands(SafeCoDe.Cli.Cli.BuildRoot()).Skip(1))
        {
            var path = SafeCoDe.Cli.CliErrors.CommandPath(c);
            var (code, help, e) = Run([.. path.Split(' '), "--help"]);
            Assert.That(code, Is.EqualTo(0), path + ": " + e);
            // help wraps long descriptions: join each option's lines before looking
            var text = System.Text.RegularExpressions.Regex.Replace(help, @"\s*\n\s+", " ");
            bad.AddRange(doubled.Matches(text).Select(m => $"{path}: {m.Value}…"));
        }
        Assert.That(bad, Is.Empty);
    }

    /// <summary>Paths are checked when the line is parsed, with what is wrong: a file given as a model folder, a folder given as an image.</summary>
    [Test]
    public void ModelAndImagePaths_SayWhatTheyAre()
    {
        var image = Path.Combine(Shipped, "example.png");
        var (code, _, e) = Run("generate", "--model", image, "--image", image, "--prompt", "hi");
        Assert.That(code, Is.EqualTo(2), e);
        Assert.That(e, Does.Contain($"--model {image}: is a file, not a model folder"));
        (code, _, e) = Run("inspect", "--model", image);
        Assert.That(code, Is.EqualTo(2), e);
        Assert.That(e, Does.Contain("is a file, not a model folder"));
        (code, _, e) = Run("generate", "--model", Path.Combine(Shipped, "nope"), "--prompt", "hi");
        Assert.That(code, Is.EqualTo(2), e);
        Assert.That(e, Does.Contain("nope: folder not found"));
        (code, _, e) = Run("generate", "--model", Shipped, "--image", Shipped, "--prompt", "hi");
        Assert.That(code, Is.EqualTo(2), e);
        Assert.That(e, Does.Contain($"--image {Shipped}: is a folder, not an image file"));
    }

    /// <summary>safescenes without an output is usage (exit 2), as any other missing option.</summary>
    [Test]
    public void SafeScenesWithoutArguments_IsUsage()
    {
        var (code, _, e) = Run("safescenes");
        Assert.That(code, Is.EqualTo(2), e);
        Assert.That(e, Does.Contain("give --out DIR").And.Contain("--help"));
    }

    /// <summary>
    /// One spelling per option: each key of generate --json's options block is a generate flag (snake_case ↔
    /// kebab-case, the JSON style of every output), values of choices are spelled as on the command line
    /// (force-phrase, safecode), and replaying the block with --options gives the same block.
    /// </summary>
    [Test]
    public void GenerateJsonOptions_AreTheFlags_SpelledOnce()
    {
        var (code, o, e) = Run("generate", "--image", Path.Combine(Shipped, "example.png"), "--prompt", "How do I cut wood with this saw?", "--seed", "3", "--json");
        Assert.That(code, Is.EqualTo(0), e);
        var options = System.Text.Json.Nodes.JsonNode.Parse(o)!["options"]!.AsObject();
        var generate = SafeCoDe.Cli.Cli.BuildRoot().Subcommands.Single(c => c.Name == "generate");
        var flags = generate.Options.Select(x => x.Name).ToHashSet();
        Assert.That(options.Select(kv => kv.Key).Where(k => !flags.Contains("--" + k.Replace('_', '-'))), Is.Empty, "keys without a flag of the same name");
        Assert.That(options.Select(kv => kv.Key), Has.All.Matches<string>(k => k == k.ToLowerInvariant() && !k.Contains('-')), "snake_case keys");
        Assert.That(options["mode"]!.GetValue<string>(), Is.EqualTo("safecode"));
        Assert.That(options["unsafe_strategy"]!.GetValue<string>(), Is.EqualTo("force-phrase"));
        Assert.That(options.ContainsKey("refusal_top_k") && options.ContainsKey("top_k"), Is.True, "the refusal ranking's top-k and the sampling top-k are two names");

        var file = Path.Combine(TestPaths.NewTempDir(), "run.json");
        File.WriteAllText(file, o);
        (code, var replay, e) = Run("generate", "--image", Path.Combine(Shipped, "example.png"), "--prompt", "How do I cut wood with this saw?", "--options", file, "--json");
        Assert.That(code, Is.EqualTo(0), e);
        Assert.That(System.Text.Json.Nodes.JsonNode.DeepEquals(System.Text.Json.Nodes.JsonNode.Parse(replay)!["options"], options), Is.True);
        Directory.Delete(Path.GetDirectoryName(file)!, true);
    }
}
