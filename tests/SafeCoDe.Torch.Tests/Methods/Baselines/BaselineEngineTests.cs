using System.Text.Json.Nodes;
using NUnit.Framework;
using SafeCoDe.Torch.Decoding.Methods;
using SafeCoDe.Torch.Decoding.Methods.Baselines;
using SafeCoDe.Torch.Decoding.Methods.SafeCoDeDecoding;
using SafeCoDe.Torch.Runtime;
using SafeCoDe.Torch.Safety;
using SafeCoDe.Torch.Tests.Serve;

namespace SafeCoDe.Torch.Tests.Methods.Baselines;

/// <summary>
/// The nine baseline defenses on the shipped SafeScenes model, through the engine, <c>safecode generate</c>,
/// <c>eval run</c>, <c>eval calibrate ppl</c> and the server: real nested generations, recorded calls, the filter path,
/// and the prompt-only defenses batched with other requests.
/// </summary>
[NonParallelizable]
public sealed class BaselineEngineTests
{
    private const string Question = "Can I cut the bread here?";
    private static string ModelDir => Path.Combine(TestPaths.Root, "weights", "safescenes-tiny");
    private static string ImagePath => Path.Combine(ModelDir, "example.png");
    private SafeCoDeEngine _engine = null!;

    [OneTimeSetUp]
    public void Load() => _engine = SafeCoDeEngine.Load(ModelDir, new EngineOptions { Device = DeviceRequest.Cpu, MaxBatchRows = 8 });

    [OneTimeTearDown]
    public void Dispose() => _engine?.Dispose();

    private static DecodingOptions Options(string method) => DecodingMethods.Defaults(method) with { Greedy = true, MaxNewTokens = 6, Seed = 1 };

    private SafeCoDeRequest Request(DecodingOptions o, string question = Question) => new() { Prompt = question, ImagePath = ImagePath, Options = o };

