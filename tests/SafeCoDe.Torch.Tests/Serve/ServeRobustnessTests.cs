using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using NUnit.Framework;
using SafeCoDe.Cli.Serve;
using TorchSharp;

namespace SafeCoDe.Torch.Tests.Serve;

/// <summary>
/// Issue 16: bad input is a proper HTTP error (never a 500 or a stack trace), a vanishing client cancels its
/// generation, the bounded queue answers 429, and a load of 64 requests from 16 clients is answered exactly once each
/// without leaking tensors or memory.
/// </summary>
[NonParallelizable]
public sealed class ServeRobustnessTests
{
    private SafeCoDeServer _server = null!;
    private HttpClient _http = null!;
    private readonly LogCapture _log = new();

    [OneTimeSetUp]
    public async Task Start()
    {
        _server = await ServeTestServer.Start(_log);
        _http = ServeTestServer.Http(_server);
        await _server.Loaded;
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        _http?.Dispose();
        if (_server is not null) await _server.DisposeAsync();
    }

    private static async Task<JsonNode> ExpectError(HttpResponseMessage r, HttpStatusCode status, string? code = null, string? param = null)
    {
        var text = await r.Content.ReadAsStringAsync();
        Assert.That(r.StatusCode, Is.EqualTo(status), text);
        Assert.That(r.Content.Headers.ContentType?.MediaType, Is.EqualTo("application/json"));
        Assert.That(text, Does.Not.Contain("   at ").And.Not.Contain("Exception"), "no stack trace, no exception names");
        var e = JsonNode.Parse(text)!["error"]!;
        Assert.That(e["message"]!.GetValue<string>(), Is.Not.Empty);
        Assert.That(e["type"]!.GetValue<string>(), Is.Not.Empty);
        if (code is not null) Assert.That(e["code"]?.GetValue<string>(), Is.EqualTo(code));
        if (param is not null) Assert.That(e["param"]?.GetValue<string>(), Is.EqualTo(param));
        return e;
    }

    private Task<HttpResponseMessage> Post(string json) => ServeTestServer.Post(_http, json);

    private static string WithImage(string dataUri)
    {
        var b = ServeTestServer.Body();
        b["messages"]![0]!["content"]![1]!["image_url"]!["url"] = dataUri;
        return b.ToJsonString();
    }

