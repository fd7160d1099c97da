using System.Buffers.Binary;
using System.Diagnostics;
using System.IO.Compression;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using NUnit.Framework;
using SafeCoDe.Torch.Tests.Hardening;

namespace SafeCoDe.Torch.Tests.Serve;

/// <summary>
/// Issue 33, item 5, on a real <c>safecode serve</c> process (its memory measured from /proc): many concurrent large
/// bodies are admitted within the queue and the in-flight byte budget, every request is answered (200 or 429, none
/// lost), the peak stays under 2 GiB, and after the load round the resident memory comes back within 10 % of its
/// level after warm-up — also after eight 39.7-megapixel images.
/// </summary>
[NonParallelizable]
public sealed class ServeMemoryTests
{
    private const long PeakLimit = 2L << 30;
    private Process _server = null!;
    private HttpClient _http = null!;
    private readonly StringBuilder _log = new();

    [OneTimeSetUp]
    public async Task Start()
    {
        var psi = new ProcessStartInfo(Path.Combine(AppContext.BaseDirectory, "safecode")) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in new[] { "serve", "--model", ServeTestServer.ModelDir, "--port", "0", "--device", "cpu", "--judge", "fixed:safe",
                     "--queue-length", "8", "--max-tokens-cap", "2", "--max-body", "32MB", "--max-image", "24MB", "--max-inflight-bytes", "128MB", "--seed", "1" })
            psi.ArgumentList.Add(a);
        _server = Process.Start(psi)!;
        var url = new TaskCompletionSource<string>();
        _server.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (_log) _log.AppendLine(e.Data);
            if (e.Data.Contains("\"event\":\"listening\"")) url.TrySetResult((string)JsonNode.Parse(e.Data)!["url"]!);
        };
        _server.BeginErrorReadLine();
        _server.BeginOutputReadLine();
        var baseUrl = await url.Task.WaitAsync(TimeSpan.FromSeconds(60));
        _http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 128 }) { BaseAddress = new Uri(baseUrl), Timeout = TimeSpan.FromSeconds(120) };
        var sw = Stopwatch.StartNew();
        while ((await _http.GetAsync("ready")).StatusCode != HttpStatusCode.OK && sw.Elapsed < TimeSpan.FromSeconds(60)) await Task.Delay(50);
    }

    [OneTimeTearDown]
    public void Stop()
    {
        _http?.Dispose();
        if (_server is { HasExited: false }) { _server.Kill(true); _server.WaitForExit(10_000); }
        _server?.Dispose();
    }

    private long Status(string field)
    {
        foreach (var line in File.ReadLines($"/proc/{_server.Id}/status"))
            if (line.StartsWith(field + ":", StringComparison.Ordinal))
                return long.Parse(line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
        return -1;
    }

    /// <summary>Resident memory once the server has been idle a moment (it returns memory after large requests).</summary>
    private async Task<long> IdleRss()
    {
        await Task.Delay(1500);
        return Status("VmRSS");
    }

    /// <summary>
    /// Resident memory after a round: sampled every half second while the server is idle until it is within 10 % of
    /// <paramref name="warm"/>, for at most 10 s (the GC and glibc give pages back over a few seconds); returns the
    /// last sample and how long the server took.
    /// </summary>
    private async Task<(long Rss, TimeSpan After)> SettledRss(long warm)
    {
        var sw = Stopwatch.StartNew();
        long rss;
        do
        {
            await Task.Delay(500);
            rss = Status("VmRSS");
        }
        while (rss > warm * 1.10 && sw.Elapsed < TimeSpan.FromSeconds(10));
        return (rss, sw.Elapsed);
    }

    private static string Body(string dataUri, string prompt) => new JsonObject
    {
        ["model"] = "default", ["max_tokens"] = 2, ["temperature"] = 0,
        ["messages"] = new JsonArray(new JsonObject
        {
            ["role"] = "user",
            ["content"] = new JsonArray(new JsonObject { ["type"] = "text", ["text"] = prompt },
                new JsonObject { ["type"] = "image_url", ["image_url"] = new JsonObject { ["url"] = dataUri } }),
        }),
    }.ToJsonString();

    /// <summary>One round from clients of their own, which then go away (their connections close, as a burst of clients' would).</summary>
    private async Task<HttpStatusCode[]> Round(string body, int requests)
    {
        using var clients = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 128 }) { BaseAddress = _http.BaseAddress, Timeout = TimeSpan.FromSeconds(120) };
        return await Task.WhenAll(Enumerable.Range(0, requests).Select(async _ =>
        {
            using var r = await clients.PostAsync("v1/chat/completions", new StringContent(body, Encoding.UTF8, "application/json"));
            var text = await r.Content.ReadAsStringAsync();
            if (r.StatusCode is not (HttpStatusCode.OK or HttpStatusCode.TooManyRequests)) Assert.Fail($"{(int)r.StatusCode}: {text}");
            return r.StatusCode;
        }));
    }

    [Test]
    public async Task ManyLargeBodies_AreAdmittedWithinTheBudget_NoneLost_AndMemoryComesBack()
    {
        // 64 bodies of 26 MB at once in the nightly run, 32 in CI (a 19.5 MB PNG: a tiny image with a large ancillary
        // chunk), queue 8, budget 128 MB
        int requests = Hostile.Nightly ? 64 : 32;
        var big = Body("data:image/png;base64," + Convert.ToBase64String(PngWithPadding(19_500_000)), "And here?");
        await Round(big, 1); // warm-up with one such request: what it caches or creates on first use is not a leak
        long warm = await IdleRss();
        var sw = Stopwatch.StartNew();
        var statuses = await Round(big, requests);
        long peak = Status("VmHWM");
        int ok = statuses.Count(s => s == HttpStatusCode.OK), rejected = statuses.Length - ok;
        var (after, settle) = await SettledRss(warm);
        TestContext.Out.WriteLine($"{requests} × {big.Length >> 20} MB bodies in {sw.Elapsed.TotalSeconds:F1} s: {ok} answered, {rejected} × 429; RSS warm {warm >> 20} MiB, peak {peak >> 20} MiB, after {after >> 20} MiB ({settle.TotalSeconds:F1} s idle)");
        Assert.That(ok, Is.GreaterThan(0));
        Assert.That(peak, Is.LessThan(PeakLimit));
        Assert.That(after, Is.LessThanOrEqualTo((long)(warm * 1.10)), "RSS back within 10 % of the post-warm-up level");
    }

    [Test]
    public async Task ImagesOf40Megapixels_MemoryComesBack()
    {
        var body = Body("data:image/png;base64," + Convert.ToBase64String(SolidPng(7000, 5670)), "What is in the picture?");
        await Round(body, 1); // warm-up with one such image
        long warm = await IdleRss();
        var sw = Stopwatch.StartNew();
        // eight as in the issue in the nightly run, four in CI (each takes seconds to decode and resize on two cores)
        var statuses = await Round(body, Hostile.Nightly ? 8 : 4);
        long peak = Status("VmHWM");
        var (after, settle) = await SettledRss(warm);
        TestContext.Out.WriteLine($"{statuses.Length} × 39.7 MP in {sw.Elapsed.TotalSeconds:F1} s: {statuses.Count(s => s == HttpStatusCode.OK)} answered; RSS warm {warm >> 20} MiB, peak {peak >> 20} MiB, after {after >> 20} MiB ({settle.TotalSeconds:F1} s idle)");
        Assert.That(statuses, Has.All.EqualTo(HttpStatusCode.OK), "they fit the queue of 8");
        Assert.That(peak, Is.LessThan(PeakLimit));
        Assert.That(after, Is.LessThanOrEqualTo((long)(warm * 1.10)), "RSS back within 10 % of the post-warm-up level");
    }

    /// <summary>A 4×4 PNG carrying a private ancillary chunk of <paramref name="total"/> bytes (decoders skip it).</summary>
    private static byte[] PngWithPadding(int total)
    {
        var ms = new MemoryStream();
        ms.Write([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]);
        Chunk(ms, "IHDR", Ihdr(4, 4));
        Chunk(ms, "prVt", new byte[total]);
        Chunk(ms, "IDAT", Deflate(4, 4));
        Chunk(ms, "IEND", []);
        return ms.ToArray();
    }

    /// <summary>A solid-colour RGB PNG of the given size (small to send, large to decode).</summary>
    private static byte[] SolidPng(int w, int h)
    {
        var ms = new MemoryStream();
        ms.Write([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]);
        Chunk(ms, "IHDR", Ihdr(w, h));
        Chunk(ms, "IDAT", Deflate(w, h));
        Chunk(ms, "IEND", []);
        return ms.ToArray();
    }

    private static byte[] Ihdr(int w, int h)
    {
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, w);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), h);
        ihdr[8] = 8; ihdr[9] = 2; // 8-bit RGB
        return ihdr;
    }

    private static byte[] Deflate(int w, int h)
    {
        var row = new byte[1 + 3 * w];
        for (int x = 0; x < w; x++) { row[1 + 3 * x] = 90; row[2 + 3 * x] = 140; row[3 + 3 * x] = 200; }
        var ms = new MemoryStream();
        using (var z = new ZLibStream(ms, CompressionLevel.Fastest, leaveOpen: true))
            for (int y = 0; y < h; y++) z.Write(row);
        return ms.ToArray();
    }

    private static void Chunk(Stream s, string type, byte[] data)
    {
        Span<byte> len = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(len, data.Length);
        s.Write(len);
        var t = Encoding.ASCII.GetBytes(type);
        s.Write(t);
        s.Write(data);
        uint c = 0xFFFFFFFF;
        foreach (var b in t.Concat(data))
        {
            c ^= b;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320 ^ (c >> 1) : c >> 1;
        }
        Span<byte> crc = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(crc, ~c);
        s.Write(crc);
    }
}