    private static (int Code, string Out, string Err) Cli(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = SafeCoDe.Cli.Cli.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    [TestCase("paraphrase", 1)]
    [TestCase("retokenization", 0)]
    [TestCase("self-reminder", 0)]
    [TestCase("cot", 0)]
    [TestCase("ppl", 1)]
    [TestCase("self-exam", 1)]
    [TestCase("adashield", 0)]
    [TestCase("dpp", 0)]
    public async Task EachBaseline_DecodesOnTheShippedModel_AndRecordsWhatItDid(string method, int calls)
    {
        var o = Options(method) switch
        {
            ParaphraseOptions p => p with { Paraphraser = "fixed:Is bread cut here?" },
            var x => x,
        };
        var r = await _engine.GenerateAsync(Request(o));
        Assert.That(r.Options.Method, Is.EqualTo(method));
        Assert.That(r.Verdict, Is.Null, "a baseline asks no judge");
        Assert.That(r.Steps, Is.Not.Empty);
        Assert.That(r.Steps.Sum(s => s.Calls.Count), Is.EqualTo(calls));
        Assert.That(r.TokenIds, Is.Not.Empty, "the model decoded");
        var expected = method switch
        {
            "paraphrase" => "Is bread cut here?",
            "retokenization" => BpeDropout.SplitText(BpeDropout.Table("builtin"), Question, 0.2, new Random(1)),
            "self-reminder" => Question + DefenseTexts.Get("self-reminder-suffix"),
            "cot" => DefenseTexts.Get("cot-chat") + Question,
            "adashield" => Question + DefenseTexts.Get("adashield-static") + Question,
            "dpp" => Question + " " + DefenseTexts.Get("dpp-best"),
            _ => Question,
        };
        Assert.That(r.DecodedPrompt, Is.EqualTo(expected));
        if (method == "self-reminder") Assert.That(r.DecodedSystemPrompt, Is.EqualTo(DefenseTexts.Get("self-reminder-system").TrimStart()));
        if (method == "self-exam")
        {
            var call = r.Steps.Single().Calls.Single();
            Assert.That(call.To, Is.EqualTo("self:safescenes-tiny"));
            Assert.That(call.Prompt, Is.EqualTo(SelfExaminationMethod.CheckPrompt(new SelfExaminationOptions(), r.Steps.Single().Input!)));
            Assert.That(call.Reply, Is.Not.Empty, "the model itself answered the check");
        }
        if (method == "ppl") Assert.That(double.Parse(r.Steps.Single().Calls.Single().Reply!, System.Globalization.CultureInfo.InvariantCulture), Is.GreaterThan(1));
    }

    [Test]
    public async Task Ecso_RunsItsCheck_WithTheModelItself()
    {
        var r = await _engine.GenerateAsync(Request(Options("ecso") is EcsoOptions e ? e with { StepMaxNewTokens = 3 } : throw new InvalidOperationException()));
        var calls = r.Steps.Single().Calls;
        Assert.That(calls.Count, Is.EqualTo(EcsoMethod.SaysUnsafe(calls[0].Reply!) ? 3 : 1));
        Assert.That(calls[0].Role, Is.EqualTo("ecso_check"));
        Assert.That(calls[0].Prompt, Does.StartWith("QUERY:\n" + Question + "\n\nRESPONSE:\n"));
        Assert.That(r.AnswerReplaced, Is.EqualTo(calls.Count == 3));
    }

    [Test]
    public async Task Ppl_AboveTheThreshold_RefusesWithoutDecoding()
    {
        var o = (PerplexityFilterOptions)Options("ppl") with { Threshold = 1e-9 };
        var r = await _engine.GenerateAsync(Request(o));
        Assert.That(r.Answer, Is.EqualTo("Sorry, I cannot answer your question."));
        Assert.That(r.Refused, Is.True);
        Assert.That(r.TokenIds, Is.Empty);
        Assert.That(_engine.Perplexity(""), Is.NaN, "the begin token alone: nothing to predict");
        Assert.That(_engine.Perplexity(Question), Is.EqualTo(_engine.Perplexity(Question)).And.GreaterThan(1));
    }

    [Test]
    public void Ppl_OnAModelWithoutACalibration_StopsBeforeDecoding_NamingTheCommand()
    {
        using var other = SafeCoDeEngine.Load(Path.Combine(TestPaths.Root, "weights", "llava-next-tiny"), new EngineOptions { Device = DeviceRequest.Cpu });
        var ex = Assert.ThrowsAsync<InvalidOperationException>(() => other.GenerateAsync(new SafeCoDeRequest { Prompt = Question, Options = Options("ppl") }));
        Assert.That(ex!.Message, Does.Contain("safecode eval calibrate ppl"));
        Assert.DoesNotThrow(() => _engine.CheckMethod(Options("ppl")), "the shipped SafeScenes model carries its calibration");
        Assert.That(SafeCoDeEngine.ReadCalibration(ModelDir), Is.GreaterThan(1));
    }

    [Test]
    public async Task PromptSideBaselines_BatchWithOtherRequests_AndDecodeAsAlone()
    {
        var jobs = new[] { "retokenization", "self-reminder", "cot", "adashield", "dpp", "self-exam" }
            .Select(m => Request(Options(m), m == "cot" ? "Is this safe?" : Question))
            .Append(Request(SafeCoDeOptions.For(SafeCoDePreset.Faithful) with { Greedy = true, MaxNewTokens = 6, Seed = 1 }) with { Verdict = Verdict.Safe })
            .ToArray();
        var alone = new List<SafeCoDeResult>();
        foreach (var j in jobs) alone.Add(await _engine.GenerateAsync(j));
        var p0 = _engine.DecodeBatchProfile;
        var together = await Task.WhenAll(jobs.Select(j => _engine.GenerateAsync(j)));
        var p = _engine.DecodeBatchProfile.Since(p0);
        for (int i = 0; i < jobs.Length; i++)
        {
            Assert.That(together[i].TokenIds, Is.EqualTo(alone[i].TokenIds), jobs[i].Options.Method);
            Assert.That(together[i].Answer, Is.EqualTo(alone[i].Answer), jobs[i].Options.Method);
        }
        Assert.That(p.Forwards, Is.LessThan(p.Steps), "the defenses' decodes shared forwards");
    }

    [Test]
    public void Generate_ListsEveryMethod_AndRunsEachBaselineFromTheCommandLine()
    {
        var (code, help, _) = Cli("generate", "--help");
        Assert.That(code, Is.EqualTo(0));
        foreach (var m in new[] { "safecode", "vcd", "vanilla", "paraphrase", "retokenization", "self-reminder", "cot", "ppl", "self-exam", "adashield", "dpp", "ecso" })
            Assert.That(help, Does.Contain(m), m);
        Assert.That(help, Does.Contain("--paraphrase-model").And.Contain("--ppl-threshold").And.Contain("--dpp-variant").And.Contain("--bpe-dropout"));
        var (c2, o, e) = Cli("generate", "--model", ModelDir, "--image", ImagePath, "--prompt", Question, "--mode", "dpp", "--dpp-variant", "warn",
            "--max-new-tokens", "4", "--seed", "1", "--greedy", "--device", "cpu", "--json");
        Assert.That(c2, Is.EqualTo(0), e);
        var j = JsonNode.Parse(o)!;
        Assert.That(j["options"]!["mode"]!.GetValue<string>(), Is.EqualTo("dpp"));
        Assert.That(j["options"]!["dpp_variant"]!.GetValue<string>(), Is.EqualTo("warn"));
        Assert.That(j["decoded_prompt"]!.GetValue<string>(), Is.EqualTo(Question + " " + DefenseTexts.Get("dpp-warn")));
        Assert.That(j["steps"]![0]!["step"]!.GetValue<string>(), Is.EqualTo("dpp"));
        var (c3, _, e3) = Cli("generate", "--model", ModelDir, "--prompt", Question, "--mode", "paraphrase", "--paraphrase-model", "gpt4");
        Assert.That(c3, Is.EqualTo(2));
        Assert.That(e3, Does.Contain("--paraphrase-model").And.Contain("fixed:TEXT"));
        var (c4, _, e4) = Cli("generate", "--model", ModelDir, "--prompt", Question, "--mode", "ppl", "--ppl-threshold", "1e6", "--self-exam-form", "paper", "--device", "cpu",
            "--max-new-tokens", "2");
        Assert.That(c4, Is.EqualTo(0), e4);
        Assert.That(e4, Does.Contain("--self-exam-form"), "a flag the chosen method does not take is named as ignored");
    }

    [Test]
    public void EvalRun_RecordsEachCall_AndTheReportShowsTheCostPerSample()
    {
        var dir = TestPaths.NewTempDir();
        try
        {
            var data = Path.Combine(dir, "prompts.jsonl");
            File.Copy(ImagePath, Path.Combine(dir, "scene.png"));
            File.WriteAllLines(data, ["""{"id": "a", "prompt": "Can I cut the bread here?", "image": "scene.png"}""", """{"id": "b", "prompt": "What is on the table?", "image": "scene.png"}"""]);
            var run = Path.Combine(dir, "run");
            var (code, _, e) = Cli("eval", "run", "-b", "jsonl", "-d", data, "-m", ModelDir, "-o", run, "--mode", "self-exam", "--max-new-tokens", "4", "--seed", "1",
                "--greedy", "--device", "cpu", "--concurrency", "2", "--quiet");
            Assert.That(code, Is.EqualTo(0), e);
            var records = File.ReadAllLines(Path.Combine(run, "records.jsonl")).Select(l => JsonNode.Parse(l)!).ToList();
            Assert.That(records, Has.Count.EqualTo(2));
            foreach (var r in records)
            {
                var step = r["outputs"]![0]!["steps"]![0]!;
                Assert.That(step["step"]!.GetValue<string>(), Is.EqualTo("self_exam"));
                Assert.That(step["calls"]!.AsArray().Single()!["to"]!.GetValue<string>(), Is.EqualTo("self:safescenes-tiny"));
            }
            var (rc, report, re) = Cli("eval", "report", run, "--json");
            Assert.That(rc, Is.EqualTo(0), re);
            var cost = JsonNode.Parse(report)!["runs"]![0]!["cost"]!;
            Assert.That(cost["calls_per_sample"]!.GetValue<double>(), Is.EqualTo(1));
            var (tc, text, _) = Cli("eval", "report", run);
            Assert.That(tc, Is.EqualTo(0));
            Assert.That(text, Does.Contain("Cost per sample"));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Test]
    public void CalibratePpl_PrintsTheHighestPerplexity_AndWritesItOnlyWhenAsked()
    {
        var dir = TestPaths.NewTempDir();
        try
        {
            var model = Path.Combine(dir, "model");
            Directory.CreateDirectory(model);
            foreach (var f in Directory.GetFiles(ModelDir).Where(f => !f.EndsWith(SafeCoDeEngine.PerplexityCalibrationFile))) File.Copy(f, Path.Combine(model, Path.GetFileName(f)));
            var data = Path.Combine(dir, "benign.jsonl");
            string[] questions = ["What is on the table?", "Can I cut the bread here?", "Describe the room."];
            File.Copy(ImagePath, Path.Combine(dir, "scene.png"));
            File.WriteAllLines(data, questions.Select((q, i) => $$"""{"id": "q{{i}}", "prompt": "{{q}}", "image": "scene.png"}""").Append("""{"id": "bad", "prompt": "No image."}"""));
            var (code, o, e) = Cli("eval", "calibrate", "ppl", "-b", "jsonl", "-d", data, "-m", model, "--device", "cpu", "--json");
            Assert.That(code, Is.EqualTo(0), e);
            var j = JsonNode.Parse(o)!;
            using var engine = SafeCoDeEngine.Load(model, new EngineOptions { Device = DeviceRequest.Cpu });
            var highest = questions.Max(q => engine.Perplexity(q));
            Assert.That(j["threshold"]!.GetValue<double>(), Is.EqualTo(highest).Within(1e-9));
            Assert.That(j["prompts"]!.GetValue<int>(), Is.EqualTo(3));
            Assert.That(j["problems"]!.GetValue<int>(), Is.EqualTo(1), "the unreadable record is counted, not hidden");
            Assert.That(File.Exists(Path.Combine(model, SafeCoDeEngine.PerplexityCalibrationFile)), Is.False, "nothing is written without --write");
            Assert.That(Cli("eval", "calibrate", "ppl", "-b", "jsonl", "-d", data, "-m", model, "--device", "cpu", "--write").Code, Is.EqualTo(0));
            Assert.That(SafeCoDeEngine.ReadCalibration(model), Is.EqualTo(highest).Within(1e-9));
            var (again, _, ae) = Cli("eval", "calibrate", "ppl", "-b", "jsonl", "-d", data, "-m", model, "--device", "cpu", "--write");
            Assert.That(again, Is.Not.EqualTo(0));
            Assert.That(ae, Does.Contain("--force"), "an existing calibration is not overwritten silently");
        }
        finally { Directory.Delete(dir, true); }
    }

    [Test]
    public async Task Serve_TakesABaselineInTheSafecodeField()
    {
        var log = new LogCapture();
        await using var server = await ServeTestServer.Start(log);
        using var http = ServeTestServer.Http(server);
        var body = ServeTestServer.Body(maxTokens: 3, safecode: new JsonObject { ["mode"] = "dpp", ["dpp_variant"] = "long" }).ToJsonString();
        var response = await ServeTestServer.Post(http, body);
        var text = await response.Content.ReadAsStringAsync();
        Assert.That((int)response.StatusCode, Is.EqualTo(200), text);
        Assert.That(JsonNode.Parse(text)!["safecode"]!["mode"]!.GetValue<string>(), Is.EqualTo("dpp"));
        var bad = await ServeTestServer.Post(http, ServeTestServer.Body(safecode: new JsonObject { ["mode"] = "dpp", ["dpp_variant"] = "shortest" }).ToJsonString());
        Assert.That((int)bad.StatusCode, Is.EqualTo(400));
        Assert.That(await bad.Content.ReadAsStringAsync(), Does.Contain("safecode.dpp_variant"));
    }
}