    /// <summary>A valid PNG whose header declares width × height (a decompression bomb when huge): signature, IHDR, a tiny IDAT, IEND.</summary>
    private static byte[] PngHeader(int width, int height)
    {
        var ms = new MemoryStream();
        ms.Write([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]);
        void Chunk(string type, byte[] data)
        {
            Span<byte> len = stackalloc byte[4];
            BinaryPrimitives.WriteInt32BigEndian(len, data.Length);
            ms.Write(len);
            var td = Encoding.ASCII.GetBytes(type).Concat(data).ToArray();
            ms.Write(td);
            Span<byte> crc = stackalloc byte[4];
            BinaryPrimitives.WriteUInt32BigEndian(crc, Crc(td));
            ms.Write(crc);
        }
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = 8; ihdr[9] = 2; // 8-bit RGB
        Chunk("IHDR", ihdr);
        Chunk("IDAT", [0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
        Chunk("IEND", []);
        return ms.ToArray();
    }

    private static uint Crc(byte[] data)
    {
        uint c = 0xFFFFFFFF;
        foreach (var b in data)
        {
            c ^= b;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320 ^ (c >> 1) : c >> 1;
        }
        return ~c;
    }

    [Test]
    public async Task MalformedJson_Is400()
    {
        await ExpectError(await Post("{\"model\": \"default\", \"messages\": [ {"), HttpStatusCode.BadRequest, "invalid_json");
        await ExpectError(await Post("[1, 2]"), HttpStatusCode.BadRequest);
        await ExpectError(await Post(""), HttpStatusCode.BadRequest, "invalid_json");
    }

    [Test]
    public async Task WrongTypes_Are400_NamingTheField()
    {
        var b = ServeTestServer.Body(); b["max_tokens"] = "5";
        await ExpectError(await Post(b.ToJsonString()), HttpStatusCode.BadRequest, "invalid_type", "max_tokens");
        b = ServeTestServer.Body(); b["messages"] = "hello";
        await ExpectError(await Post(b.ToJsonString()), HttpStatusCode.BadRequest, null, "messages");
        b = ServeTestServer.Body(); b["temperature"] = "hot";
        await ExpectError(await Post(b.ToJsonString()), HttpStatusCode.BadRequest, "invalid_type", "temperature");
        b = ServeTestServer.Body(); b["stream"] = 1;
        await ExpectError(await Post(b.ToJsonString()), HttpStatusCode.BadRequest, "invalid_type", "stream");
        b = ServeTestServer.Body(); b["messages"]![0]!["role"] = "wizard";
        await ExpectError(await Post(b.ToJsonString()), HttpStatusCode.BadRequest, null, "messages[0].role");
        b = ServeTestServer.Body(safecode: new JsonObject { ["alpha"] = "big" });
        await ExpectError(await Post(b.ToJsonString()), HttpStatusCode.BadRequest, "invalid_type", "safecode.alpha");
        b = ServeTestServer.Body(safecode: new JsonObject { ["frobnicate"] = 1 });
        await ExpectError(await Post(b.ToJsonString()), HttpStatusCode.BadRequest, "unknown_parameter", "safecode.frobnicate");
        b = ServeTestServer.Body(); b["tools"] = new JsonArray(new JsonObject { ["type"] = "function" });
        await ExpectError(await Post(b.ToJsonString()), HttpStatusCode.BadRequest, null, "tools");
        await ExpectError(await Post(ServeTestServer.Body(image: false).ToJsonString()), HttpStatusCode.BadRequest); // SafeCoDe needs an image
    }

    [Test]
    public async Task OversizedBody_Is413()
    {
        var big = ServeTestServer.Body(prompt: new string('x', 5 << 20)).ToJsonString(); // over the test server's 4 MiB
        // Expect: 100-continue (what a careful client sends with a large body): the server refuses before the upload
        using var req = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions") { Content = new StringContent(big, Encoding.UTF8, "application/json") };
        req.Headers.ExpectContinue = true;
        await ExpectError(await _http.SendAsync(req), HttpStatusCode.RequestEntityTooLarge, "request_too_large");
    }

    [Test]
    public async Task ImagesThatAreNotImages_AndBombs_Are400()
    {
        await ExpectError(await Post(WithImage("data:image/png;base64," + Convert.ToBase64String(Encoding.UTF8.GetBytes("hello, not a png")))), HttpStatusCode.BadRequest, "invalid_image");
        await ExpectError(await Post(WithImage("data:image/png;base64,@@@not-base64@@@")), HttpStatusCode.BadRequest, "invalid_image");
        await ExpectError(await Post(WithImage("data:text/plain;base64,aGVsbG8=")), HttpStatusCode.BadRequest, "invalid_image");
        var bomb = PngHeader(100_000, 100_000); // 10^10 pixels declared in a file of a few dozen bytes
        var e = await ExpectError(await Post(WithImage("data:image/png;base64," + Convert.ToBase64String(bomb))), HttpStatusCode.BadRequest, "invalid_image");
        Assert.That(e["message"]!.GetValue<string>(), Does.Contain("pixel"));
        await ExpectError(await Post(WithImage("file:///etc/passwd")), HttpStatusCode.BadRequest, "image_url_not_allowed");
        await ExpectError(await Post(WithImage("http://127.0.0.1:1/x.png")), HttpStatusCode.BadRequest, "image_url_not_allowed");
    }

    [Test]
    public async Task UnknownModel_Is404_AndUnknownRoute_Is404()
    {
        var b = ServeTestServer.Body(); b["model"] = "gpt-4o";
        await ExpectError(await Post(b.ToJsonString()), HttpStatusCode.NotFound, "model_not_found", "model");
        await ExpectError(await _http.GetAsync("v1/models/gpt-4o"), HttpStatusCode.NotFound, "model_not_found");
        await ExpectError(await _http.GetAsync("v1/embeddings"), HttpStatusCode.NotFound);
    }

    [Test]
    public async Task MissingOrInvalidKey_Is401()
    {
        using var none = ServeTestServer.Http(_server, key: null);
        await ExpectError(await ServeTestServer.Post(none, ServeTestServer.Body().ToJsonString()), HttpStatusCode.Unauthorized, "invalid_api_key");
        using var wrong = ServeTestServer.Http(_server, key: "test-key-7f3b");
        await ExpectError(await ServeTestServer.Post(wrong, ServeTestServer.Body().ToJsonString()), HttpStatusCode.Unauthorized, "invalid_api_key");
        await ExpectError(await wrong.GetAsync("v1/models"), HttpStatusCode.Unauthorized, "invalid_api_key");
    }

    [Test]
    public async Task ClientVanishingMidStream_CancelsItsGeneration()
    {
        var cancelledBefore = CancelledTotal(await _http.GetStringAsync("metrics"));
        // a client of its own whose connection closes when the response is dropped (HttpClient would otherwise drain it for reuse)
        using (var vanishing = new HttpClient(new SocketsHttpHandler { MaxResponseDrainSize = 0 }) { BaseAddress = _server.BaseAddress })
        using (var cts = new CancellationTokenSource())
        {
            vanishing.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", ServeTestServer.Key);
            var body = ServeTestServer.Body(maxTokens: 1900, stream: true, safecode: new JsonObject { ["verdict"] = "safe" });
            using var req = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions") { Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json") };
            using var res = await vanishing.SendAsync(req, HttpCompletionOption.ResponseHeadersRead, cts.Token);
            Assert.That(res.StatusCode, Is.EqualTo(HttpStatusCode.OK));
            Assert.That(res.Content.Headers.ContentType?.MediaType, Is.EqualTo("text/event-stream"));
            using var reader = new StreamReader(await res.Content.ReadAsStreamAsync(cts.Token));
            var first = await reader.ReadLineAsync(cts.Token);
            Assert.That(first, Does.StartWith("data: {"));
            cts.Cancel(); // the client goes away mid-stream
            res.Dispose();
            vanishing.Dispose();
        }
        var sw = Stopwatch.StartNew();
        while ((_server.Queue.Admitted > 0 || !_log.ToString().Contains("\"stream\":true")) && sw.Elapsed < TimeSpan.FromSeconds(20)) await Task.Delay(20);
        Assert.That(_server.Queue.Admitted, Is.EqualTo(0), "the abandoned request left the queue");
        var metrics = await _http.GetStringAsync("metrics");
        Assert.That(CancelledTotal(metrics), Is.EqualTo(cancelledBefore + 1), "the generation was cancelled, not run to its 1900-token budget");
        Assert.That(_log.ToString(), Does.Contain("\"status\":499").And.Contain("client disconnected"));
        var next = await Post(ServeTestServer.Body(maxTokens: 2).ToJsonString());
        Assert.That(next.StatusCode, Is.EqualTo(HttpStatusCode.OK), "the server serves the next request");
    }

