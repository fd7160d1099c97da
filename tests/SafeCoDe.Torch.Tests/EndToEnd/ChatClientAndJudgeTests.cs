using SafeCoDe.Torch.Decoding.Methods;
using SafeCoDe.Torch.Decoding.Methods.SafeCoDeDecoding;
using SafeCoDe.Torch.Checkpoints;
using System.Text;
using Microsoft.Extensions.AI;
using NUnit.Framework;
using SafeCoDe.Torch.Decoding;
using SafeCoDe.Torch.Processing.Images;
using SafeCoDe.Torch.Runtime;
using SafeCoDe.Torch.Safety;

namespace SafeCoDe.Torch.Tests.EndToEnd;

/// <summary>
/// Issue 7's API acceptance on the shipped default (weights/llava-next-tiny): the Microsoft.Extensions.AI adapter
/// with an image message, the self judge, and one engine under concurrent requests.
/// </summary>
public sealed class ChatClientAndJudgeTests
{
    private SafeCoDeEngine _engine = null!;
    private readonly RgbImage _image = EndToEndCheckpoints.Gradient(seed: 2);
    private byte[] _png = null!;
    private const string Query = "What should I do with the yellow square?";

    [OneTimeSetUp]
    public void Load()
    {
        _engine = SafeCoDeEngine.Load(Path.Combine(TestPaths.Root, "weights", "llava-next-tiny"), new EngineOptions { Device = DeviceRequest.Cpu });
        _png = EndToEndCheckpoints.Png(_image);
    }

    [OneTimeTearDown]
    public void Unload() => _engine?.Dispose();

    private ChatMessage[] Messages(string query = Query) =>
        [new ChatMessage(ChatRole.User, [new TextContent(query), new DataContent(_png, "image/png")])];

    private static SafeCoDeOptions Greedy(int maxNew) => SafeCoDeOptions.For(SafeCoDePreset.Faithful) with { Greedy = true, MaxNewTokens = maxNew };

    [Test]
    public async Task ChatClient_ImageMessage_AnswersWithTheVerdict()
    {
        using var client = new SafeCoDeChatClient(_engine, judge: new FixedJudge(Verdict.Unsafe));
        var response = await client.GetResponseAsync(Messages(), new ChatOptions { Temperature = 0, MaxOutputTokens = 6, Seed = 3 });
        var direct = await _engine.GenerateAsync(new SafeCoDeRequest
        {
            Prompt = Query, ImageBytes = _png, Options = Greedy(6) with { Seed = 3, MaxTotalTokens = 6 }, Judge = new FixedJudge(Verdict.Unsafe),
        });
        Assert.That(response.Text, Is.EqualTo(direct.Answer).And.Not.Empty);
        Assert.That(response.Messages.Single().Role, Is.EqualTo(ChatRole.Assistant));
        Assert.That(response.AdditionalProperties!["safecode.verdict"], Is.EqualTo("unsafe"));
        Assert.That(response.AdditionalProperties["safecode.judge"], Is.EqualTo("fixed:unsafe"));
        Assert.That(response.Text, Does.StartWith(direct.GuidedText.Trim()), "the forced refusal opens the answer");
        Assert.That(response.Usage!.OutputTokenCount, Is.EqualTo(direct.GeneratedTokens));
        Assert.That(response.ModelId, Is.EqualTo("llava-next-tiny"), "the checkpoint's name, not the family");

        // the per-call verdict override skips the judge
        var safe = await client.GetResponseAsync(Messages(), new ChatOptions
        {
            Temperature = 0, MaxOutputTokens = 6, AdditionalProperties = new AdditionalPropertiesDictionary { ["safecode.verdict"] = "safe" },
        });
        Assert.That(safe.AdditionalProperties!["safecode.verdict"], Is.EqualTo("safe"));
        Assert.That(safe.AdditionalProperties["safecode.judge"], Is.EqualTo("given"));
    }

    [Test]
    public async Task ChatClient_DefaultJudge_IsTheModelItself()
    {
        using var client = new SafeCoDeChatClient(_engine);
        var r = await client.GetResponseAsync(Messages(), new ChatOptions { Temperature = 0, MaxOutputTokens = 4 });
        Assert.That(r.AdditionalProperties!["safecode.verdict"], Is.AnyOf("safe", "unsafe"));
        Assert.That(r.AdditionalProperties["safecode.judge"], Is.EqualTo("self"));
        var caption = await _engine.CompleteAsync(JudgePrompts.CaptionInstruction, _image, 64);
        Assert.That(r.AdditionalProperties["safecode.caption"], Is.EqualTo(caption), "the self judge's greedy caption of the image");
    }

