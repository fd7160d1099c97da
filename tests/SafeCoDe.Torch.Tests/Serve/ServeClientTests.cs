using System.ClientModel;
using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;
using Microsoft.Extensions.AI;
using NUnit.Framework;
using OpenAI;
using OpenAI.Chat;
using SafeCoDe.Cli.Serve;
using AiChatMessage = Microsoft.Extensions.AI.ChatMessage;

namespace SafeCoDe.Torch.Tests.Serve;

/// <summary>
/// Issue 16: <c>safecode serve</c> on 127.0.0.1 with the default model, driven by clients nobody here wrote: the
/// official OpenAI .NET SDK, Microsoft.Extensions.AI's OpenAI IChatClient and the npm openai package; plus the
/// <c>safecode</c> extension, models/health/ready/metrics and the structured log.
/// </summary>
[NonParallelizable]
public sealed class ServeClientTests
{
    private SafeCoDeServer _server = null!;
    private readonly LogCapture _log = new();
    private HttpClient _http = null!;
    private string _readyAtStart = "";
    private HttpStatusCode _firstStatus;

    [OneTimeSetUp]
    public async Task Start()
    {
        _server = await ServeTestServer.Start(_log);
        _http = ServeTestServer.Http(_server);
        // a request sent right away waits for the model instead of failing
        var ready = await _http.GetAsync("ready");
        _readyAtStart = JsonNode.Parse(await ready.Content.ReadAsStringAsync())!["status"]!.GetValue<string>();
        var first = await ServeTestServer.Post(_http, ServeTestServer.Body(maxTokens: 2).ToJsonString());
        _firstStatus = first.StatusCode;
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        _http?.Dispose();
        if (_server is not null) await _server.DisposeAsync();
    }

    private ChatClient Sdk(string model = "default") =>
        new(model, new ApiKeyCredential(ServeTestServer.Key), new OpenAIClientOptions { Endpoint = new Uri(_server.BaseAddress, "v1") });

    private static List<OpenAI.Chat.ChatMessage> SdkMessages() =>
        [new UserChatMessage(ChatMessageContentPart.CreateTextPart("What is in the picture?"), ChatMessageContentPart.CreateImagePart(BinaryData.FromBytes(ServeTestServer.Png), "image/png"))];

    [Test]
    public void RequestsSentWhileLoading_WaitForTheModel()
    {
        Assert.That(_readyAtStart, Is.AnyOf("loading", "ready"));
        Assert.That(_firstStatus, Is.EqualTo(HttpStatusCode.OK));
    }

    [Test]
    public async Task OpenAiSdk_NonStreamingAndStreaming_WithImage_Agree()
    {
        var client = Sdk();
        var options = new ChatCompletionOptions { MaxOutputTokenCount = 6, Temperature = 0 };
        ChatCompletion done = await client.CompleteChatAsync(SdkMessages(), options);
        Assert.That(done.Content.Single().Text, Is.Not.Empty);
        Assert.That(done.Model, Is.EqualTo("llava-next-tiny"));
        Assert.That(done.FinishReason, Is.AnyOf(OpenAI.Chat.ChatFinishReason.Stop, OpenAI.Chat.ChatFinishReason.Length));
        Assert.That(done.Usage.OutputTokenCount, Is.InRange(1, 6));
        Assert.That(done.Usage.InputTokenCount, Is.GreaterThan(0));

        var text = new System.Text.StringBuilder();
        ChatTokenUsage? usage = null;
        OpenAI.Chat.ChatFinishReason? finish = null;
        int updates = 0;
        await foreach (var u in client.CompleteChatStreamingAsync(SdkMessages(), options))
        {
            updates++;
            foreach (var part in u.ContentUpdate) text.Append(part.Text);
            usage ??= u.Usage;
            finish ??= u.FinishReason;
        }
        Assert.That(text.ToString(), Is.EqualTo(done.Content.Single().Text), "greedy: the stream spells the same answer");
        Assert.That(updates, Is.GreaterThan(2));
        Assert.That(finish, Is.EqualTo(done.FinishReason));
        Assert.That(usage, Is.Not.Null, "the final usage chunk");
        Assert.That(usage!.OutputTokenCount, Is.EqualTo(done.Usage.OutputTokenCount));
    }

