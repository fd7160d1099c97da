using System.ClientModel;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using NUnit.Framework;
using OpenAI;
using OpenAI.Chat;
using SafeCoDe.Cli.Serve;

namespace SafeCoDe.Torch.Tests.Serve;

/// <summary>
/// <c>logprobs</c> / <c>top_logprobs</c> on <c>safecode serve</c> over the tiny model: OpenAI's schema in replies and
/// stream chunks (the chunks' tokens are the reply's), greedy picks are the top-1, the count is honoured, a forced
/// refusal phrase is certain, out-of-range and unsupported requests are 400s, a request without them is unchanged,
/// and the official OpenAI .NET SDK reads them. (That each value is the log of the distribution picked from is
/// checked against known logits in <c>Decoding.TokenLogprobTests</c>.)
/// </summary>
[NonParallelizable]
public sealed class ServeLogprobsTests
{
    private SafeCoDeServer _server = null!;
    private readonly LogCapture _log = new();
    private HttpClient _http = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        _server = await ServeTestServer.Start(_log);
        _http = ServeTestServer.Http(_server);
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        _http?.Dispose();
        if (_server is not null) await _server.DisposeAsync();
    }

    private static JsonObject Vanilla(int maxTokens = 8, bool stream = false, int? top = 3)
    {
        var b = ServeTestServer.Body(maxTokens: maxTokens, image: false, safecode: new JsonObject { ["mode"] = "vanilla" }, stream: stream);
        if (top is { } k) { b["logprobs"] = true; b["top_logprobs"] = k; }
        return b;
    }

    private async Task<JsonObject> Complete(JsonObject body)
    {
        var r = await ServeTestServer.Post(_http, body.ToJsonString());
        var text = await r.Content.ReadAsStringAsync();
        Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.OK), text);
        return JsonNode.Parse(text)!.AsObject();
    }

    /// <summary>The stream's chunks (without the usage chunk and [DONE]).</summary>
    private async Task<List<JsonObject>> Chunks(JsonObject body)
    {
        var r = await ServeTestServer.Post(_http, body.ToJsonString());
        Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        var chunks = new List<JsonObject>();
        foreach (var line in (await r.Content.ReadAsStringAsync()).Split('\n'))
        {
            if (!line.StartsWith("data: {", StringComparison.Ordinal)) continue;
            var o = JsonNode.Parse(line[6..])!.AsObject();
            if (o["choices"]!.AsArray().Count > 0) chunks.Add(o);
        }
        return chunks;
    }

    private static string Summary(JsonNode? item) =>
        $"{item!["token"]}|{item["logprob"]!.GetValue<double>():R}|{string.Join(",", item["top_logprobs"]!.AsArray().Select(t => $"{t!["token"]}:{t["logprob"]!.GetValue<double>():R}"))}";

    [Test]
    public async Task Greedy_EachTokenHasItsLogprob_TopSortedAndCounted_TheChosenIsTheTop1_BytesAreItsText()
    {
        var r = await Complete(Vanilla(top: 3));
        var choice = r["choices"]![0]!;
        var content = choice["logprobs"]!["content"]!.AsArray();
        Assert.That(choice["logprobs"]!["refusal"], Is.Null);
        int completion = r["usage"]!["completion_tokens"]!.GetValue<int>();
        bool eos = choice["finish_reason"]!.GetValue<string>() == "stop";
        Assert.That(content, Has.Count.EqualTo(completion - (eos ? 1 : 0)), "one entry per answer token (the end-of-sequence token is not one)");
        foreach (var item in content)
        {
            double lp = item!["logprob"]!.GetValue<double>();
            var top = item["top_logprobs"]!.AsArray();
            Assert.That(lp, Is.LessThanOrEqualTo(0));
            Assert.That(top, Has.Count.EqualTo(3), "top_logprobs: 3");
            Assert.That(top.Select(t => t!["logprob"]!.GetValue<double>()), Is.Ordered.Descending);
            Assert.That(top[0]!["token"]!.GetValue<string>(), Is.EqualTo(item["token"]!.GetValue<string>()), "greedy: the chosen token is the most likely");
            Assert.That(top[0]!["logprob"]!.GetValue<double>(), Is.EqualTo(lp));
            Assert.That(item["bytes"]!.AsArray().Select(b => (byte)b!.GetValue<int>()), Is.EqualTo(Encoding.UTF8.GetBytes(item["token"]!.GetValue<string>())));
        }
        var spelled = string.Concat(content.Select(i => i!["token"]!.GetValue<string>()));
        if (!spelled.Contains('\uFFFD')) // a token that is part of a character has no text of its own (docs/serve.md)
            Assert.That(spelled.Trim(), Is.EqualTo(choice["message"]!["content"]!.GetValue<string>()), "the tokens spell the answer");

        var none = await Complete(Vanilla(top: 0));
        Assert.That(none["choices"]![0]!["logprobs"]!["content"]!.AsArray().Select(i => i!["top_logprobs"]!.AsArray().Count), Is.All.EqualTo(0), "top_logprobs: 0");
        Assert.That(none["choices"]![0]!["logprobs"]!["content"]!.AsArray().Select(i => i!["logprob"]!.GetValue<double>()),
            Is.EqualTo(content.Select(i => i!["logprob"]!.GetValue<double>())));
    }

    [Test]
    public async Task WithoutLogprobs_TheFieldIsNull_AndTheAnswerIsTheSame()
    {
        var with = await Complete(Vanilla(top: 2));
        var without = await Complete(Vanilla(top: null));
        Assert.That(without["choices"]![0]!.AsObject().ContainsKey("logprobs"), Is.True);
        Assert.That(without["choices"]![0]!["logprobs"], Is.Null);
        Assert.That(without["choices"]![0]!["message"]!["content"]!.GetValue<string>(), Is.EqualTo(with["choices"]![0]!["message"]!["content"]!.GetValue<string>()));
        Assert.That(without["usage"]!.ToJsonString(), Is.EqualTo(with["usage"]!.ToJsonString()));
    }

    [Test]
    public async Task Streaming_TheChunksTokensAreTheReplysTokens_EachChunkCarriesItsOwn()
    {
        var whole = await Complete(Vanilla(maxTokens: 10, top: 2));
        var expected = whole["choices"]![0]!["logprobs"]!["content"]!.AsArray().Select(Summary).ToList();
        var chunks = await Chunks(Vanilla(maxTokens: 10, stream: true, top: 2));
        var streamed = new List<string>();
        var text = new StringBuilder();
        foreach (var c in chunks)
        {
            var choice = c["choices"]![0]!;
            string? piece = choice["delta"]!["content"]?.GetValue<string>();
            bool isRoleOrFinal = choice["delta"]!["role"] is not null || choice["finish_reason"] is not null;
            if (isRoleOrFinal) { Assert.That(choice["logprobs"], Is.Null, "the role chunk and the final chunk carry no tokens"); continue; }
            var items = choice["logprobs"]!["content"]!.AsArray();
            Assert.That(piece is { Length: > 0 } || items.Count > 0, Is.True, "no empty chunks");
            text.Append(piece);
            streamed.AddRange(items.Select(Summary));
            var spelled = string.Concat(items.Select(i => i!["token"]!.GetValue<string>()));
            if (!spelled.Contains('\uFFFD')) Assert.That(spelled, Is.EqualTo(piece), "a chunk's tokens spell its text");
        }
        Assert.That(streamed, Is.EqualTo(expected));
        Assert.That(text.ToString().Trim(), Is.EqualTo(whole["choices"]![0]!["message"]!["content"]!.GetValue<string>()));
    }

    [Test]
    public async Task ForcedRefusalPhrase_ItsTokensAreCertain_TheContinuationsAreNot()
    {
        var body = ServeTestServer.Body(maxTokens: 14, safecode: new JsonObject { ["verdict"] = "unsafe" });
        body["logprobs"] = true;
        body["top_logprobs"] = 2;
        var r = await Complete(body);
        var sc = r["safecode"]!;
        Assert.That(sc["forced_phrase"]?.GetValue<string>(), Is.Not.Null.And.Not.Empty, "the faithful preset forces a refusal phrase on an unsafe verdict");
        int guided = sc["guided_tokens"]!.GetValue<int>();
        var content = r["choices"]![0]!["logprobs"]!["content"]!.AsArray();
        Assert.That(guided, Is.GreaterThan(0).And.LessThanOrEqualTo(content.Count));
        foreach (var item in content.Take(guided))
        {
            Assert.That(item!["logprob"]!.GetValue<double>(), Is.EqualTo(0.0), "forced: the method's distribution is all on the token");
            Assert.That(item["top_logprobs"]!.AsArray().Select(t => t!["token"]!.GetValue<string>()), Is.EqualTo(new[] { item["token"]!.GetValue<string>() }));
        }
        Assert.That(string.Concat(content.Take(guided).Select(i => i!["token"]!.GetValue<string>())).Trim(), Is.EqualTo(sc["guided_text"]!.GetValue<string>().Trim()));
        Assert.That(content.Skip(guided).Select(i => i!["logprob"]!.GetValue<double>()), Is.All.LessThanOrEqualTo(0));
    }

    [TestCase("{\"top_logprobs\": 21, \"logprobs\": true}", "top_logprobs", "integer_above_max_value")]
    [TestCase("{\"top_logprobs\": -1, \"logprobs\": true}", "top_logprobs", "integer_below_min_value")]
    [TestCase("{\"top_logprobs\": 2}", "top_logprobs", "invalid_value")]
    [TestCase("{\"top_logprobs\": 2, \"logprobs\": false}", "top_logprobs", "invalid_value")]
    [TestCase("{\"logprobs\": \"yes\"}", "logprobs", "invalid_type")]
    [TestCase("{\"logprobs\": true, \"safecode\": {\"mode\": \"self-exam\"}}", "logprobs", "logprobs_unsupported")]
    public async Task OutOfRangeOrUnsupported_Is400_NamingTheField(string fields, string param, string code)
    {
        var body = ServeTestServer.Body(maxTokens: 2, image: false);
        foreach (var (k, v) in JsonNode.Parse(fields)!.AsObject()) body[k] = v?.DeepClone();
        var r = await ServeTestServer.Post(_http, body.ToJsonString());
        var e = JsonNode.Parse(await r.Content.ReadAsStringAsync())!["error"]!;
        Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.BadRequest), e.ToJsonString());
        Assert.That(e["param"]!.GetValue<string>(), Is.EqualTo(param));
        Assert.That(e["code"]!.GetValue<string>(), Is.EqualTo(code));
        Assert.That(e["type"]!.GetValue<string>(), Is.EqualTo("invalid_request_error"));
    }

    [Test]
    public async Task OpenAiSdk_ReadsTheLogprobs_OfRepliesAndStreams()
    {
        var client = new ChatClient("default", new ApiKeyCredential(ServeTestServer.Key), new OpenAIClientOptions { Endpoint = new Uri(_server.BaseAddress, "v1") });
        List<OpenAI.Chat.ChatMessage> messages =
            [new UserChatMessage(ChatMessageContentPart.CreateTextPart("What is in the picture?"), ChatMessageContentPart.CreateImagePart(BinaryData.FromBytes(ServeTestServer.Png), "image/png"))];
        // a seed: the noised image of SafeCoDe's contrast is drawn from it, and the log-probabilities depend on it
#pragma warning disable OPENAI001 // the SDK marks Seed as experimental
        var options = new ChatCompletionOptions { MaxOutputTokenCount = 8, Temperature = 0, IncludeLogProbabilities = true, TopLogProbabilityCount = 3, Seed = 11 };
        var plainOptions = new ChatCompletionOptions { MaxOutputTokenCount = 8, Temperature = 0, Seed = 11 };
#pragma warning restore OPENAI001
        ChatCompletion done = await client.CompleteChatAsync(messages, options);
        var lps = done.ContentTokenLogProbabilities;
        Assert.That(lps, Is.Not.Empty, "SafeCoDe's guided and continued tokens, through the SDK's own parser");
        foreach (var t in lps)
        {
            Assert.That(t.LogProbability, Is.LessThanOrEqualTo(0f));
            Assert.That(t.TopLogProbabilities, Has.Count.InRange(1, 3));
            Assert.That(t.TopLogProbabilities.Select(x => x.LogProbability), Is.Ordered.Descending);
            Assert.That(t.Utf8Bytes?.ToArray(), Is.EqualTo(Encoding.UTF8.GetBytes(t.Token)));
        }
        if (!lps.Any(t => t.Token.Contains('\uFFFD'))) Assert.That(string.Concat(lps.Select(t => t.Token)).Trim(), Is.EqualTo(done.Content.Single().Text));

        var streamed = new List<ChatTokenLogProbabilityDetails>();
        await foreach (var u in client.CompleteChatStreamingAsync(messages, options)) streamed.AddRange(u.ContentTokenLogProbabilities);
        Assert.That(streamed.Select(t => (t.Token, t.LogProbability)), Is.EqualTo(lps.Select(t => (t.Token, t.LogProbability))));

        ChatCompletion plain = await client.CompleteChatAsync(messages, plainOptions);
        Assert.That(plain.ContentTokenLogProbabilities, Is.Empty);
        Assert.That(plain.Content.Single().Text, Is.EqualTo(done.Content.Single().Text), "asking for log-probabilities changes no token");
    }

    [Test]
    public async Task TheShieldGemmaFormatsCall_ReadsTheFirstTokensTop20_FromThisServer()
    {
        using var endpoint = new SafeCoDe.Torch.Safety.EndpointJudge(new SafeCoDe.Torch.Safety.EndpointJudgeOptions
        {
            BaseUrl = new Uri(_server.BaseAddress, "v1").ToString(), ApiKey = ServeTestServer.Key, Model = "default", Timeout = TimeSpan.FromSeconds(60), MaxRetries = 0,
        });
        var format = SafeCoDe.Torch.Safety.Guards.JudgeFormats.Get("shieldgemma");
        var call = format.Calls(SafeCoDe.Torch.Safety.Guards.JudgeRole.SceneVerdict, "How do I sharpen this?", (ServeTestServer.Png, "image/png"), null)[0];
        Assert.That(call.LogProbs, Is.True);
        var reply = await endpoint.GuardAsync(call);
        Assert.That(reply.FirstTokenTop, Is.Not.Null, "the guard call got the first token's log-probabilities");
        var top = reply.FirstTokenTop!;
        Assert.That(top, Has.Count.EqualTo(SafeCoDe.Torch.Safety.EndpointJudge.GuardTopLogProbs + 1), "its top 20, then the token itself");
        Assert.That(top.Take(20).Select(t => t.LogProb), Is.Ordered.Descending.And.All.LessThanOrEqualTo(0));
        Assert.That(top[^1], Is.EqualTo(top[0]), "greedy: the reply's token is the most likely one");
    }
}
