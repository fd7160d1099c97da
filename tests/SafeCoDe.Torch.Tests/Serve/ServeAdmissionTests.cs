using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using NUnit.Framework;
using SafeCoDe.Cli.Serve;

namespace SafeCoDe.Torch.Tests.Serve;

/// <summary>
/// Issue 33, item 5, in process: a request takes its place and its body's bytes (--max-inflight-bytes) before the body
/// is read, so a second upload while the budget is held is answered 429 at once (and reads that answer), the budget
/// comes back when a request ends, and a chunked body over --max-body is a 413.
/// </summary>
[NonParallelizable]
public sealed class ServeAdmissionTests
{
    private SafeCoDeServer _server = null!;
    private HttpClient _http = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        _server = await ServeTestServer.Start(new LogCapture(), key: null, maxBody: 1 << 20, configure: o => o with { MaxInflightBytes = 600_000 });
        _http = ServeTestServer.Http(_server, key: null);
        await _server.Loaded;
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        _http?.Dispose();
        if (_server is not null) await _server.DisposeAsync();
    }

    /// <summary>A body sent in two parts: the second only once <see cref="Release"/> is called.</summary>
    private sealed class HeldContent(byte[] body, bool chunked) : HttpContent
    {
        private readonly TaskCompletionSource _release = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public readonly TaskCompletionSource FirstPartSent = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public void Release() => _release.TrySetResult();

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            await stream.WriteAsync(body.AsMemory(0, body.Length / 2));
            await stream.FlushAsync();
            FirstPartSent.TrySetResult();
            await _release.Task;
            await stream.WriteAsync(body.AsMemory(body.Length / 2));
        }

        protected override bool TryComputeLength(out long length)
        {
            length = body.Length;
            return !chunked;
        }
    }

    /// <summary>A valid request padded with trailing JSON whitespace to <paramref name="bytes"/> bytes.</summary>
    private static byte[] Padded(int bytes)
    {
        var json = ServeTestServer.Body(maxTokens: 2).ToJsonString();
        return Encoding.UTF8.GetBytes(json + new string(' ', Math.Max(0, bytes - Encoding.UTF8.GetByteCount(json))));
    }

    private async Task WaitFor(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (!condition()) { if (DateTime.UtcNow > deadline) Assert.Fail("timed out"); await Task.Delay(20); }
    }

    [Test]
    public async Task AnUploadWhileTheBudgetIsHeld_Is429_AndTheBudgetComesBack()
    {
        var first = new HeldContent(Padded(500_000), chunked: false);
        first.Headers.ContentType = new("application/json");
        var pending = _http.PostAsync("v1/chat/completions", first);
        await first.FirstPartSent.Task.WaitAsync(TimeSpan.FromSeconds(20));
        await WaitFor(() => _server.InflightBytes.InUse > 0);
        Assert.That(_server.InflightBytes.InUse, Is.EqualTo(500_000), "the first request's Content-Length, taken before its body arrived");

        using (var second = await ServeTestServer.Post(_http, Encoding.UTF8.GetString(Padded(200_000))))
        {
            var text = await second.Content.ReadAsStringAsync();
            Assert.That(second.StatusCode, Is.EqualTo(HttpStatusCode.TooManyRequests), text);
            Assert.That((string?)JsonNode.Parse(text)!["error"]!["code"], Is.EqualTo("busy"));
            Assert.That(second.Headers.RetryAfter, Is.Not.Null);
        }

        first.Release();
        using (var r = await pending) Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.OK), await r.Content.ReadAsStringAsync());
        await WaitFor(() => _server.InflightBytes.InUse == 0);
        using var third = await ServeTestServer.Post(_http, Encoding.UTF8.GetString(Padded(200_000)));
        Assert.That(third.StatusCode, Is.EqualTo(HttpStatusCode.OK), "the budget came back");
    }

    [Test]
    public async Task AChunkedBodyOverTheLimit_Is413()
    {
        var body = new HeldContent(Padded(1_500_000), chunked: true);
        body.Headers.ContentType = new("application/json");
        body.Release();
        using var r = await _http.PostAsync("v1/chat/completions", body);
        var text = await r.Content.ReadAsStringAsync();
        Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.RequestEntityTooLarge), text);
        Assert.That((string?)JsonNode.Parse(text)!["error"]!["code"], Is.EqualTo("request_too_large"));
        await WaitFor(() => _server.InflightBytes.InUse == 0);
    }
}
