using System.Text.Json.Nodes;
using Microsoft.Extensions.AI;
using NUnit.Framework;
using SafeCoDe.Torch.Decoding.Methods;
using SafeCoDe.Torch.Decoding.Methods.SafeCoDeDecoding;
using SafeCoDe.Torch.Processing.Images;
using SafeCoDe.Torch.Runtime;
using SafeCoDe.Torch.Safety;
using SafeCoDe.Torch.Tests.EndToEnd;
using SafeCoDe.Torch.Tests.Serve;

namespace SafeCoDe.Torch.Tests.Methods.Toy;

/// <summary>
/// The decoding-methods acceptance: a method defined only in this test project (its own rule, its own options, one
/// request-level step), registered at run time, runs end to end through the engine, <c>safecode generate</c>,
/// <c>eval run</c>, <c>serve</c> and the IChatClient — alone and batched with other methods' requests — with no file
/// under src/ naming it.
/// </summary>
[NonParallelizable]
public sealed class ToyMethodTests
{
    private const long Token = 1000;
    private static string ModelDir => Path.Combine(TestPaths.Root, "weights", "llava-next-tiny");
    private static readonly RgbImage Image = EndToEndCheckpoints.Gradient(seed: 6);
    private SafeCoDeEngine _engine = null!;
    private string _biasedText = "";

    [OneTimeSetUp]
    public void Register()
    {
        DecodingMethods.Register(new ToyMethod());
        _engine = SafeCoDeEngine.Load(ModelDir, new EngineOptions { Device = DeviceRequest.Cpu, MaxBatchRows = 8 });
        _biasedText = Biased(4);
    }

    [OneTimeTearDown]
    public void Unregister()
    {
        _engine?.Dispose();
        DecodingMethods.Unregister(ToyMethod.MethodName);
    }

    /// <summary>What a strongly biased toy decode answers: the toy token, <paramref name="n"/> times.</summary>
    private string Biased(int n) => _engine.Tokenizer.Decode(Enumerable.Repeat((int)Token, n).ToList(), skipSpecialTokens: true).Trim();

    private static ToyOptions Toy(double bias, int tokens = 4) => new() { Bias = bias, Token = Token, Greedy = true, MaxNewTokens = tokens, Seed = 1 };