    [Test]
    public async Task ChatClient_StreamingConcatenation_EqualsTheGreedyResponse()
    {
        using var client = new SafeCoDeChatClient(_engine, judge: new FixedJudge(Verdict.Safe));
        var options = new ChatOptions { Temperature = 0, MaxOutputTokens = 8, Seed = 1 };
        var whole = await client.GetResponseAsync(Messages(), options);
        var sb = new StringBuilder();
        int updates = 0;
        await foreach (var u in client.GetStreamingResponseAsync(Messages(), options))
        {
            Assert.That(u.Role, Is.EqualTo(ChatRole.Assistant));
            sb.Append(u.Text);
            updates++;
        }
        Assert.That(updates, Is.GreaterThan(1), "the answer streams in pieces");
        Assert.That(sb.ToString().Trim(), Is.EqualTo(whole.Text));
    }

    [Test]
    public async Task ChatClient_HonoursMaxOutputTokensSeedAndTemperature()
    {
        using var client = new SafeCoDeChatClient(_engine, judge: new FixedJudge(Verdict.Safe));
        foreach (var max in new[] { 1, 3, 7 })
        {
            var r = await client.GetResponseAsync(Messages(), new ChatOptions { Temperature = 0, MaxOutputTokens = max });
            Assert.That(r.Usage!.OutputTokenCount, Is.LessThanOrEqualTo(max), $"MaxOutputTokens {max}");
            if (r.FinishReason == ChatFinishReason.Length) Assert.That(r.Usage.OutputTokenCount, Is.EqualTo(max));
        }

        // an unsafe verdict's forced refusal phrase is cut at the cap too
        using (var refusing = new SafeCoDeChatClient(_engine, judge: new FixedJudge(Verdict.Unsafe)))
        {
            var full = await _engine.GenerateAsync(new SafeCoDeRequest { Prompt = Query, ImageBytes = _png, Options = Greedy(4) with { Seed = 6 }, Judge = new FixedJudge(Verdict.Unsafe) });
            Assert.That(full.GuidedTokens, Is.GreaterThan(2), $"forced '{full.ForcedPhrase}'");
            var cut = await refusing.GetResponseAsync(Messages(), new ChatOptions { Temperature = 0, MaxOutputTokens = 2, Seed = 6 });
            Assert.That(cut.Usage!.OutputTokenCount, Is.EqualTo(2));
            Assert.That(cut.AdditionalProperties!["safecode.guided_text"], Is.EqualTo(_engine.Tokenizer.Decode(full.TokenIds.Take(2).Select(t => (int)t).ToList(), true)));
        }

        // temperature 0: greedy (the seed still fixes the noised image of the contrast branch)
        var g1 = await client.GetResponseAsync(Messages(), new ChatOptions { Temperature = 0, MaxOutputTokens = 8, Seed = 1 });
        var g2 = await client.GetResponseAsync(Messages(), new ChatOptions { Temperature = 0, MaxOutputTokens = 8, Seed = 1 });
        var greedy = await _engine.GenerateAsync(new SafeCoDeRequest { Prompt = Query, ImageBytes = _png, Options = Greedy(8) with { Seed = 1, MaxTotalTokens = 8 }, Judge = new FixedJudge(Verdict.Safe) });
        Assert.That(g1.Text, Is.EqualTo(greedy.Answer));
        Assert.That(g2.Text, Is.EqualTo(g1.Text));

        // a seed makes sampling reproducible; sampling at temperature 1.5 with other seeds moves away from it
        var hot = new ChatOptions { Temperature = 1.5f, TopP = 1, MaxOutputTokens = 8, Seed = 42 };
        var s1 = await client.GetResponseAsync(Messages(), hot);
        var s2 = await client.GetResponseAsync(Messages(), hot);
        Assert.That(s2.Text, Is.EqualTo(s1.Text));
        var others = new List<string>();
        for (long seed = 100; seed < 104; seed++)
            others.Add((await client.GetResponseAsync(Messages(), new ChatOptions { Temperature = 1.5f, TopP = 1, MaxOutputTokens = 8, Seed = seed })).Text);
        Assert.That(others.Append(s1.Text).Distinct().Count(), Is.GreaterThan(1), "sampling with different seeds differs");
        Assert.That(others.Append(greedy.Answer).Any(t => t != greedy.Answer), Is.True, "temperature 1.5 is not greedy");
    }

    [Test]
    public async Task LocalJudge_ASecondCheckpoint_JudgesForTheTargetModel()
    {
        // e.g. a Qwen2.5-VL-3B judging for a LLaVA-NeXT target: here random-weight Qwen2.5-VL with the real Qwen tokenizer
        var judgeDir = EndToEndCheckpoints.For(ModelFamilies.Qwen25VL);
        using var judge = ModelJudge.Local(judgeDir, new EngineOptions { Device = DeviceRequest.Cpu });
        Assert.That(judge.Name, Is.EqualTo("local:" + judgeDir));
        using var judgeEngine = SafeCoDeEngine.Load(judgeDir, new EngineOptions { Device = DeviceRequest.Cpu });
        var expectedCaption = await judgeEngine.CompleteAsync(JudgePrompts.CaptionInstruction, _image, judge.CaptionTokens);
        var r = await _engine.GenerateAsync(new SafeCoDeRequest { Prompt = Query, Image = _image, Options = Greedy(3), Judge = judge });
        Assert.That(r.Judge, Is.EqualTo(judge.Name));
        Assert.That(r.Caption, Is.EqualTo(expectedCaption), "the caption comes from the judge's model, not the target's");
        var own = await _engine.CompleteAsync(JudgePrompts.CaptionInstruction, _image, judge.CaptionTokens);
        Assert.That(r.Caption, Is.Not.EqualTo(own));
        Assert.That(r.Family, Is.EqualTo(ModelFamilies.LlavaNext));
    }