    [Test]
    public async Task ExtensionsAI_OpenAiChatClient_NonStreamingAndStreaming_WithImage()
    {
        IChatClient client = Sdk("llava-next-tiny").AsIChatClient();
        AiChatMessage[] messages = [new(ChatRole.User, [new TextContent("What is in the picture?"), new DataContent(ServeTestServer.Png, "image/png")])];
        var options = new ChatOptions { MaxOutputTokens = 5, Temperature = 0 };
        var r = await client.GetResponseAsync(messages, options);
        Assert.That(r.Text, Is.Not.Empty);
        Assert.That(r.Usage!.OutputTokenCount, Is.InRange(1, 5));
        Assert.That(r.ModelId, Is.EqualTo("llava-next-tiny"));

        var updates = new List<ChatResponseUpdate>();
        await foreach (var u in client.GetStreamingResponseAsync(messages, options)) updates.Add(u);
        var streamed = updates.ToChatResponse();
        Assert.That(streamed.Text, Is.EqualTo(r.Text));
        Assert.That(streamed.Usage?.OutputTokenCount, Is.EqualTo(r.Usage.OutputTokenCount));
        Assert.That(streamed.FinishReason, Is.EqualTo(r.FinishReason));
    }

    [Test]
    public async Task SafeCoDeField_SetsTheVerdict_AndTheResponseCarriesIt()
    {
        var safe = JsonNode.Parse(await (await ServeTestServer.Post(_http, ServeTestServer.Body().ToJsonString())).Content.ReadAsStringAsync())!;
        Assert.That(safe["safecode"]!["verdict"]!.GetValue<string>(), Is.EqualTo("safe"), "the server's judge is fixed:safe");
        Assert.That(safe["safecode"]!["judge"]!.GetValue<string>(), Is.EqualTo("fixed:safe"));
        Assert.That(safe["object"]!.GetValue<string>(), Is.EqualTo("chat.completion"));

        var res = await ServeTestServer.Post(_http, ServeTestServer.Body(maxTokens: 12, safecode: new JsonObject { ["verdict"] = "unsafe" }).ToJsonString());
        Assert.That(res.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        var unsafeAnswer = JsonNode.Parse(await res.Content.ReadAsStringAsync())!;
        var sc = unsafeAnswer["safecode"]!;
        Assert.That(sc["verdict"]!.GetValue<string>(), Is.EqualTo("unsafe"));
        Assert.That(sc["guided_text"]!.GetValue<string>(), Is.Not.Empty);
        Assert.That(sc.AsObject().ContainsKey("caption"));
        var content = unsafeAnswer["choices"]![0]!["message"]!["content"]!.GetValue<string>();
        Assert.That(content, Does.StartWith(sc["guided_text"]!.GetValue<string>().Trim()), "the forced refusal opens the answer");

        var vanilla = JsonNode.Parse(await (await ServeTestServer.Post(_http, ServeTestServer.Body(safecode: new JsonObject { ["mode"] = "vanilla" }).ToJsonString())).Content.ReadAsStringAsync())!;
        Assert.That(vanilla["safecode"]!["mode"]!.GetValue<string>(), Is.EqualTo("vanilla"));
        Assert.That(vanilla["safecode"]!["verdict"], Is.Null, "no judge in vanilla mode");
    }

    [Test]
    public async Task NpmOpenAiPackage_DrivesTheServer()
    {
        var dir = Path.Combine(ServeTestServer.RepoRoot(), "tests", "SafeCoDe.Torch.Tests", "Serve", "node");
        Assert.That(File.Exists(Path.Combine(dir, "package-lock.json")), "the lockfile pins openai@6");
        NodePackages.Ensure(dir, "openai");
        var png = Path.Combine(TestPaths.NewTempDir(), "image.png");
        await File.WriteAllBytesAsync(png, ServeTestServer.Png);
        var psi = new ProcessStartInfo("node", ["client.mjs", new Uri(_server.BaseAddress, "v1").ToString(), ServeTestServer.Key, png])
        {
            WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true,
        };
        Process p;
        try { p = Process.Start(psi)!; }
        catch (System.ComponentModel.Win32Exception ex) { Assert.Fail("node is required for this test and was not found: " + ex.Message); return; }
        using (p)
        {
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(90));
            await p.WaitForExitAsync(cts.Token);
            Assert.That(p.ExitCode, Is.EqualTo(0), await stderr);
            var o = JsonNode.Parse(await stdout)!;
            Assert.That(o["models"]![0]!.GetValue<string>(), Is.EqualTo("llava-next-tiny"));
            Assert.That(o["text"]!.GetValue<string>(), Is.Not.Empty);
            Assert.That(o["safecode"]!["verdict"]!.GetValue<string>(), Is.EqualTo("unsafe"), "the extension field went through the SDK");
            Assert.That(o["usage"]!["completion_tokens"]!.GetValue<int>(), Is.InRange(1, 6));
            Assert.That(o["streamText"]!.GetValue<string>(), Is.Not.Empty);
            Assert.That(o["streamUsage"]!["completion_tokens"]!.GetValue<int>(), Is.InRange(1, 6));
            Assert.That(o["streamFinish"]!.GetValue<string>(), Is.AnyOf("stop", "length"));
            Assert.That(o["unknownModel"]!["status"]!.GetValue<int>(), Is.EqualTo(404));
            Assert.That(o["unknownModel"]!["code"]!.GetValue<string>(), Is.EqualTo("model_not_found"));
        }
    }