    private static (int Code, string Out, string Err) Cli(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = SafeCoDe.Cli.Cli.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    [Test]
    public async Task TheEngine_RunsTheToyMethod_AloneAndBatchedWithOtherMethods()
    {
        SafeCoDeRequest Req(DecodingOptions o, string prompt = "Describe the picture.") => new() { Prompt = prompt, Image = Image, Options = o, Verdict = Verdict.Safe };
        var biased = await _engine.GenerateAsync(Req(Toy(1000)));
        Assert.That(biased.TokenIds, Is.EqualTo(Enumerable.Repeat(Token, 4)), "its rule moved every pick");
        Assert.That(biased.Answer, Is.EqualTo(_biasedText));
        Assert.That(biased.Options.Method, Is.EqualTo(ToyMethod.MethodName));
        Assert.That(biased.Verdict, Is.Null, "the toy uses no judge");
        var step = biased.Steps.Single();
        Assert.That(step.Step, Is.EqualTo("toy_prompt"));
        Assert.That(step.Input, Is.EqualTo("Describe the picture."));
        Assert.That(step.Output, Is.EqualTo("Describe the picture." + ToyMethod.Suffix));
        var plain = await _engine.GenerateAsync(Req(DecodingMethods.Rebase(Toy(0), DecodingMethods.Plain)));
        Assert.That(biased.PromptTokens, Is.GreaterThan(plain.PromptTokens), "the step's suffix reached the prompt");
        Assert.That((await _engine.GenerateAsync(Req(Toy(0)))).TokenIds, Is.Not.EqualTo(biased.TokenIds), "without the bias the toy decodes as the model does");

        var jobs = new[]
        {
            Req(Toy(1000)), Req(Toy(0), "What colours are there?"), Req(Toy(3, 6), "Is it safe?"),
            Req(SafeCoDeOptions.For(SafeCoDePreset.Faithful) with { Greedy = true, MaxNewTokens = 5, Seed = 2 }),
            Req(DecodingMethods.Rebase(Toy(0, 5), DecodingMethods.Plain), "Name one object."),
        };
        var alone = new List<SafeCoDeResult>();
        foreach (var j in jobs) alone.Add(await _engine.GenerateAsync(j));
        var p0 = _engine.DecodeBatchProfile;
        var together = await Task.WhenAll(jobs.Select(j => _engine.GenerateAsync(j)));
        var p = _engine.DecodeBatchProfile.Since(p0);
        for (int i = 0; i < jobs.Length; i++) Assert.That(together[i].TokenIds, Is.EqualTo(alone[i].TokenIds), $"request {i} ({jobs[i].Options.Method})");
        Assert.That(p.Forwards, Is.LessThan(p.Steps), "the toy's sessions shared forwards with the others'");
    }

    [Test]
    public void SafecodeGenerate_TakesTheToysFlags_AndRecordsItsStep()
    {
        var (code, help, _) = Cli("generate", "--help");
        Assert.That(code, Is.EqualTo(0));
        Assert.That(help, Does.Contain("--toy-bias").And.Contain("toy: the test project's toy method"));
        var (c2, o, e) = Cli("generate", "--model", ModelDir, "--prompt", "Describe the picture.", "--mode", "toy", "--toy-bias", "1000",
            "--toy-token", Token.ToString(), "--max-new-tokens", "4", "--seed", "1", "--greedy", "--device", "cpu", "--json");
        Assert.That(c2, Is.EqualTo(0), e);
        var j = JsonNode.Parse(o)!;
        Assert.That(j["token_ids"]!.AsArray().Select(x => x!.GetValue<long>()), Is.EqualTo(Enumerable.Repeat(Token, 4)));
        Assert.That(j["options"]!["mode"]!.GetValue<string>(), Is.EqualTo("toy"));
        Assert.That(j["options"]!["toy_bias"]!.GetValue<double>(), Is.EqualTo(1000));
        Assert.That(j["steps"]![0]!["step"]!.GetValue<string>(), Is.EqualTo("toy_prompt"));
        var (c3, _, e3) = Cli("generate", "--model", ModelDir, "--prompt", "p", "--mode", "toy", "--toy-bias", "much");
        Assert.That(c3, Is.EqualTo(2));
        Assert.That(e3, Does.Contain("--toy-bias 'much': expected a number"));
    }

    [Test]
    public void EvalRun_DecodesABenchmarkWithTheToy_AndHashesItsOptions()
    {
        var dir = TestPaths.NewTempDir();
        try
        {
            var data = Path.Combine(dir, "prompts.jsonl");
            File.WriteAllBytes(Path.Combine(dir, "scene.png"), EndToEndCheckpoints.Png(Image));
            File.WriteAllLines(data, ["""{"id": "a", "prompt": "Describe the picture.", "image": "scene.png"}""", """{"id": "b", "prompt": "What is there?", "image": "scene.png"}"""]);
            var run = Path.Combine(dir, "run");
            var (code, _, e) = Cli("eval", "run", "-b", "jsonl", "-d", data, "-m", ModelDir, "-o", run, "--mode", "toy", "--toy-bias", "1000",
                "--toy-token", Token.ToString(), "--max-new-tokens", "4", "--seed", "1", "--greedy", "--device", "cpu", "--concurrency", "2", "--quiet");
            Assert.That(code, Is.EqualTo(0), e);
            var records = File.ReadAllLines(Path.Combine(run, "records.jsonl")).Select(l => JsonNode.Parse(l)!).ToList();
            Assert.That(records, Has.Count.EqualTo(2));
            foreach (var r in records) Assert.That(r["outputs"]![0]!["answer"]!.GetValue<string>(), Is.EqualTo(_biasedText));
            var manifest = JsonNode.Parse(File.ReadAllText(Path.Combine(run, "run.json")))!;
            Assert.That(manifest["mode"]!.GetValue<string>(), Is.EqualTo("toy"));
            Assert.That(manifest["options"]!["decoding.toy_bias"]!.GetValue<string>(), Is.EqualTo("1000"));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Test]
    public async Task Serve_TakesTheToyInTheSafecodeField_AloneAndWithOtherRequests()
    {
        var log = new LogCapture();
        await using var server = await ServeTestServer.Start(log);
        using var http = ServeTestServer.Http(server);
        async Task<string> Ask(JsonObject? safecode) =>
            JsonNode.Parse(await (await ServeTestServer.Post(http, ServeTestServer.Body(maxTokens: 4, safecode: safecode).ToJsonString())).Content.ReadAsStringAsync())!
                ["choices"]![0]!["message"]!["content"]!.GetValue<string>();
        JsonObject ToyField() => new() { ["mode"] = "toy", ["toy_bias"] = 1000, ["toy_token"] = Token };
        var alone = await Ask(ToyField());
        Assert.That(alone, Is.EqualTo(_biasedText));
        var other = await Ask(null);
        var together = await Task.WhenAll(Ask(ToyField()), Ask(null), Ask(ToyField()));
        Assert.That(together, Is.EqualTo(new[] { alone, other, alone }));
        var bad = await ServeTestServer.Post(http, ServeTestServer.Body(safecode: new JsonObject { ["mode"] = "toy", ["toy_bias"] = "big" }).ToJsonString());
        Assert.That((int)bad.StatusCode, Is.EqualTo(400));
        Assert.That(await bad.Content.ReadAsStringAsync(), Does.Contain("safecode.toy_bias").And.Contain("invalid_type"));
    }

    [Test]
    public async Task TheChatClient_TakesTheToyThroughItsProperties()
    {
        using var client = new SafeCoDeChatClient(_engine);
        var options = new ChatOptions
        {
            MaxOutputTokens = 4, Temperature = 0,
            AdditionalProperties = new AdditionalPropertiesDictionary { ["safecode.mode"] = "toy", ["safecode.toy_bias"] = 1000, ["safecode.toy_token"] = Token },
        };
        var r = await client.GetResponseAsync([new ChatMessage(ChatRole.User, [new TextContent("Describe the picture."), new DataContent(EndToEndCheckpoints.Png(Image), "image/png")])], options);
        Assert.That(r.Text, Is.EqualTo(_biasedText));
        Assert.That(r.AdditionalProperties!["safecode.mode"], Is.EqualTo("toy"));
    }
}
