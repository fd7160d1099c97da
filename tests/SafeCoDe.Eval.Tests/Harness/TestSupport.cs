using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using NUnit.Framework;
using SafeCoDe.Eval.Runs;
using SafeCoDe.Eval.Scoring;
using SafeCoDe.Torch.Runtime;

namespace SafeCoDe.Eval.Tests.Harness;

/// <summary>Brings up the CPU libtorch once for the tests that load the tiny model.</summary>
[SetUpFixture]
public sealed class HarnessSetup
{
    [OneTimeSetUp]
    public void Init() => NativeRuntime.Initialize(new RuntimeOptions { Device = DeviceRequest.Cpu });
}

internal static class T
{
    /// <summary>Runs the <c>safecode</c> command line in-process: exit code, stdout, stderr.</summary>
    public static (int code, string stdout, string stderr) RunCli(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = SafeCoDe.Cli.Cli.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    public static string TinyModel => Path.Combine(AppContext.BaseDirectory, "weights", "llava-next-tiny");

    public static string NewDir()
    {
        var d = Path.Combine(Path.GetTempPath(), "safecode-eval-tests", Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(d);
        return d;
    }

    public static ScoreResult Score(string label, bool parsed = true) =>
        new() { Scorer = "test", Rubric = "test", Label = label, Parsed = parsed };

    public static RunOutput Out(string key, string? label, string answer = "an answer", bool parsed = true) => new()
    {
        Key = key, Question = "q", Answer = answer, Score = label is null ? null : Score(label, parsed),
        GeneratedTokens = 10, Timings = new OutputTimings { PrefillMs = 100, GuidedMs = 50, DecodeMs = 150, TotalMs = 320, JudgeMs = 20 },
    };

    public static RunRecord Rec(string id, string benchmark, Dictionary<string, string>? groups, params RunOutput[] outputs) => new()
    {
        Id = id, Benchmark = benchmark, Groups = groups ?? new Dictionary<string, string>(), Outputs = outputs,
    };

    public static Dictionary<string, string> G(params string[] kv)
    {
        var d = new Dictionary<string, string>();
        for (int i = 0; i < kv.Length; i += 2) d[kv[i]] = kv[i + 1];
        return d;
    }
}

/// <summary>An OpenAI-compatible chat endpoint on 127.0.0.1: a real HTTP server answering with a function of the request.</summary>
internal sealed class FakeJudgeServer : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Func<JsonNode, string> _answer;
    private int _failuresLeft;
    public ConcurrentQueue<JsonNode> Requests { get; } = new();
    public string BaseUrl { get; }
    public int Calls => Requests.Count;

    /// <param name="answer">Reply text for a request body.</param>
    /// <param name="failFirst">The first N requests get HTTP 500.</param>
    public FakeJudgeServer(Func<JsonNode, string> answer, int failFirst = 0)
    {
        _answer = answer; _failuresLeft = failFirst;
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        int port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        _listener.Prefixes.Add($"http://127.0.0.1:{port}/");
        _listener.Start();
        BaseUrl = $"http://127.0.0.1:{port}/v1";
        _ = Task.Run(Loop);
    }

    /// <summary>The user message text of a chat request.</summary>
    public static string UserText(JsonNode body)
    {
        var user = body["messages"]!.AsArray().Last(m => (string?)m!["role"] == "user")!;
        var content = user["content"]!;
        if (content is JsonValue) return (string)content!;
        return string.Concat(content.AsArray().Where(c => (string?)c!["type"] == "text").Select(c => (string?)c!["text"]));
    }

    public static bool HasImage(JsonNode body) =>
        body["messages"]!.AsArray().Any(m => m!["content"] is JsonArray a && a.Any(c => (string?)c!["type"] == "image_url"));

    private async Task Loop()
    {
        for (int served = 0; served < 2000 && !_stop.IsCancellationRequested; served++)
        {
            HttpListenerContext ctx;
            try { ctx = await _listener.GetContextAsync().WaitAsync(_stop.Token); }
            catch { return; }
            using var reader = new StreamReader(ctx.Request.InputStream, Encoding.UTF8);
            var body = JsonNode.Parse(await reader.ReadToEndAsync())!;
            Requests.Enqueue(body);
            int status = 200;
            string json;
            if (Interlocked.Decrement(ref _failuresLeft) >= 0) { status = 500; json = "{\"error\":{\"message\":\"try again\"}}"; }
            else json = new JsonObject
            {
                ["id"] = "chatcmpl-test", ["object"] = "chat.completion", ["created"] = 1700000000, ["model"] = (string?)body["model"] ?? "m",
                ["choices"] = new JsonArray(new JsonObject { ["index"] = 0, ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = _answer(body) }, ["finish_reason"] = "stop" }),
                ["usage"] = new JsonObject { ["prompt_tokens"] = 10, ["completion_tokens"] = 2, ["total_tokens"] = 12 },
            }.ToJsonString();
            try
            {
                ctx.Response.StatusCode = status;
                ctx.Response.ContentType = "application/json";
                var bytes = Encoding.UTF8.GetBytes(json);
                await ctx.Response.OutputStream.WriteAsync(bytes);
                ctx.Response.Close();
            }
            catch { }
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        try { _listener.Stop(); _listener.Close(); } catch { }
    }
}
