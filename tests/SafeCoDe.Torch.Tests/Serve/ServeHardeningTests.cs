using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using NUnit.Framework;
using SafeCoDe.Cli.Serve;
using SafeCoDe.Torch.Decoding.Methods;
using SafeCoDe.Torch.Tests.Hardening;

namespace SafeCoDe.Torch.Tests.Serve;

/// <summary>
/// Issue 33 on the server: <c>file:</c> images (--allow-file-urls) are read from regular files only, within the
/// limit, and errors about them never echo the file's bytes.
/// </summary>
[NonParallelizable]
public sealed class ServeFileUrlTests
{
    private SafeCoDeServer _server = null!;
    private HttpClient _http = null!;
    private string _dir = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        _dir = TestPaths.NewTempDir();
        _server = await ServeTestServer.Start(new LogCapture(), key: null, timeoutSeconds: 20, configure: o => o with { AllowFileUrls = true, MaxImageBytes = 1 << 20 });
        _http = ServeTestServer.Http(_server, key: null);
        await _server.Loaded;
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        _http?.Dispose();
        if (_server is not null) await _server.DisposeAsync();
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    private async Task<(HttpStatusCode Status, string Message, TimeSpan Took)> PostFile(string url)
    {
        var b = ServeTestServer.Body(maxTokens: 2);
        b["messages"]![0]!["content"]![1]!["image_url"]!["url"] = url;
        var sw = Stopwatch.StartNew();
        var r = await ServeTestServer.Post(_http, b.ToJsonString());
        var text = await r.Content.ReadAsStringAsync();
        TestContext.Out.WriteLine($"{url}: {(int)r.StatusCode} {text}");
        var message = r.StatusCode == HttpStatusCode.OK ? "" : JsonNode.Parse(text)!["error"]!["message"]!.GetValue<string>();
        return (r.StatusCode, message, sw.Elapsed);
    }

    [Test]
    public async Task AFileThatIsNotAnImage_IsRefused_WithoutEchoingItsBytes()
    {
        var secret = Path.Combine(_dir, "notes.png");
        File.WriteAllText(secret, "SECRET-TOKEN=hunter2\nroot:x:0:0\n");
        var (status, message, _) = await PostFile(new Uri(secret).AbsoluteUri);
        Assert.That(status, Is.EqualTo(HttpStatusCode.BadRequest));
        var hex = string.Join(' ', Encoding.ASCII.GetBytes("SECRET").Select(b => b.ToString("X2")));
        Assert.That(message, Does.Not.Contain(hex).And.Not.Contain("53 45").And.Not.Contain("SECRET").And.Not.Contain("hunter2"));
        Assert.That(message, Does.Contain("not a JPEG, PNG"));

        // a PNG signature followed by text: the container check's chunk names come from the file, so they are not shown either
        var forged = Path.Combine(_dir, "forged.png");
        File.WriteAllBytes(forged, [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, .. Encoding.ASCII.GetBytes("\0\0\0\rPASSWORDhunter2hunter2")]);
        (status, message, _) = await PostFile(new Uri(forged).AbsoluteUri);
        Assert.That(status, Is.EqualTo(HttpStatusCode.BadRequest));
        Assert.That(message, Does.Not.Contain("PASS").And.Not.Contain("hunter2"));
    }

    [Test]
    public async Task AFifoOrADevice_IsRefusedAtOnce_NotAfterTheTimeout()
    {
        var fifo = Path.Combine(_dir, "pipe.png");
        Hostile.MkFifo(fifo);
        foreach (var url in new[] { new Uri(fifo).AbsoluteUri, "file:///dev/zero" })
        {
            var (status, message, took) = await PostFile(url);
            Assert.That(status, Is.EqualTo(HttpStatusCode.BadRequest), url);
            Assert.That(message, Does.Contain("not a regular file"), url);
            Assert.That(took, Is.LessThan(TimeSpan.FromSeconds(5)), url + ": refused before opening, not at the 20 s timeout");
        }
        var (missing, mm, _) = await PostFile(new Uri(Path.Combine(_dir, "none.png")).AbsoluteUri);
        Assert.That(missing, Is.EqualTo(HttpStatusCode.BadRequest));
        Assert.That(mm, Does.Contain("does not exist"));
    }

    [Test]
    public async Task AFileOverTheLimit_Is413()
    {
        var big = Path.Combine(_dir, "big.png");
        var bytes = new byte[(1 << 20) + 10];
        ServeTestServer.Png.CopyTo(bytes, 0);
        File.WriteAllBytes(big, bytes);
        var (status, _, _) = await PostFile(new Uri(big).AbsoluteUri);
        Assert.That(status, Is.EqualTo(HttpStatusCode.RequestEntityTooLarge));
        var ok = Path.Combine(_dir, "ok.png");
        File.WriteAllBytes(ok, ServeTestServer.Png);
        Assert.That((await PostFile(new Uri(ok).AbsoluteUri)).Status, Is.EqualTo(HttpStatusCode.OK), "a real image file still works");
    }
}

