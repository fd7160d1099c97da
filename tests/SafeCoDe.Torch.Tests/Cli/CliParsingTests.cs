using SafeCoDe.Torch.Decoding.Methods;
using SafeCoDe.Torch.Decoding.Noise;
using SafeCoDe.Torch.Processing.Chat;
using SafeCoDe.Torch.Decoding.Methods.SafeCoDeDecoding;
using System.CommandLine;
using System.Text.Json.Nodes;
using NUnit.Framework;
using SafeCoDe.Cli;
using SafeCoDe.Torch.Decoding;

namespace SafeCoDe.Torch.Tests.Cli;

/// <summary>The System.CommandLine surface: help per command, version, errors naming options, the options file.</summary>
public class CliParsingTests
{
    private static (int code, string stdout, string stderr) Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = SafeCoDe.Cli.Cli.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    private static string[] CommandNames => SafeCoDe.Cli.Cli.BuildRoot().Subcommands.Select(c => c.Name).ToArray();

    [Test]
    public void EveryCommand_HasItsOwnHelp_WithEveryOptionDescribed()
    {
        var root = SafeCoDe.Cli.Cli.BuildRoot();
        Assert.That(CommandNames, Is.SupersetOf(new[] { "generate", "inspect", "verify", "bench", "make-random", "tokenize", "doctor" }));
        foreach (var cmd in root.Subcommands)
        {
            var (code, o, e) = Run(cmd.Name, "--help");
            Assert.That(code, Is.EqualTo(0), e);
            Assert.That(o, Does.Contain($"safecode {cmd.Name} [options]").Or.Contain($"safecode {cmd.Name} [command] [options]"), cmd.Name); // a group (eval) lists its commands
            Assert.That(o, Does.Not.Contain("environment:"), "a command's help is not the global page");
            foreach (var opt in cmd.Options)
            {
                Assert.That(opt.Description, Is.Not.Null.And.Not.Empty, $"{cmd.Name} {opt.Name} has no description");
                Assert.That(o, Does.Contain(opt.Name), $"{cmd.Name} help lacks {opt.Name}");
            }
        }
        var (_, gen, _) = Run("generate", "--help");
        Assert.That(gen, Does.Contain("--max-new-tokens").And.Contain("--max-total-tokens").And.Contain("AFTER the guided span"));
        Assert.That(gen, Does.Contain("[default: 0.3; vcd: 1]").And.Contain("[default: safecode]"), "defaults are shown");
        Assert.That(gen, Does.Contain("Examples:"));
    }

    [Test]
    public void Version_PrintsTheToolVersion()
    {
        var (code, o, _) = Run("--version");
        Assert.That(code, Is.EqualTo(0));
        Assert.That(o.Trim(), Does.Match(@"^safecode \d+\.\d+\.\d+\S* \(TorchSharp \d+\.\d+\.\d+\)$"));
    }

