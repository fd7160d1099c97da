using SafeCoDe.Torch;
using SafeCoDe.Torch.Decoding.Methods;

namespace SafeCoDe.Cli.Serve;

/// <summary>Settings of <see cref="SafeCoDeServer"/> (the flags of <c>safecode serve</c>).</summary>
public sealed record ServerOptions
{
    /// <summary>The checkpoint folder.</summary>
    public required string ModelDir { get; init; }
    /// <summary>Device, dtype, prompt style.</summary>
    public EngineOptions Engine { get; init; } = new();
    /// <summary>Decode settings every request starts from (a request's <c>safecode</c> field overrides them).</summary>
    public DecodingOptions Decoding { get; init; } = DecodingMethods.Defaults(DecodingMethods.Default);
    /// <summary>The server's judge: self, local:DIR, openai[:MODEL], fixed:safe|unsafe, cache:FILE.</summary>
    public string JudgeSpec { get; init; } = "self";
    /// <summary>A judge cache file, or null.</summary>
    public string? JudgeCache { get; init; }
    /// <summary>The judge's format (<c>--judge-format</c>).</summary>
    public string JudgeFormat { get; init; } = Torch.Safety.Guards.JudgeFormats.Default;
    /// <summary>A system turn put before every conversation that has no system message, or null.</summary>
    public string? SystemPrompt { get; init; }
    /// <summary>Address to listen on (default 127.0.0.1: this machine only).</summary>
    public string Host { get; init; } = "127.0.0.1";
    /// <summary>Port (0: any free port; see <see cref="SafeCoDeServer.BaseAddress"/>).</summary>
    public int Port { get; init; } = 8000;
    /// <summary>The API key clients must send as <c>Authorization: Bearer KEY</c>; null: no authentication.</summary>
    public string? ApiKey { get; init; }
    /// <summary>Requests admitted at once (running + waiting); one more is answered 429.</summary>
    public int QueueLength { get; init; } = 64;
    /// <summary>
    /// Requests handed to the engine at the same time (their decode steps run as rows of one batch); null: what the
    /// engine admits, <see cref="EngineOptions.ConcurrentRequests"/> (<c>--max-batch-rows</c> / 2). The rest wait in the queue.
    /// </summary>
    public int? MaxConcurrent { get; init; }
    /// <summary>Longest a request may take, queue wait included (504 after it; a stream is ended).</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromMinutes(10);
    /// <summary>How long shutdown waits for in-flight requests before cancelling them.</summary>
    public TimeSpan ShutdownDeadline { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>Largest request body in bytes (413 above).</summary>
    public long MaxBodyBytes { get; init; } = 32L << 20;
    /// <summary>
    /// Request body bytes admitted at once (default 256 MiB): a request takes its body's size from this budget before
    /// the body is read and gives it back when it ends; one that does not fit is answered 429 (a request alone always fits).
    /// </summary>
    public long MaxInflightBytes { get; init; } = 256L << 20;
    /// <summary>Largest image (encoded bytes) in a request.</summary>
    public long MaxImageBytes { get; init; } = 20L << 20;
    /// <summary>Largest decoded image in pixels (the header is checked before decoding: decompression bombs are refused).</summary>
    public long MaxImagePixels { get; init; } = 40_000_000;
    /// <summary>Upper bound of <c>max_tokens</c>; also the default when a request sets none.</summary>
    public int MaxTokensCap { get; init; } = 1024;
    /// <summary>Accept <c>file:</c> image URLs (reads this machine's disk: off by default).</summary>
    public bool AllowFileUrls { get; init; }
    /// <summary>Download <c>http(s):</c> image URLs (off by default).</summary>
    public bool AllowHttpUrls { get; init; }
    /// <summary>
    /// What clients may change in a request's <c>safecode</c> field (default <see cref="Serve.ClientOverrides.None"/>:
    /// nothing that differs from these settings, so no client can switch safety off; see <see cref="ClientOverridePolicy"/>).
    /// </summary>
    public ClientOverrides ClientOverrides { get; init; } = ClientOverrides.None;
    /// <summary>Where the structured request log goes (one JSON object a line); null: stderr.</summary>
    public TextWriter? Log { get; init; }
    /// <summary>The model id of <c>/v1/models</c> (default: the checkpoint folder's name).</summary>
    public string? ModelId { get; init; }
    /// <summary>
    /// Keep listening after the model failed to load (every chat request then answers 503, /health and /ready too);
    /// false (the default): <c>serve</c> logs why and exits with code 1, so a supervisor restarts or reports it.
    /// </summary>
    public bool KeepServingOnLoadFailure { get; init; }
}