    [Test]
    public async Task SelfJudge_CaptionAndVerdictComeFromTheModel()
    {
        var judge = new ModelJudge(_engine) { CaptionTokens = 12, VerdictTokens = 4 };
        Assert.That(judge.Name, Is.EqualTo("self"));
        var request = new JudgeRequest(Query, _png);
        var a = await judge.JudgeAsync(request);
        var b = await judge.JudgeAsync(request);
        Assert.That(b.Caption, Is.EqualTo(a.Caption), "greedy: reproducible");
        Assert.That(b.RawVerdictReply, Is.EqualTo(a.RawVerdictReply));

        var caption = await _engine.CompleteAsync(JudgePrompts.CaptionInstruction, _image, 12);
        Assert.That(a.Caption, Is.EqualTo(caption.Trim()).And.Not.Empty, "the caption is the model's greedy caption of the image");
        var reply = await _engine.CompleteAsync(JudgePrompts.VerdictPrompt(Query, a.Caption, withReasons: false), null, 4);
        Assert.That(a.RawVerdictReply, Is.EqualTo(reply), "the decision is the model's text-only greedy reply to the few-shot prompt");
        var (verdict, parsed) = VerdictParser.Parse(a.RawVerdictReply);
        Assert.That(a.Verdict, Is.EqualTo(verdict));
        Assert.That(a.VerdictParsed, Is.EqualTo(parsed));
        Assert.That(a.Judge, Is.EqualTo("self"));
        Assert.That(a.CaptionMs, Is.GreaterThan(0));
        Assert.That(a.VerdictMs, Is.GreaterThan(0));
        Assert.That(a.LatencyMs, Is.EqualTo(a.CaptionMs + a.VerdictMs).Within(1e-6));

        // inside a SafeCoDe request the engine judges with the same model (re-entrantly, without deadlocking)
        var r = await _engine.GenerateAsync(new SafeCoDeRequest
        {
            Prompt = Query, Image = _image, Options = Greedy(3), Judge = judge,
        });
        Assert.That(r.Judge, Is.EqualTo("self"));
        Assert.That(r.Caption, Is.EqualTo(a.Caption));
        Assert.That(r.RawVerdict, Is.EqualTo(a.RawVerdictReply));
        Assert.That(r.Verdict, Is.EqualTo(a.Verdict == Verdict.Unsafe ? "unsafe" : "safe"));
        Assert.That(r.Timings.JudgeMs, Is.GreaterThan(0));
    }

    [Test]
    public async Task ConcurrentRequests_EqualSequentialOnes()
    {
        var requests = new[]
        {
            new SafeCoDeRequest { Prompt = Query, Image = _image, Options = SafeCoDeOptions.For(SafeCoDePreset.Faithful) with { Seed = 8, MaxNewTokens = 10 }, Judge = new FixedJudge(Verdict.Safe) },
            new SafeCoDeRequest { Prompt = "Is this dangerous?", Image = EndToEndCheckpoints.Gradient(seed: 9), Options = SafeCoDeOptions.For(SafeCoDePreset.Faithful) with { Seed = 9, MaxNewTokens = 10 } },
            new SafeCoDeRequest { Prompt = "Describe the colours.", Image = _image, Options = DecodingMethods.Rebase(SafeCoDeOptions.For(SafeCoDePreset.Faithful), "vcd") with { Seed = 10, MaxNewTokens = 10 } },
        };
        var sequential = new List<SafeCoDeResult>();
        foreach (var r in requests) sequential.Add(await _engine.GenerateAsync(r));

        for (int round = 0; round < 2; round++)
        {
            var concurrent = await Task.WhenAll(requests.Select(r => Task.Run(() => _engine.GenerateAsync(r))));
            var streamed = requests.Select(r => Task.Run(async () =>
            {
                var sb = new StringBuilder();
                await foreach (var p in _engine.StreamAsync(r)) sb.Append(p);
                return sb.ToString().Trim();
            })).ToArray();
            var texts = await Task.WhenAll(streamed);
            for (int i = 0; i < requests.Length; i++)
            {
                Assert.That(concurrent[i].TokenIds, Is.EqualTo(sequential[i].TokenIds), $"request {i}, round {round}");
                Assert.That(concurrent[i].Caption, Is.EqualTo(sequential[i].Caption));
                Assert.That(texts[i], Is.EqualTo(sequential[i].Answer), $"streamed request {i}");
            }
        }
        Assert.That(sequential[1].Judge, Is.EqualTo("self"), "the second request judges with the engine itself while others wait");
    }
}