    [Test]
    public void Completions_ThroughTheSuggestDirective()
    {
        var (code, o, _) = Run("[suggest:3]", "gen");
        Assert.That(code, Is.EqualTo(0));
        Assert.That(o.Trim(), Is.EqualTo("generate"));
        (_, o, _) = Run("[suggest:17]", "generate --mode v");
        Assert.That(o.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries), Is.EqualTo(new[] { "vanilla", "vcd" }));
    }

    [Test]
    public void NoArguments_ShowsHelpAndExits2()
    {
        var (code, o, _) = Run();
        Assert.That(code, Is.EqualTo(2));
        Assert.That(o, Does.Contain("Commands:").And.Contain("generate"));
    }

    [TestCase("--seed", "abc", "--seed 'abc': expected an integer")]
    [TestCase("--alpha", "much", "--alpha 'much': expected a number")]
    [TestCase("--max-new-tokens", "1.5", "--max-new-tokens '1.5': expected an integer")]
    [TestCase("--early-exit", "maybe", "unexpected argument 'maybe'")]
    [TestCase("--mode", "beam", "--mode 'beam': expected safecode, vanilla or vcd")]
    [TestCase("--noise", "salt", "--noise 'salt': expected pixel or vcd")]
    public void BadValues_NameTheOption(string option, string value, string expected)
    {
        var (code, o, e) = Run("generate", "--model", "m", "--prompt", "p", option, value);
        Assert.That(code, Is.EqualTo(ExitCodes.Usage));
        Assert.That(e, Does.StartWith("safecode generate: invalid usage — "));
        Assert.That(e, Does.Contain(expected));
        Assert.That(e, Does.Contain("run 'safecode generate --help'"));
        Assert.That(o, Is.Empty);
    }

    [Test]
    public void Typos_GetSuggestions()
    {
        var (code, _, e) = Run("generat", "--model", "m");
        Assert.That(code, Is.EqualTo(2));
        Assert.That(e, Does.Contain("unknown command 'generat' (did you mean generate?)"));
        (code, _, e) = Run("generate", "--model", "m", "--prompt", "p", "--temprature", "0.5");
        Assert.That(code, Is.EqualTo(2));
        Assert.That(e, Does.Contain("unknown option: --temprature").And.Contain("did you mean --temperature"));
    }

    [Test]
    public void RuntimeErrors_AreOneLine_WithTraceOnlyWhenVerbose()
    {
        var (code, _, e) = Run("inspect", "--model", "/nonexistent/model");
        Assert.That(code, Is.EqualTo(ExitCodes.Failed));
        Assert.That(e.Trim().Split('\n'), Has.Length.EqualTo(1), e);
        Assert.That(e, Does.Match(@"^safecode inspect: [^—\n]+ — .*/nonexistent/model"));
        (code, _, e) = Run("inspect", "--model", "/nonexistent/model", "--verbose");
        Assert.That(code, Is.EqualTo(ExitCodes.Failed));
        Assert.That(e, Does.Contain("   at "), "--verbose adds the stack trace");
    }

    private static DecodingOptions Parse(params string[] args) => Settings(args).Decoding;

    private static GenerationSettings Settings(params string[] args)
    {
        var g = new GenerationOptions();
        var cmd = new Command("t");
        g.AddTo(cmd);
        var p = cmd.Parse(["--model", "m", .. args]);
        Assert.That(p.Errors, Is.Empty, string.Join("; ", p.Errors.Select(x => x.Message)));
        return g.Read(p);
    }

    [Test]
    public void EveryStoredOptionOfEveryMethod_IsReachableFromTheCommandLine()
    {
        var dir = TestPaths.NewTempDir();
        try
        {
            File.WriteAllLines(Path.Combine(dir, "phrases.txt"), ["I cannot", "Sorry"]);
            File.WriteAllLines(Path.Combine(dir, "keywords.txt"), ["cannot"]);
            string[] shared = ["--seed", "9", "--greedy", "--temperature-safe", "0.6", "--top-p-safe", "0.8", "--top-k", "5",
                "--max-new-tokens", "7", "--uniform-max-new-tokens", "100", "--max-total-tokens", "9"];
            var flags = new Dictionary<string, string[]>
            {
                ["safecode"] = [.. shared, "--alpha", "0.7", "--max-steps", "3", "--refusal-top-k", "4",
                    "--lambda-supp", "0.5", "--lambda-boost", "2", "--noise", "vcd", "--noise-std", "0.2", "--vcd-noise-step", "300",
                    "--halve-alpha-on-safe", "false", "--unsafe-strategy", "soft-boost",
                    "--unsafe-needs-two-steps", "false", "--quote-skip", "false", "--early-exit", "false", "--corruption-rollback", "false",
                    "--guided-temperature-safe", "0.5", "--guided-temperature-unsafe", "0.4", "--temperature-unsafe", "0.3", "--top-p-unsafe", "0.7",
                    "--unknown-verdict", "error", "--refusal-phrases", Path.Combine(dir, "phrases.txt"), "--preferred-keywords", Path.Combine(dir, "keywords.txt")],
                ["vcd"] = [.. shared, "--alpha", "0.7", "--noise", "vcd", "--noise-std", "0.2", "--vcd-noise-step", "300", "--vcd-beta", "0.2"],
                ["vanilla"] = shared,
            };
            Assert.That(DecodingMethods.All.Select(m => m.Name), Is.EquivalentTo(flags.Keys), "every built-in method is covered");
            foreach (var (mode, given) in flags)
            {
                var defaults = JsonNode.Parse(CliJson.Write(Parse("--mode", mode)))!.AsObject();
                var changed = JsonNode.Parse(CliJson.Write(Parse(["--mode", mode, .. given])))!.AsObject();
                var method = DecodingMethods.Get(mode);
                Assert.That(defaults.Count, Is.EqualTo(method.Options.Count(o => o.Stored) + 1 + (method.Presets.Count > 0 ? 1 : 0)), $"{mode}: one JSON field per stored option, plus mode and preset");
                foreach (var (key, value) in defaults.Where(kv => kv.Key is not ("preset" or "mode")))
                    Assert.That(JsonNode.DeepEquals(value, changed[key]), Is.False, $"{mode}: no flag changed '{key}'");
                Assert.That(changed["mode"]!.GetValue<string>(), Is.EqualTo(mode));
            }
            Assert.That(((SafeCoDeOptions)Parse("--preset", "paper")).Preset, Is.EqualTo(SafeCoDePreset.Paper));
            Assert.That(JsonNode.Parse(CliJson.Write(Parse(flags["safecode"])))!["unsafe_strategy"]!.GetValue<string>(), Is.EqualTo("soft-boost"));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Test]
    public void AFlagTheMethodDoesNotTake_IsAWarning_NotSilentlyDropped()
    {
        var s = Settings("--mode", "vanilla", "--alpha", "0.5", "--judge", "fixed:unsafe");
        Assert.That(s.Decoding.Method, Is.EqualTo("vanilla"));
        Assert.That(s.Warnings, Has.Some.Contains("--alpha has no effect with --mode vanilla"));
        Assert.That(s.Warnings, Has.Some.Contains("--judge has no effect with --mode vanilla"));
        Assert.That(Settings("--alpha", "0.5").Warnings, Is.Empty);
    }

    [Test]
    public void OptionsFile_RoundTrips_AndFlagsOverrideIt()
    {
        var dir = TestPaths.NewTempDir();
        try
        {
            var original = Parse("--preset", "paper", "--alpha", "0.45", "--seed", "77", "--max-total-tokens", "12", "--early-exit", "false");
            var file = Path.Combine(dir, "opts.json");
            File.WriteAllText(file, CliJson.Write(original));
            var back = Parse("--options", file);
            Assert.That(CliJson.Write(back), Is.EqualTo(CliJson.Write(original)), "the file replays every field");

            // a whole result object works too (its options block is used)
            var result = new JsonObject { ["answer"] = "x", ["options"] = JsonNode.Parse(CliJson.Write(original)) };
            File.WriteAllText(file, result.ToJsonString());
            Assert.That(CliJson.Write(Parse("--options", file)), Is.EqualTo(CliJson.Write(original)));

            var overridden = (SafeCoDeOptions)Parse("--options", file, "--alpha", "0.9");
            Assert.That(overridden.Alpha, Is.EqualTo(0.9));
            Assert.That(overridden.Seed, Is.EqualTo(77), "fields not given on the command line come from the file");
            Assert.That(overridden.Preset, Is.EqualTo(SafeCoDePreset.Paper));
            var other = Settings("--options", file, "--alpha", "0.9", "--mode", "vcd");
            Assert.That(other.Decoding.Method, Is.EqualTo("vcd"));
            Assert.That(((VcdOptions)other.Decoding).Alpha, Is.EqualTo(0.9));
            Assert.That(other.Decoding.Seed, Is.EqualTo(77), "the shared fields of the file carry over to another method");
            Assert.That(other.Warnings, Has.Some.Contains("early_exit"), "the file's fields the other method does not take are reported");

            File.WriteAllText(file, """{"alpah": 0.3}""");
            var (code, _, e) = Run("generate", "--model", "m", "--prompt", "p", "--options", file);
            Assert.That(code, Is.EqualTo(ExitCodes.Usage));
            Assert.That(e, Does.Contain("--options " + file).And.Contain("alpah"));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Test]
    public void Json_SpellsEnumsAsTheCliAndKeepsTextReadable()
    {
        var json = CliJson.Write(new { options = (DecodingOptions)(SafeCoDeOptions.For(SafeCoDePreset.Faithful) with { Noise = NoiseKind.Diffusion }), style = PromptStyle.Reference, answer = "Größe <b> ≥ 2 — ok" });
        Assert.That(json, Does.Contain("\"mode\": \"safecode\"").And.Contain("\"noise\": \"vcd\"").And.Contain("\"style\": \"reference\""));
        Assert.That(json, Does.Contain("Größe <b> ≥ 2 — ok"), "no \\u escapes for non-ASCII or <");
    }
}