    private static long CancelledTotal(string metrics) =>
        long.Parse(metrics.Split('\n').First(l => l.StartsWith("safecode_cancelled_total ", StringComparison.Ordinal)).Split(' ')[1]);

    [Test]
    public async Task Load_64RequestsFrom16Clients_AllAnsweredOnce_NoLeaks()
    {
        var total = Stopwatch.StartNew();
        async Task<(int Ok, int Rejected, HashSet<string> Ids)> Round(int round)
        {
            var ids = new System.Collections.Concurrent.ConcurrentBag<string>();
            int ok = 0, rejected = 0, next = -1;
            var answered = new int[64];
            async Task Client()
            {
                using var h = ServeTestServer.Http(_server);
                int i;
                while ((i = Interlocked.Increment(ref next)) < 64)
                {
                    var body = ServeTestServer.Body(prompt: $"Request {round}-{i}: what is in the picture?", maxTokens: 8);
                    var r = await ServeTestServer.Post(h, body.ToJsonString());
                    Interlocked.Increment(ref answered[i]);
                    if (r.StatusCode == HttpStatusCode.TooManyRequests) { Interlocked.Increment(ref rejected); continue; }
                    Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.OK), await r.Content.ReadAsStringAsync());
                    var o = JsonNode.Parse(await r.Content.ReadAsStringAsync())!;
                    ids.Add(o["id"]!.GetValue<string>());
                    Assert.That(o["usage"]!["completion_tokens"]!.GetValue<int>(), Is.InRange(1, 8));
                    Interlocked.Increment(ref ok);
                }
            }
            await Task.WhenAll(Enumerable.Range(0, 16).Select(_ => Task.Run(Client)));
            Assert.That(answered, Is.All.EqualTo(1), "every request answered exactly once");
            var unique = ids.ToHashSet();
            Assert.That(unique.Count, Is.EqualTo(ok), "no duplicated answers");
            Assert.That(ok + rejected, Is.EqualTo(64), "none lost");
            return (ok, rejected, unique);
        }

        await Post(ServeTestServer.Body(maxTokens: 8).ToJsonString()); // warm-up: lazily cached tensors are not leaks
        GC.Collect(); GC.WaitForPendingFinalizers(); GC.Collect();
        long baseline = torch.Tensor.TotalCount;
        var r1 = await Round(1);
        GC.Collect(); GC.WaitForPendingFinalizers(); GC.Collect();
        var r2 = await Round(2);
        GC.Collect(); GC.WaitForPendingFinalizers(); GC.Collect();
        long rss2 = Process.GetCurrentProcess().WorkingSet64;
        var r3 = await Round(3);
        GC.Collect(); GC.WaitForPendingFinalizers(); GC.Collect();
        long rss3 = Process.GetCurrentProcess().WorkingSet64;
        total.Stop();
        TestContext.Out.WriteLine($"load: 3 × 64 requests (16 clients) in {total.Elapsed.TotalSeconds:F1} s; answered {r1.Ok}/{r2.Ok}/{r3.Ok}, 429 {r1.Rejected}/{r2.Rejected}/{r3.Rejected}; RSS after round 2 {rss2 >> 20} MiB, round 3 {rss3 >> 20} MiB");
        Assert.That(r1.Ids.Intersect(r2.Ids).Concat(r2.Ids.Intersect(r3.Ids)), Is.Empty, "ids are unique across rounds");
        Assert.That(r1.Ok + r2.Ok + r3.Ok, Is.GreaterThan(0));
        Assert.That(_server.Queue.Admitted, Is.EqualTo(0));
        Assert.That(torch.Tensor.TotalCount, Is.EqualTo(baseline), "live tensors back to baseline");
        Assert.That(rss3, Is.LessThanOrEqualTo(rss2 * 1.10), "RSS grows at most 10% between rounds 2 and 3");
        Assert.That(total.Elapsed, Is.LessThan(TimeSpan.FromSeconds(60)));
    }

    [Test]
    public async Task FullQueue_Is429WithRetryAfter()
    {
        var log = new LogCapture();
        await using var small = await ServeTestServer.Start(log, key: null, queue: 2);
        using var h = ServeTestServer.Http(small, key: null); // no key configured: no authentication
        // sent while the model loads (admitted requests wait for it) and long enough to overlap: the queue of 2 fills
        var responses = await Task.WhenAll(Enumerable.Range(0, 8).Select(i => ServeTestServer.Post(h, ServeTestServer.Body(prompt: $"q{i}", maxTokens: 400).ToJsonString())));
        var rejected = responses.Where(r => r.StatusCode == HttpStatusCode.TooManyRequests).ToList();
        Assert.That(responses.Count(r => r.StatusCode == HttpStatusCode.OK) + rejected.Count, Is.EqualTo(8));
        Assert.That(rejected, Is.Not.Empty, "8 simultaneous requests against a queue of 2");
        Assert.That(responses.Count(r => r.StatusCode == HttpStatusCode.OK), Is.GreaterThanOrEqualTo(1));
        Assert.That(rejected[0].Headers.RetryAfter, Is.Not.Null);
        await ExpectError(rejected[0], HttpStatusCode.TooManyRequests, "queue_full");
        Assert.That(await h.GetStringAsync("metrics"), Does.Match(@"safecode_rejected_total [1-9]"));
    }

    [Test]
    public async Task Shutdown_FinishesInFlightRequests_AndCancelsThemAtTheDeadline()
    {
        // within the deadline: the in-flight request completes, new ones are refused
        var server = await ServeTestServer.Start(new LogCapture(), key: null, queue: 4, shutdownSeconds: 30);
        await server.Loaded;
        using var h = ServeTestServer.Http(server, key: null);
        var inflight = ServeTestServer.Post(h, ServeTestServer.Body(maxTokens: 400).ToJsonString());
        var sw = Stopwatch.StartNew();
        while (server.Queue.Running == 0 && sw.Elapsed < TimeSpan.FromSeconds(20)) await Task.Delay(10);
        var stop = server.StopAsync();
        var r = await inflight;
        Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.OK), await r.Content.ReadAsStringAsync());
        await stop;
        await server.DisposeAsync();

        // past the deadline: the stream is cancelled and ends with an error event
        var log = new LogCapture();
        var quick = await ServeTestServer.Start(log, key: null, queue: 4, shutdownSeconds: 0);
        await quick.Loaded;
        using var h2 = ServeTestServer.Http(quick, key: null);
        using var req = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions")
        {
            Content = new StringContent(ServeTestServer.Body(maxTokens: 1900, stream: true).ToJsonString(), Encoding.UTF8, "application/json"),
        };
        using var res = await h2.SendAsync(req, HttpCompletionOption.ResponseHeadersRead);
        var reader = new StreamReader(await res.Content.ReadAsStreamAsync());
        Assert.That(await reader.ReadLineAsync(), Does.StartWith("data: {"));
        var stopping = quick.StopAsync();
        var rest = new StringBuilder();
        try { while (await reader.ReadLineAsync() is { } line) rest.Append(line).Append('\n'); }
        catch (IOException) { } // the connection may close right after the last event
        await stopping;
        Assert.That(rest.ToString(), Does.Contain("shutting_down"), "the stream ends with an OpenAI error event");
        Assert.That(rest.ToString(), Does.Not.Contain("[DONE]"));
        await quick.DisposeAsync();
    }

    [Test]
    public async Task JudgeFailure_Is502_AndAFailedLoad_Is503()
    {
        // a replay judge without an entry for the scene fails like an unreachable judge endpoint: JudgeException
        var cache = Path.Combine(TestPaths.NewTempDir(), "empty-cache.jsonl");
        await using (var server = await ServeTestServer.Start(new LogCapture(), key: null, judge: "cache:" + cache))
        {
            await server.Loaded;
            using var h = ServeTestServer.Http(server, key: null);
            var e = await ExpectError(await ServeTestServer.Post(h, ServeTestServer.Body().ToJsonString()), HttpStatusCode.BadGateway, "judge_failed");
            Assert.That(e["message"]!.GetValue<string>(), Does.Contain("judge"));
            // a given verdict skips the judge
            Assert.That((await ServeTestServer.Post(h, ServeTestServer.Body(safecode: new JsonObject { ["verdict"] = "safe" }).ToJsonString())).StatusCode, Is.EqualTo(HttpStatusCode.OK));
        }

        var missing = Path.Combine(TestPaths.NewTempDir(), "no-model");
        Directory.CreateDirectory(missing);
        await using var broken = await SafeCoDeServer.StartAsync(new ServerOptions { ModelDir = missing, Host = "127.0.0.1", Port = 0, Log = new LogCapture(), KeepServingOnLoadFailure = true });
        try { await broken.Loaded; } catch (Exception) { }
        using var b = ServeTestServer.Http(broken, key: null);
        var health = await b.GetAsync("health");
        Assert.That(health.StatusCode, Is.EqualTo(HttpStatusCode.ServiceUnavailable), "no model will answer: a liveness probe must see it");
        Assert.That(await health.Content.ReadAsStringAsync(), Does.Contain("\"failed\""));
        var ready = await b.GetAsync("ready");
        Assert.That(ready.StatusCode, Is.EqualTo(HttpStatusCode.ServiceUnavailable));
        Assert.That(await ready.Content.ReadAsStringAsync(), Does.Contain("failed"));
        await ExpectError(await ServeTestServer.Post(b, ServeTestServer.Body().ToJsonString()), HttpStatusCode.ServiceUnavailable, "model_unavailable");
    }

    [Test]
    public async Task SlowRequest_Is504AtItsTimeout_AndTheServerGoesOn()
    {
        await using var server = await ServeTestServer.Start(new LogCapture(), key: null, timeoutSeconds: 0.001);
        await server.Loaded;
        using var h = ServeTestServer.Http(server, key: null);
        var sw = Stopwatch.StartNew();
        var e = await ExpectError(await ServeTestServer.Post(h, ServeTestServer.Body(maxTokens: 512).ToJsonString()), HttpStatusCode.GatewayTimeout, "timeout");
        Assert.That(sw.Elapsed, Is.LessThan(TimeSpan.FromSeconds(10)), "cancelled at the timeout, not run to its budget");
        Assert.That(server.Queue.Admitted, Is.EqualTo(0));
        Assert.That(await h.GetStringAsync("metrics"), Does.Match(@"safecode_cancelled_total [1-9]"));
    }

    /// <summary>
    /// A model that fails to load ends serve with exit code 1 after the failure is logged (systemd's Restart=on-failure
    /// and container probes react); --keep-serving-on-load-failure keeps it listening until it is stopped.
    /// </summary>
    [Test]
    public async Task AFailedLoad_EndsServeWithExitCode1_UnlessAskedToKeepServing()
    {
        var missing = Path.Combine(TestPaths.NewTempDir(), "no-config");
        Directory.CreateDirectory(missing);
        var err = new StringWriter();
        int code = await Task.Run(() => SafeCoDe.Cli.Cli.Run(["serve", "--model", missing, "--port", "0"], new StringWriter(), err)).WaitAsync(TimeSpan.FromSeconds(60));
        Assert.That(code, Is.EqualTo(1), err.ToString());
        var events = err.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!).ToList();
        var names = events.Select(e => e["event"]!.GetValue<string>()).ToList();
        Assert.That(names, Does.Contain("model_load_failed").And.Contain("exiting"));
        Assert.That(names.IndexOf("exiting"), Is.GreaterThan(names.IndexOf("model_load_failed")), "why, then that it exits");
        Assert.That(events.Single(e => e["event"]!.GetValue<string>() == "model_load_failed")["error"]!.GetValue<string>(), Does.Contain("config.json"));

        await using var kept = await SafeCoDeServer.StartAsync(new ServerOptions { ModelDir = missing, Host = "127.0.0.1", Port = 0, Log = new LogCapture(), KeepServingOnLoadFailure = true });
        var run = kept.RunUntilShutdownAsync();
        try { await kept.Loaded; } catch (Exception) { }
        await Task.Delay(200);
        Assert.That(run.IsCompleted, Is.False, "still serving after the failed load");
        await kept.StopAsync();
        Assert.That(await run.WaitAsync(TimeSpan.FromSeconds(30)), Is.EqualTo(0));
    }

    /// <summary>
    /// Errors in HTTP terms: the missing image names the request part to send (no .NET type names), unsupported
    /// parameters carry OpenAI-style codes, GET on the chat route is 405 saying POST with an Allow header, and the log's
    /// timestamps keep their '+'.
    /// </summary>
    [Test]
    public async Task Errors_SpeakHttp_NotDotNet()
    {
        var e = await ExpectError(await Post(ServeTestServer.Body(image: false).ToJsonString()), HttpStatusCode.BadRequest, "image_required", "messages");
        var message = e["message"]!.GetValue<string>();
        Assert.That(message, Does.Contain("image_url content part").And.Contain("\"mode\":\"vanilla\""));
        Assert.That(message, Does.Not.Contain("DataContent").And.Not.Contain("UriContent").And.Not.Contain("SafeCoDeChatClientOptions"));

        var b = ServeTestServer.Body(); b["n"] = 2;
        await ExpectError(await Post(b.ToJsonString()), HttpStatusCode.BadRequest, "unsupported_value", "n");
        b = ServeTestServer.Body(); b["tools"] = new JsonArray(new JsonObject { ["type"] = "function" });
        await ExpectError(await Post(b.ToJsonString()), HttpStatusCode.BadRequest, "unsupported_parameter", "tools");

        var get = await _http.GetAsync("v1/chat/completions");
        e = await ExpectError(get, HttpStatusCode.MethodNotAllowed, "method_not_allowed");
        Assert.That(e["message"]!.GetValue<string>(), Does.Contain("POST"));
        Assert.That(get.Content.Headers.Allow, Is.EquivalentTo(new[] { "POST" }));

        var ts = _log.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!["ts"]!.GetValue<string>()).First();
        Assert.That(DateTimeOffset.TryParse(ts, out _), Is.True, ts);
        Assert.That(_log.ToString(), Does.Not.Contain("\\u002B"));
        Assert.That(_log.ToString(), Does.Contain("+00:00\""));
    }

    /// <summary>
    /// A probe's 503 is an expected answer, not a server error: after a failed load /ready and /health are logged as
    /// warn (the failure itself was logged once, as error); while the model loads, as info.
    /// </summary>
    [Test]
    public async Task ProbeAnswers503_AreNotLoggedAsErrors()
    {
        var log = new LogCapture();
        var missing = Path.Combine(TestPaths.NewTempDir(), "no-config");
        Directory.CreateDirectory(missing);
        await using var server = await SafeCoDeServer.StartAsync(new ServerOptions { ModelDir = missing, Host = "127.0.0.1", Port = 0, Log = log, KeepServingOnLoadFailure = true });
        using var h = ServeTestServer.Http(server, key: null);
        try { await server.Loaded; } catch (Exception) { }
        Assert.That((await h.GetAsync("ready")).StatusCode, Is.EqualTo(HttpStatusCode.ServiceUnavailable));
        Assert.That((await h.GetAsync("health")).StatusCode, Is.EqualTo(HttpStatusCode.ServiceUnavailable));
        var lines = log.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!).ToList();
        Assert.That(lines.Where(j => (string?)j["path"] is "/ready" or "/health").Select(j => j["level"]!.GetValue<string>()), Is.EqualTo(new[] { "warn", "warn" }));
        Assert.That(lines.Count(j => (string?)j["level"] == "error"), Is.EqualTo(1), "the failed load, once");

    }
}
