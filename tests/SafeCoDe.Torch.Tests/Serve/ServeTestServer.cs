using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using SafeCoDe.Cli.Serve;
using SafeCoDe.Torch.Runtime;
using SafeCoDe.Torch.Tests.EndToEnd;

namespace SafeCoDe.Torch.Tests.Serve;

/// <summary>Helpers of the server tests: a server on 127.0.0.1 (free port) over weights/llava-next-tiny, requests, the repo root.</summary>
internal static class ServeTestServer
{
    public const string Key = "test-key-7f3a";
    public static string ModelDir => Path.Combine(TestPaths.Root, "weights", "llava-next-tiny");
    public static readonly byte[] Png = EndToEndCheckpoints.Png(EndToEndCheckpoints.Gradient(seed: 4));
    public static string DataUri => "data:image/png;base64," + Convert.ToBase64String(Png);

    /// <summary>A server over the tiny model; <paramref name="configure"/> changes any other option (the hardening tests' limits and policies).</summary>
    public static Task<SafeCoDeServer> Start(TextWriter log, string? key = Key, int queue = 64, long maxBody = 4L << 20, double shutdownSeconds = 30, string judge = "fixed:safe", double timeoutSeconds = 60,
        Func<ServerOptions, ServerOptions>? configure = null) =>
        SafeCoDeServer.StartAsync((configure ?? (o => o))(new ServerOptions
        {
            ModelDir = ModelDir, Engine = new EngineOptions { Device = DeviceRequest.Cpu }, JudgeSpec = judge, Host = "127.0.0.1", Port = 0,
            ApiKey = key, QueueLength = queue, MaxBodyBytes = maxBody, MaxTokensCap = 1900, Log = log, RequestTimeout = TimeSpan.FromSeconds(timeoutSeconds),
            ShutdownDeadline = TimeSpan.FromSeconds(shutdownSeconds),
            ClientOverrides = ClientOverrides.All, // the protocol tests set safety fields per request; ServeOverrideTests check the policies
        }));

    public static HttpClient Http(SafeCoDeServer s, string? key = Key)
    {
        var h = new HttpClient { BaseAddress = s.BaseAddress, Timeout = TimeSpan.FromSeconds(90) };
        if (key is not null) h.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return h;
    }

    public static JsonObject Body(string prompt = "What is in the picture?", int maxTokens = 6, bool image = true, JsonObject? safecode = null, bool stream = false)
    {
        var content = new JsonArray(new JsonObject { ["type"] = "text", ["text"] = prompt });
        if (image) content.Add(new JsonObject { ["type"] = "image_url", ["image_url"] = new JsonObject { ["url"] = DataUri } });
        var b = new JsonObject
        {
            ["model"] = "default", ["max_tokens"] = maxTokens, ["temperature"] = 0, ["stream"] = stream,
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = content }),
        };
        if (safecode is not null) b["safecode"] = safecode;
        return b;
    }

    public static Task<HttpResponseMessage> Post(HttpClient h, string json, CancellationToken cancel = default) =>
        h.PostAsync("v1/chat/completions", new StringContent(json, Encoding.UTF8, "application/json"), cancel);

    /// <summary>The repository root (the folder with SafeCoDe.Torch.sln) above the test output folder.</summary>
    public static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "SafeCoDe.Torch.sln"))) return d.FullName;
        throw new DirectoryNotFoundException("SafeCoDe.Torch.sln not found above " + AppContext.BaseDirectory);
    }
}

/// <summary>A TextWriter that collects lines from several threads.</summary>
internal sealed class LogCapture : TextWriter
{
    private readonly StringBuilder _b = new();
    public override Encoding Encoding => Encoding.UTF8;
    public override void Write(char value) { lock (_b) _b.Append(value); }
    public override void Write(string? value) { lock (_b) _b.Append(value); }
    public override void WriteLine(string? value) { lock (_b) _b.Append(value).Append('\n'); }
    public override string ToString() { lock (_b) return _b.ToString(); }
}