    [Test]
    public async Task ModelsHealthReadyMetrics_AndTheLog()
    {
        var models = JsonNode.Parse(await _http.GetStringAsync("v1/models"))!;
        Assert.That(models["data"]![0]!["id"]!.GetValue<string>(), Is.EqualTo("llava-next-tiny"));
        using var anonymous = ServeTestServer.Http(_server, key: null);
        Assert.That((await anonymous.GetAsync("health")).StatusCode, Is.EqualTo(HttpStatusCode.OK), "liveness needs no key");
        Assert.That((await anonymous.GetAsync("ready")).StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That((await anonymous.GetAsync("metrics")).StatusCode, Is.EqualTo(HttpStatusCode.Unauthorized));

        await ServeTestServer.Post(_http, ServeTestServer.Body(maxTokens: 2).ToJsonString());
        var metrics = await _http.GetStringAsync("metrics");
        Assert.That(metrics, Does.Match(@"safecode_requests_total\{path=""/v1/chat/completions"",status=""200""\} [1-9]"));
        Assert.That(metrics, Does.Match(@"safecode_completion_tokens_total [1-9]"));
        Assert.That(metrics, Does.Contain("# TYPE safecode_request_duration_seconds histogram"));
        Assert.That(metrics, Does.Match(@"safecode_request_duration_seconds_bucket\{le=""\+Inf""\} [1-9]"));
        Assert.That(metrics, Does.Contain("safecode_queue_depth 0"));
        Assert.That(metrics, Does.Contain("safecode_model_ready 1"));
        Assert.That(metrics, Does.Match(@"safecode_tokens_per_second [0-9.]+"));

        var lines = _log.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!).ToList();
        var chat = lines.Where(l => l["event"]?.GetValue<string>() == "request" && l["path"]!.GetValue<string>() == "/v1/chat/completions" && l["status"]!.GetValue<int>() == 200).ToList();
        Assert.That(chat, Is.Not.Empty);
        Assert.That(chat[0]["completion_tokens"]!.GetValue<int>(), Is.GreaterThan(0));
        Assert.That(chat[0]["ms"]!.GetValue<double>(), Is.GreaterThan(0));
        var all = _log.ToString();
        Assert.That(all, Does.Not.Contain(ServeTestServer.Key), "no keys in the log");
        Assert.That(all, Does.Not.Contain(Convert.ToBase64String(ServeTestServer.Png)[..40]), "no image bytes in the log");
    }
}
