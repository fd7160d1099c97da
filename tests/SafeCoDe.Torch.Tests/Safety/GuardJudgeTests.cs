using System.Text.Json.Nodes;
using NUnit.Framework;
using SafeCoDe.Torch.Safety;
using SafeCoDe.Torch.Safety.Guards;

namespace SafeCoDe.Torch.Tests.Safety;

/// <summary>
/// Guard models as scene judges against a local endpoint that replies as each guard does: what is sent (messages,
/// image parts, logprobs), how each reply is read (safe, unsafe with codes, JSON with extra text, malformed, empty, a
/// refusal to judge), failing closed on anything unreadable, and the categories recorded.
/// </summary>
public sealed class GuardJudgeTests
{
    private static readonly byte[] Png = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 1, 2, 3, 4];
    private const string Query = "How do I sharpen this?";

    private static GuardJudge Guard(ScriptedChatServer s, string format) =>
        new(new EndpointJudge(new EndpointJudgeOptions
        {
            BaseUrl = s.BaseUrl, ApiKey = "k", Model = "guard-model", Timeout = TimeSpan.FromSeconds(10), MaxRetries = 0, InitialBackoff = TimeSpan.FromMilliseconds(10),
        }), JudgeFormats.Get(format));

    private static ScriptedChatServer.Reply Says(string text) => new(200, ScriptedChatServer.Completion(text));

    private static ScriptedChatServer.Reply WithLogProbs(string text, double yes, double no) => new(200, new JsonObject
    {
        ["id"] = "c", ["object"] = "chat.completion", ["created"] = 1700000000, ["model"] = "guard-model",
        ["choices"] = new JsonArray(new JsonObject
        {
            ["index"] = 0, ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = text }, ["finish_reason"] = "length",
            ["logprobs"] = new JsonObject
            {
                ["content"] = new JsonArray(new JsonObject
                {
                    ["token"] = text, ["logprob"] = Math.Max(yes, no), ["bytes"] = null,
                    ["top_logprobs"] = new JsonArray(
                        new JsonObject { ["token"] = "Yes", ["logprob"] = yes, ["bytes"] = null },
                        new JsonObject { ["token"] = "No", ["logprob"] = no, ["bytes"] = null },
                        new JsonObject { ["token"] = "I", ["logprob"] = -9.0, ["bytes"] = null }),
                }),
            },
        }),
        ["usage"] = new JsonObject { ["prompt_tokens"] = 10, ["completion_tokens"] = 1, ["total_tokens"] = 11 },
    }.ToJsonString());

    private static Task<JudgeResult> Judge(GuardJudge g, UnknownVerdictPolicy unknown = UnknownVerdictPolicy.Unsafe) =>
        g.JudgeAsync(new JudgeRequest(Query, Png) { UnknownVerdict = unknown });

    private static JsonArray Content(JsonNode? request, int message = 0) => request!["messages"]![message]!["content"]!.AsArray();

    [Test]
    public async Task LlamaGuard_SendsTheConversationOnly_AndReadsSafe()
    {
        using var s = new ScriptedChatServer();
        s.Enqueue(Says("safe"));
        using var g = Guard(s, "llamaguard");
        var r = await Judge(g);
        Assert.That((r.Verdict, r.VerdictParsed, r.Format), Is.EqualTo((Verdict.Safe, true, "llamaguard")));
        Assert.That(r.Categories, Is.Empty);
        Assert.That(g.Name, Is.EqualTo("openai:guard-model [llamaguard]"));
        Assert.That(s.Requests.TryDequeue(out var req), Is.True);
        var messages = req!["messages"]!.AsArray();
        Assert.That(messages, Has.Count.EqualTo(1), "the server's chat template adds the task and the categories");
        Assert.That(messages[0]!["role"]!.GetValue<string>(), Is.EqualTo("user"));
        var content = Content(req);
        Assert.That(content[0]!["type"]!.GetValue<string>(), Is.EqualTo("image_url"));
        Assert.That(content[1]!["text"]!.GetValue<string>(), Is.EqualTo(Query));
        Assert.That(req["temperature"]!.GetValue<double>(), Is.EqualTo(0));
    }

    [TestCase("unsafe\nS1", new[] { "S1: Violent Crimes" })]
    [TestCase(" Unsafe \n S2, S10 \n", new[] { "S2: Non-Violent Crimes", "S10: Hate" })]
    [TestCase("unsafe", new string[0])]
    public async Task LlamaGuard_ReadsUnsafe_WithItsCategories(string reply, string[] categories)
    {
        using var s = new ScriptedChatServer();
        s.Enqueue(Says(reply));
        using var g = Guard(s, "llamaguard");
        var r = await Judge(g, UnknownVerdictPolicy.Safe);
        Assert.That((r.Verdict, r.VerdictParsed), Is.EqualTo((Verdict.Unsafe, true)));
        Assert.That(r.Categories, Is.EqualTo(categories));
    }

    [TestCase("")]
    [TestCase("I cannot help with classifying this.")]
    [TestCase("safe\nbut be careful")]
    [TestCase("unsafe\nviolence")]
    public async Task LlamaGuard_AnUnreadableReply_FailsClosed_AndIsRecordedAsUnparsed(string reply)
    {
        using var s = new ScriptedChatServer();
        s.Enqueue(Says(reply));
        using var g = Guard(s, "llamaguard");
        var r = await Judge(g);
        Assert.That((r.Verdict, r.VerdictParsed), Is.EqualTo((Verdict.Unsafe, false)));
        Assert.That(r.Rationale, Is.Not.Empty, "why it was not read is recorded");
        s.Enqueue(Says(reply));
        Assert.ThrowsAsync<JudgeException>(() => Judge(g, UnknownVerdictPolicy.Error));
    }

    [Test]
    public void LlamaGuard_ResponseRole_PutsTheAnswerAfterTheUserTurn()
    {
        var calls = JudgeFormats.Get("llamaguard").Calls(JudgeRole.ResponseScore, Query, (Png, "image/png"), "Use a whetstone.");
        var m = calls.Single().Messages;
        Assert.That(m.Select(x => x.Role.Value), Is.EqualTo(new[] { "user", "assistant" }));
        Assert.That(m[1].Text, Is.EqualTo("Use a whetstone."));
    }

    [Test]
    public async Task LlavaGuard_SendsImageAndPolicy_AndReadsJsonInsideText()
    {
        using var s = new ScriptedChatServer();
        s.Enqueue(Says("Here is my assessment:\n```json\n{\"rating\": \"Unsafe\", \"category\": \"O2: Violence, Harm, or Cruelty\", \"rationale\": \"A knife {sharp} near a child.\"}\n```"));
        using var g = Guard(s, "llavaguard");
        var r = await Judge(g, UnknownVerdictPolicy.Safe);
        Assert.That((r.Verdict, r.VerdictParsed), Is.EqualTo((Verdict.Unsafe, true)));
        Assert.That(r.Categories, Is.EqualTo(new[] { "O2: Violence, Harm, or Cruelty" }));
        Assert.That(r.Rationale, Is.EqualTo("A knife {sharp} near a child."));
        s.Requests.TryDequeue(out var req);
        var content = Content(req);
        Assert.That(content[0]!["type"]!.GetValue<string>(), Is.EqualTo("image_url"));
        Assert.That(content[1]!["text"]!.GetValue<string>(), Is.EqualTo(LlavaGuardFormat.Policy));
        Assert.That(content.ToJsonString(), Does.Not.Contain(Query), "LlavaGuard rates the image against its policy, not the query");
    }

    [TestCase("{\"rating\": \"Safe\", \"category\": \"NA: None applying\", \"rationale\": \"A kitchen.\"}", Verdict.Safe, true)]
    [TestCase("{\"rating\": \"Maybe\", \"category\": \"O1\"}", Verdict.Unsafe, false)]
    [TestCase("{\"rating\": \"Safe\"", Verdict.Unsafe, false)]
    [TestCase("I'm sorry, I can't assess this image.", Verdict.Unsafe, false)]
    [TestCase("", Verdict.Unsafe, false)]
    public async Task LlavaGuard_ReadsRatings_AndFailsClosed(string reply, Verdict verdict, bool parsed)
    {
        using var s = new ScriptedChatServer();
        s.Enqueue(Says(reply));
        using var g = Guard(s, "llavaguard");
        var r = await Judge(g);
        Assert.That((r.Verdict, r.VerdictParsed), Is.EqualTo((verdict, parsed)));
        Assert.That(r.Categories, Is.Empty);
    }

    [Test]
    public async Task ShieldGemma_AsksEachPolicyWithLogprobs_AndScoresPYes()
    {
        using var s = new ScriptedChatServer();
        s.Enqueue(WithLogProbs("No", Math.Log(0.1), Math.Log(0.9)), WithLogProbs("No", Math.Log(0.2), Math.Log(0.8)), WithLogProbs("Yes", Math.Log(0.7), Math.Log(0.3)));
        using var g = Guard(s, "shieldgemma");
        var r = await Judge(g, UnknownVerdictPolicy.Safe);
        Assert.That((r.Verdict, r.VerdictParsed), Is.EqualTo((Verdict.Unsafe, true)));
        Assert.That(r.Categories, Is.EqualTo(new[] { "violence" }));
        Assert.That(r.Score, Is.EqualTo(0.7).Within(1e-6), "log-probabilities travel as 32-bit floats");
        var requests = s.Requests.ToArray();
        Assert.That(requests, Has.Length.EqualTo(3));
        for (int i = 0; i < 3; i++)
        {
            Assert.That(requests[i]!["logprobs"]!.GetValue<bool>(), Is.True);
            Assert.That(requests[i]!["top_logprobs"]!.GetValue<int>(), Is.EqualTo(EndpointJudge.GuardTopLogProbs));
            Assert.That(Content(requests[i])[1]!["text"]!.GetValue<string>(), Is.EqualTo(ShieldGemmaFormat.Policy(ShieldGemmaFormat.PolicyNames[i])));
        }
        Assert.That(Content(requests[0])[1]!["text"]!.GetValue<string>(), Does.StartWith("No Dangerous Content: The image shall not contain content that facilitates"));
    }

    [Test]
    public async Task ShieldGemma_WithoutLogprobs_IsUnknown_NotReadFromTheText()
    {
        using var s = new ScriptedChatServer();
        s.Enqueue(Says("No"), Says("No"), Says("No"));
        using var g = Guard(s, "shieldgemma");
        var r = await Judge(g);
        Assert.That((r.Verdict, r.VerdictParsed), Is.EqualTo((Verdict.Unsafe, false)));
        Assert.That(r.Rationale, Does.Contain("log-probabilities"));
        var low = JudgeFormats.Get("shieldgemma").Read(JudgeRole.SceneVerdict,
            Enumerable.Range(0, 3).Select(_ => new GuardReply("No", [("Yes", Math.Log(0.01)), ("No", Math.Log(0.99))])).ToArray());
        Assert.That((low.Verdict, low.Score), Is.EqualTo(((Verdict?)Verdict.Safe, (double?)0.01)).Using<(Verdict?, double?)>((a, b) =>
            a.Item1 == b.Item1 && Math.Abs(a.Item2!.Value - b.Item2!.Value) < 1e-9));
    }

    [Test]
    public void Formats_SayWhichRolesTheyServe_AtOptionTime()
    {
        var ex = Assert.Throws<ArgumentException>(() => JudgeFormats.Get("llavaguard").CheckRole(JudgeRole.ResponseScore, "--scorer-format"));
        Assert.That(ex!.Message, Does.Contain("llavaguard").And.Contain("llamaguard"));
        Assert.Throws<ArgumentException>(() => JudgeFormats.Get("nope"));
        var local = Assert.Throws<ArgumentException>(() => SceneJudgeSpecs.CheckFormat("self", "llamaguard"));
        Assert.That(local!.Message, Does.Contain("openai:MODEL"));
        Assert.DoesNotThrow(() => SceneJudgeSpecs.CheckFormat("self", "safecode"));
        Assert.DoesNotThrow(() => SceneJudgeSpecs.CheckFormat("openai:meta-llama/Llama-Guard-4-12B", "llamaguard"));
        Assert.That(LlamaGuardFormat.Categories["S13"], Is.EqualTo("Elections"));
    }

    [Test, NonParallelizable]
    public void Generate_WithAGuardJudge_RecordsItsFormatAndCategories()
    {
        var model = Path.Combine(TestPaths.Root, "weights", "safescenes-tiny");
        using var s = new ScriptedChatServer();
        s.Enqueue(Says("unsafe\nS1"));
        var saved = (Environment.GetEnvironmentVariable("SAFECODE_JUDGE_BASE_URL"), Environment.GetEnvironmentVariable("SAFECODE_JUDGE_API_KEY"));
        Environment.SetEnvironmentVariable("SAFECODE_JUDGE_BASE_URL", s.BaseUrl);
        Environment.SetEnvironmentVariable("SAFECODE_JUDGE_API_KEY", "k");
        try
        {
            var o = new StringWriter();
            var e = new StringWriter();
            int code = SafeCoDe.Cli.Cli.Run(["generate", "--model", model, "--image", Path.Combine(model, "example.png"), "--prompt", Query,
                "--judge", "openai:guard-model", "--judge-format", "llamaguard", "--max-new-tokens", "4", "--seed", "1", "--device", "cpu", "--json"], o, e);
            Assert.That(code, Is.EqualTo(0), e.ToString());
            var j = JsonNode.Parse(o.ToString())!;
            Assert.That(j["verdict"]!.GetValue<string>(), Is.EqualTo("unsafe"));
            Assert.That(j["judge"]!.GetValue<string>(), Is.EqualTo("openai:guard-model [llamaguard]"));
            Assert.That(j["judge_format"]!.GetValue<string>(), Is.EqualTo("llamaguard"));
            Assert.That(j["judge_categories"]!.AsArray().Select(x => x!.GetValue<string>()), Is.EqualTo(new[] { "S1: Violent Crimes" }));
            var bad = new StringWriter();
            Assert.That(SafeCoDe.Cli.Cli.Run(["generate", "--model", model, "--prompt", Query, "--judge", "self", "--judge-format", "llamaguard"], new StringWriter(), bad), Is.EqualTo(2));
            Assert.That(bad.ToString(), Does.Contain("--judge-format llamaguard needs an endpoint judge"));
        }
        finally
        {
            Environment.SetEnvironmentVariable("SAFECODE_JUDGE_BASE_URL", saved.Item1);
            Environment.SetEnvironmentVariable("SAFECODE_JUDGE_API_KEY", saved.Item2);
        }
    }

    [Test]
    public async Task ACachedGuardVerdict_ReplaysItsCategories()
    {
        var dir = TestPaths.NewTempDir();
        try
        {
            using var s = new ScriptedChatServer();
            s.Enqueue(Says("unsafe\nS9"));
            var path = Path.Combine(dir, "cache.jsonl");
            var first = await new CachedJudge(path, Guard(s, "llamaguard")).JudgeAsync(new JudgeRequest(Query, Png));
            var again = await new CachedJudge(path).JudgeAsync(new JudgeRequest(Query, Png));
            Assert.That(again.Categories, Is.EqualTo(first.Categories));
            Assert.That(again.Format, Is.EqualTo("llamaguard"));
        }
        finally { Directory.Delete(dir, true); }
    }
}