/// <summary>
/// Issue 33, item 3: the operator decides what clients may set. Against a <c>--judge fixed:unsafe</c> server, every
/// field that weakens safety is refused with a 403 naming it unless the server allows it (<c>--client-overrides all</c>);
/// values that change nothing or only tighten (verdict unsafe, the server's own value) always pass.
/// </summary>
[NonParallelizable]
public sealed class ServeOverrideTests
{
    private static readonly JsonObject[] Weakening =
    [
        new() { ["verdict"] = "safe" }, new() { ["judge"] = "fixed:safe" }, new() { ["judge"] = "self" }, new() { ["mode"] = "vanilla" },
        new() { ["mode"] = "vcd" }, new() { ["unknown_verdict"] = "safe" }, new() { ["max_steps"] = 1 }, new() { ["refusal_top_k"] = 1 },
        new() { ["lambda_boost"] = 0 }, new() { ["lambda_supp"] = 9 }, new() { ["unsafe_strategy"] = "soft-boost" }, new() { ["preset"] = "paper" },
        new() { ["verdict"] = "unsafe", ["judge"] = "fixed:safe" },
    ];

    private static readonly JsonObject[] Harmless =
    [
        new() { ["verdict"] = "unsafe" }, new() { ["judge"] = "fixed:unsafe" }, new() { ["judge"] = "server" }, new() { ["mode"] = "safecode" },
        new() { ["max_steps"] = 5 }, new() { ["unknown_verdict"] = "error" }, new() { ["alpha"] = 0.3 }, new() { ["verdict"] = null },
    ];

    private static readonly JsonObject[] DecodingFields = [new() { ["alpha"] = 0.6 }, new() { ["noise_std"] = 0.2 }, new() { ["greedy"] = true }, new() { ["top_k"] = 5 }];

    private static async Task<(HttpStatusCode Status, JsonNode Body)> Post(HttpClient h, JsonObject safecode)
    {
        var r = await ServeTestServer.Post(h, ServeTestServer.Body(maxTokens: 2, safecode: (JsonObject)safecode.DeepClone()).ToJsonString());
        return (r.StatusCode, JsonNode.Parse(await r.Content.ReadAsStringAsync())!);
    }

    [TestCase(ClientOverrides.None)]
    [TestCase(ClientOverrides.Decoding)]
    [TestCase(ClientOverrides.All)]
    public async Task ThePolicyDecidesWhatClientsMaySet(ClientOverrides policy)
    {
        await using var server = await ServeTestServer.Start(new LogCapture(), key: null, judge: "fixed:unsafe", configure: o => o with { ClientOverrides = policy });
        await server.Loaded;
        using var h = ServeTestServer.Http(server, key: null);
        foreach (var sc in Weakening)
        {
            var (status, body) = await Post(h, sc);
            if (policy == ClientOverrides.All) { Assert.That(status, Is.EqualTo(HttpStatusCode.OK), sc.ToJsonString()); continue; }
            Assert.That(status, Is.EqualTo(HttpStatusCode.Forbidden), sc.ToJsonString());
            var e = body["error"]!;
            Assert.That((string?)e["type"], Is.EqualTo("permission_error"));
            Assert.That((string?)e["code"], Is.EqualTo("override_not_allowed"));
            Assert.That((string?)e["param"], Does.StartWith("safecode."));
            Assert.That((string?)e["message"], Does.Contain("--client-overrides all"));
        }
        foreach (var sc in Harmless)
        {
            var (status, body) = await Post(h, sc);
            Assert.That(status, Is.EqualTo(HttpStatusCode.OK), sc.ToJsonString() + " " + body.ToJsonString());
            Assert.That((string?)body["safecode"]!["verdict"], Is.EqualTo("unsafe"), "the server's judge still rules");
        }
        foreach (var sc in DecodingFields)
            Assert.That((await Post(h, sc)).Status, Is.EqualTo(policy == ClientOverrides.None ? HttpStatusCode.Forbidden : HttpStatusCode.OK), sc.ToJsonString());
        if (policy == ClientOverrides.All)
        {
            var (_, body) = await Post(h, new JsonObject { ["verdict"] = "safe" });
            Assert.That((string?)body["safecode"]!["verdict"], Is.EqualTo("safe"), "an operator who allows it gets the old behaviour");
        }
    }

    [Test]
    public void EveryRequestFieldIsClassified_FromTheMethodsDescriptors()
    {
        // every option of every registered method has a class (a method added later is covered by its descriptors)
        foreach (var method in DecodingMethods.All)
        {
            var defaults = method.Defaults(null);
            foreach (var option in method.Options)
                Assert.That(ClientOverridePolicy.ClassOf(option.JsonName, defaults),
                    Is.EqualTo(option.WeakensSafety ? OverrideClass.Safety : OverrideClass.Decoding), $"{method.Name}: {option.JsonName}");
        }
        var safecode = DecodingMethods.Defaults(DecodingMethods.Default);
        Assert.That(new[] { "mode", "judge", "verdict", "preset", "unknown_verdict", "max_steps", "refusal_top_k", "lambda_boost", "lambda_supp",
                "unsafe_strategy", "refusal_phrases" }.Select(n => ClientOverridePolicy.ClassOf(n, safecode)), Is.All.EqualTo(OverrideClass.Safety));
        Assert.That(new[] { "alpha", "noise_std", "greedy", "top_k" }.Select(n => ClientOverridePolicy.ClassOf(n, safecode)), Is.All.EqualTo(OverrideClass.Decoding));
        Assert.That(ClientOverridePolicy.ClassOf("frobnicate", safecode), Is.Null);
        var e = Assert.Throws<ApiException>(() => OpenAiProtocol.Parse(JsonDocument.Parse(
            "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"safecode\": {\"frobnicate\": 1}}").RootElement, safecode, 10, false, false));
        Assert.That(e!.Status, Is.EqualTo(400), "a field no method has never reaches the policy");
    }
}
