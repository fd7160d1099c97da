using System.CommandLine;
using System.Net;

namespace SafeCoDe.Cli.Serve;

/// <summary><c>safecode serve</c>: the OpenAI-compatible server (<see cref="SafeCoDeServer"/>).</summary>
public static class ServeCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var gen = new GenerationOptions();
        var host = new Option<string>("--host") { Description = "Address to listen on (0.0.0.0: every interface — put a key on it)", HelpName = "ADDR", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { Description = "Port (0: any free port)", HelpName = "N", DefaultValueFactory = _ => 8000 };
        var apiKey = new Option<string>("--api-key") { Description = "Clients must send 'Authorization: Bearer KEY' [default: $SAFECODE_API_KEY; neither: no authentication]", HelpName = "KEY" };
        var queue = new Option<int>("--queue-length") { Description = "Requests admitted at once (running + waiting); more are answered 429 with Retry-After", HelpName = "N", DefaultValueFactory = _ => 64 };
        var timeout = new Option<double>("--request-timeout") { Description = "Seconds a request may take, queue wait included (504 after)", HelpName = "S", DefaultValueFactory = _ => 600 };
        var shutdown = new Option<double>("--shutdown-deadline") { Description = "Seconds in-flight requests get to finish on shutdown before they are cancelled", HelpName = "S", DefaultValueFactory = _ => 30 };
        var maxBody = new Option<string>("--max-body") { Description = "Largest request body", HelpName = "SIZE", DefaultValueFactory = _ => "32MB" };
        var maxInflight = new Option<string>("--max-inflight-bytes") { Description = "Request body bytes admitted at once, taken before a body is read; more are answered 429", HelpName = "SIZE", DefaultValueFactory = _ => "256MB" };
        var maxImage = new Option<string>("--max-image") { Description = "Largest image in a request (encoded bytes)", HelpName = "SIZE", DefaultValueFactory = _ => "20MB" };
        var maxPixels = new Option<long>("--max-image-pixels") { Description = "Largest decoded image (width × height, checked from the header before decoding)", HelpName = "N", DefaultValueFactory = _ => 40_000_000 };
        var maxTokens = new Option<int>("--max-tokens-cap") { Description = "Upper bound of a request's max_tokens, and the budget of requests that set none", HelpName = "N", DefaultValueFactory = _ => 1024 };
        var files = new Option<bool>("--allow-file-urls") { Description = "Accept file:// image URLs (reads this machine's disk)" };
        var http = new Option<bool>("--allow-http-urls") { Description = "Download http(s) image URLs" };
        var overrides = CliOptions.Choice("--client-overrides",
            "What a request's \"safecode\" field may change: none (nothing that differs from this server's settings, except values that only make it stricter), " +
            "decoding (also alpha, noise, sampling), all (also mode, judge, verdict, unknown_verdict and the refusal settings: lets a client switch safety off)",
            ["none", "decoding", "all"], "none");
        var keepServing = new Option<bool>("--keep-serving-on-load-failure")
        {
            Description = "When the model fails to load, keep listening (chat requests, /health and /ready answer 503) instead of exiting with code 1",
        };
        var modelId = new Option<string>("--model-id") { Description = "The model id listed by /v1/models [default: the checkpoint folder's name]", HelpName = "ID" };
        var cmd = new Command("serve", """
            An OpenAI-compatible HTTP server with SafeCoDe decoding: POST /v1/chat/completions (text + image_url parts,
            stream: true as server-sent events), GET /v1/models, /health, /ready, /metrics (Prometheus). A request's
            "safecode" field sets mode, preset, judge, verdict, alpha, ... as far as --client-overrides allows; the response
            carries safecode.verdict, caption and guided_text. The model loads after the server starts; requests wait for it.
            A model that fails to load ends the server with exit code 1 (unless --keep-serving-on-load-failure); /health
            answers 200 while the model loads or serves, 503 once loading failed; /ready 200 only when requests can be
            answered. Ctrl+C / SIGTERM drains.
            """) { host, port, apiKey, queue, timeout, shutdown, maxBody, maxInflight, maxImage, maxPixels, maxTokens, files, http, overrides, modelId, keepServing };
        gen.AddTo(cmd);
        Cli.SetExamples(cmd,
            "safecode serve --model weights/safescenes-tiny --port 8000",
            "SAFECODE_API_KEY=secret safecode serve -m DIR --host 0.0.0.0 --judge openai:gpt-4o --device cuda",
            "curl -s localhost:8000/v1/chat/completions -H 'Content-Type: application/json' -d '{\"model\":\"default\",\"messages\":[...]}'");
        cmd.SetHandler((p, io) =>
        {
            var s = gen.Read(p);
            s.CheckBeforeLoading();
            var clientOverrides = CliOptions.ParseChoice<ClientOverrides>(p.GetValue(overrides)!, "--client-overrides");
            // with --client-overrides all a request may choose a method that asks this server's judge
            s.PrintWarnings(io, "serve", judge: clientOverrides != ClientOverrides.All);
            var hostValue = p.GetValue(host)!;
            if (hostValue != "localhost" && !IPAddress.TryParse(hostValue, out _)) throw new UsageException($"--host '{hostValue}': expected an IP address or localhost");
            int portValue = p.GetValue(port);
            if (portValue is < 0 or > 65535) throw new UsageException($"--port {portValue}: expected 0..65535");
            int q = p.GetValue(queue);
            if (q < 1) throw new UsageException($"--queue-length {q}: expected at least 1");
            int cap = p.GetValue(maxTokens);
            if (cap < 1) throw new UsageException($"--max-tokens-cap {cap}: expected at least 1");
            double t = p.GetValue(timeout), d = p.GetValue(shutdown);
            if (t <= 0) throw new UsageException("--request-timeout: expected a positive number of seconds");
            if (d < 0) throw new UsageException("--shutdown-deadline: expected 0 or more seconds");
            var key = p.GetValue(apiKey) ?? Environment.GetEnvironmentVariable("SAFECODE_API_KEY");
            var options = new ServerOptions
            {
                ModelDir = s.ModelDir, Engine = s.Engine, Decoding = s.Decoding, JudgeSpec = s.JudgeSpec, JudgeFormat = s.JudgeFormat, JudgeCache = s.JudgeCache, SystemPrompt = s.SystemPrompt,
                Host = hostValue, Port = portValue, ApiKey = string.IsNullOrEmpty(key) ? null : key, QueueLength = q,
                RequestTimeout = TimeSpan.FromSeconds(t), ShutdownDeadline = TimeSpan.FromSeconds(d),
                MaxBodyBytes = CliOptions.ParseBytes(p.GetValue(maxBody)!, "--max-body"), MaxInflightBytes = CliOptions.ParseBytes(p.GetValue(maxInflight)!, "--max-inflight-bytes"), MaxImageBytes = CliOptions.ParseBytes(p.GetValue(maxImage)!, "--max-image"),
                MaxImagePixels = p.GetValue(maxPixels), MaxTokensCap = cap, AllowFileUrls = p.GetValue(files), AllowHttpUrls = p.GetValue(http),
                ModelId = p.GetValue(modelId), Log = io.Error, KeepServingOnLoadFailure = p.GetValue(keepServing), ClientOverrides = clientOverrides,
            };
            return Run(options).GetAwaiter().GetResult();
        });
        return cmd;
    }

    private static async Task<int> Run(ServerOptions options)
    {
        CliCancel.HostHandles = true; // the web host drains in-flight requests on Ctrl+C / SIGTERM
        SafeCoDe.Torch.Runtime.MemoryGate.TuneNativeHeap(); // a server process: memory should come back after bursts
        await using var server = await SafeCoDeServer.StartAsync(options);
        return await server.RunUntilShutdownAsync();
    }
}
