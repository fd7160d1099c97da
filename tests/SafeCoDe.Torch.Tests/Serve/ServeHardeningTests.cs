using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using NUnit.Framework;
using SafeCoDe.Cli.Serve;
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
