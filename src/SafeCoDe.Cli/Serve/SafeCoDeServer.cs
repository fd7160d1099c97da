using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using SafeCoDe.Torch;
using SafeCoDe.Torch.Chat;
using SafeCoDe.Torch.Decoding.Methods;
using SafeCoDe.Torch.Processing.Images;
using SafeCoDe.Torch.Safety;

namespace SafeCoDe.Cli.Serve;

/// <summary>
/// The OpenAI-compatible HTTP server of <c>safecode serve</c> (Kestrel, ASP.NET Core's shared framework):
/// <c>POST /v1/chat/completions</c> (streaming as server-sent events), <c>GET /v1/models</c>, <c>/health</c>,
/// <c>/ready</c>, <c>/metrics</c>. Conversations go through <see cref="SafeCoDeChatClient"/> (the family's chat
/// format); requests are admitted by a bounded <see cref="RequestQueue"/>. The model loads in the background after
/// <see cref="StartAsync"/>; requests that arrive meanwhile wait for it.
/// </summary>
public sealed class SafeCoDeServer : IAsyncDisposable
{
    private const string ChatPath = "/v1/chat/completions";
    private readonly ServerOptions _o;
    private readonly WebApplication _app;
    private readonly RequestQueue _queue;
    private readonly ByteBudget _inflight;
    private readonly ServerMetrics _metrics = new();
    private readonly CancellationTokenSource _shutdown = new();
    private readonly TextWriter _log;
    private readonly object _logLock = new();
    private readonly byte[]? _keyHash;
    private Task<SafeCoDeEngine> _engine = null!;
    private ISafetyJudge? _judge;
    private volatile bool _draining;
    private int _largeSinceTrim;
    /// <summary>A body (or a decoded image, in bytes of RGBA) this large marks a request whose memory is given back when the server goes idle.</summary>
    private const long LargeBytes = 8L << 20;
    /// <summary>Bytes of a connection's request Kestrel reads ahead (its default is 1 MB per connection, kept in its pool).</summary>
    private const long ConnectionBuffer = 128 << 10;

    private SafeCoDeServer(ServerOptions o, WebApplication app)
    {
        _o = o;
        _app = app;
        _queue = new RequestQueue(o.QueueLength, o.MaxConcurrent ?? o.Engine.ConcurrentRequests);
        _inflight = new ByteBudget(o.MaxInflightBytes);
        _log = o.Log ?? Console.Error;
        _keyHash = string.IsNullOrEmpty(o.ApiKey) ? null : SHA256.HashData(Encoding.UTF8.GetBytes(o.ApiKey));
        ModelId = o.ModelId ?? Path.GetFileName(Path.GetFullPath(o.ModelDir).TrimEnd('/', '\\'));
    }

    /// <summary>The model id clients send (<c>default</c> is accepted too).</summary>
    public string ModelId { get; }

    /// <summary>Where the server listens, e.g. <c>http://127.0.0.1:8000/</c> (the real port when 0 was asked).</summary>
    public Uri BaseAddress { get; private set; } = null!;

    /// <summary>Completes when the model is loaded; faults when loading failed.</summary>
    public Task Loaded => _engine;

    /// <summary>The admission queue (for metrics and tests).</summary>
    public RequestQueue Queue => _queue;

    /// <summary>The request bytes held now (<see cref="ServerOptions.MaxInflightBytes"/>; for metrics and tests).</summary>
    public ByteBudget InflightBytes => _inflight;

    /// <summary>Starts listening and begins loading the model.</summary>
    public static async Task<SafeCoDeServer> StartAsync(ServerOptions options, CancellationToken cancel = default)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = options.MaxBodyBytes;
            // Kestrel buffers up to this much of each connection's body ahead of the reader, in pooled blocks it keeps:
            // with the 1 MB default a burst of 64 uploads left 70 MB of pinned blocks behind; the body is read right away
            k.Limits.MaxRequestBufferSize = ConnectionBuffer;
            if (options.Host is "localhost") k.ListenLocalhost(options.Port);
            else k.Listen(IPAddress.Parse(options.Host), options.Port);
        });
        builder.WebHost.UseSockets(t => t.MaxReadBufferSize = ConnectionBuffer); // the transport's own read-ahead, likewise
        builder.Services.Configure<HostOptions>(h => h.ShutdownTimeout = options.ShutdownDeadline + TimeSpan.FromSeconds(5));
        var app = builder.Build();
        var server = new SafeCoDeServer(options, app);
        server.Map();
        app.Lifetime.ApplicationStopping.Register(server.BeginDrain);
        server._engine = server.LoadAsync();
        await app.StartAsync(cancel).ConfigureAwait(false);
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        server.BaseAddress = new Uri(address.Replace("[::]", "127.0.0.1").TrimEnd('/') + "/");
        server.Log(new JsonObject { ["event"] = "listening", ["url"] = server.BaseAddress.ToString(), ["model"] = server.ModelId, ["auth"] = server._keyHash is not null });
        return server;
    }

    private async Task<SafeCoDeEngine> LoadAsync()
    {
        await Task.Yield();
        var sw = Stopwatch.StartNew();
        try
        {
            var engineOptions = _o.Engine with { ImageLimits = new ImageDecodeOptions { MaxPixels = _o.MaxImagePixels, MaxFileBytes = _o.MaxImageBytes } };
            var engine = await Task.Run(() => SafeCoDeEngine.LoadAsync(_o.ModelDir, engineOptions, null, _shutdown.Token)).ConfigureAwait(false);
            // the server's judge serves every request whose method uses one, whatever the server's default method
            var settings = new GenerationSettings(_o.ModelDir, engineOptions, _o.Decoding, _o.JudgeSpec, _o.JudgeCache, _o.SystemPrompt) { JudgeFormat = _o.JudgeFormat };
            _judge = settings.BuildJudge(engine);
            Log(new JsonObject { ["event"] = "model_loaded", ["model"] = ModelId, ["ms"] = Math.Round(sw.Elapsed.TotalMilliseconds) });
            return engine;
        }
        catch (Exception ex)
        {
            Log(new JsonObject { ["event"] = "model_load_failed", ["model"] = ModelId, ["error"] = ex.Message }, "error");
            throw;
        }
    }

    private void BeginDrain()
    {
        _draining = true;
        Log(new JsonObject { ["event"] = "shutdown", ["in_flight"] = _queue.Admitted, ["deadline_s"] = _o.ShutdownDeadline.TotalSeconds });
        if (_queue.Admitted == 0) _shutdown.Cancel();
        else _shutdown.CancelAfter(_o.ShutdownDeadline);
    }

    /// <summary>Stops accepting requests, lets in-flight ones finish until the shutdown deadline, cancels the rest.</summary>
    public Task StopAsync(CancellationToken cancel = default) => _app.StopAsync(cancel);

    /// <summary>Completes when the host shuts down (Ctrl+C, SIGTERM, <see cref="StopAsync"/>).</summary>
    public Task WaitForShutdownAsync() => _app.WaitForShutdownAsync();

    /// <summary>
    /// Serves until the host shuts down (exit code 0), or until the model fails to load (exit code 1, after the
    /// failure was logged) unless <see cref="ServerOptions.KeepServingOnLoadFailure"/>.
    /// </summary>
    public async Task<int> RunUntilShutdownAsync()
    {
        var shutdown = WaitForShutdownAsync();
        await Task.WhenAny(shutdown, _engine).ConfigureAwait(false);
        if (_engine.IsFaulted && !_o.KeepServingOnLoadFailure)
        {
            Log(new JsonObject { ["event"] = "exiting", ["reason"] = "the model failed to load (--keep-serving-on-load-failure keeps the server up)", ["exit_code"] = ExitCodes.Failed }, "error");
            await StopAsync().ConfigureAwait(false);
            return ExitCodes.Failed;
        }
        await shutdown.ConfigureAwait(false);
        return ExitCodes.Ok;
    }

    /// <summary>Stops the server and frees the model.</summary>
    public async ValueTask DisposeAsync()
    {
        try { await _app.StopAsync().ConfigureAwait(false); } catch (OperationCanceledException) { }
        await _app.DisposeAsync().ConfigureAwait(false);
        _shutdown.Cancel();
        try { (await _engine.ConfigureAwait(false)).Dispose(); } catch (Exception) { /* a failed or cancelled load has nothing to free */ }
        (_judge as IDisposable)?.Dispose();
        _shutdown.Dispose();
    }

    // ---- routing ------------------------------------------------------------------------------------------------

    private void Map()
    {
        _app.Use(async (ctx, next) =>
        {
            var sw = Stopwatch.StartNew();
            ctx.Items["sw"] = sw;
            var path = ctx.Request.Path.Value ?? "/";
            bool open = path is "/health" or "/ready";
            try
            {
                if (!open && _keyHash is not null && !Authorized(ctx.Request))
                    await Error(ctx, new ApiException(401, "authentication_error", "missing or invalid API key (send Authorization: Bearer KEY)", null, "invalid_api_key"));
                else await next(ctx);
            }
            catch (Exception ex) when (!ctx.Response.HasStarted)
            {
                await Error(ctx, ToApi(ex, ctx));
            }
            catch (Exception ex)
            {
                ctx.Items["error"] = ex.GetType().Name + ": " + ex.Message;
            }
            finally
            {
                var status = ctx.RequestAborted.IsCancellationRequested && ctx.Items.ContainsKey("aborted") ? 499 : ctx.Response.StatusCode;
                string known = path.StartsWith("/v1/models", StringComparison.Ordinal) ? "/v1/models" : path is ChatPath or "/health" or "/ready" or "/metrics" ? path : "other";
                _metrics.Request(known, status, sw.Elapsed.TotalSeconds);
                var line = new JsonObject
                {
                    ["event"] = "request", ["id"] = ctx.TraceIdentifier, ["method"] = ctx.Request.Method, ["path"] = known, ["status"] = status,
                    ["ms"] = Math.Round(sw.Elapsed.TotalMilliseconds, 1), ["remote"] = ctx.Connection.RemoteIpAddress?.ToString(),
                };
                foreach (var k in new[] { "stream", "prompt_tokens", "completion_tokens", "verdict", "mode", "error", "queue_ms", "images_combined" })
                    if (ctx.Items.TryGetValue(k, out var v) && v is not null) line[k] = JsonValue.Create(v);
                // a probe's 503 while loading or draining is expected: not an error
                bool probe = known is "/ready" or "/health";
                Log(line, probe ? (status >= 500 && _engine.IsFaulted ? "warn" : "info") : status >= 500 ? "error" : status >= 400 ? "warn" : "info");
            }
        });
        // liveness: 200 while the model loads or serves; 503 once loading failed (no model will ever answer)
        _app.MapGet("/health", (HttpContext ctx) =>
        {
            bool failed = _engine.IsFaulted;
            ctx.Response.StatusCode = failed ? 503 : 200;
            return Results.Text(new JsonObject { ["status"] = failed ? "failed" : _engine.IsCompletedSuccessfully ? "ok" : "loading" }.ToJsonString(), "application/json");
        });
        _app.MapGet("/ready", (HttpContext ctx) =>
        {
            string state = _engine.IsCompletedSuccessfully ? "ready" : _engine.IsFaulted ? "failed" : "loading";
            ctx.Response.StatusCode = state == "ready" && !_draining ? 200 : 503;
            return Results.Text(new JsonObject { ["status"] = _draining ? "stopping" : state, ["model"] = ModelId }.ToJsonString(), "application/json");
        });
        _app.MapGet("/metrics", () => Results.Text(_metrics.Render(_queue, _engine.IsCompletedSuccessfully, _inflight), "text/plain; version=0.0.4; charset=utf-8"));
        _app.MapGet("/v1/models", () => Results.Text(new JsonObject { ["object"] = "list", ["data"] = new JsonArray(ModelObject()) }.ToJsonString(), "application/json"));
        _app.MapGet("/v1/models/{id}", (string id) => id == ModelId || id == "default"
            ? Results.Text(ModelObject().ToJsonString(), "application/json")
            : throw new ApiException(404, "invalid_request_error", $"the model '{id}' does not exist (this server runs '{ModelId}')", "model", "model_not_found"));
        _app.MapPost(ChatPath, ChatAsync);
        _app.MapFallback((HttpContext ctx) =>
        {
            if (ctx.Request.Path != ChatPath)
                throw new ApiException(404, "invalid_request_error", $"no route {ctx.Request.Method} {ctx.Request.Path}", null, "not_found");
            ctx.Response.Headers.Allow = "POST";
            throw new ApiException(405, "invalid_request_error", $"{ChatPath} takes POST with a JSON body (this request used {ctx.Request.Method})", null, "method_not_allowed");
        });
    }

    private JsonObject ModelObject() => new() { ["id"] = ModelId, ["object"] = "model", ["created"] = 0, ["owned_by"] = "safecode" };

    private bool Authorized(HttpRequest r)
    {
        string? auth = r.Headers.Authorization;
        string? key = auth is not null && auth.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) ? auth[7..].Trim() : r.Headers["api-key"];
        if (key is null) return false;
        // hashes have one length, so the comparison takes the same time whatever the key's length and content
        return CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(key)), _keyHash);
    }

    // ---- chat completions ---------------------------------------------------------------------------------------

    /// <summary>
    /// A chat request is admitted before its body is read: a place in the queue, then its body's bytes from the
    /// --max-inflight-bytes budget. The rest are answered 429 (their bodies drained, so they get the answer), and the
    /// memory the server holds is bounded by what it admitted.
    /// </summary>
    private async Task ChatAsync(HttpContext ctx)
    {
        try { await AdmitAndServeAsync(ctx); }
        finally
        {
            // the last request of a burst of large bodies or images: what they left behind goes back to the system
            if (_queue.Admitted == 0 && Interlocked.Exchange(ref _largeSinceTrim, 0) == 1) SafeCoDe.Torch.Runtime.MemoryGate.ReturnMemorySoon();
        }
    }

    private async Task AdmitAndServeAsync(HttpContext ctx)
    {
        if (_draining) throw new ApiException(503, "server_error", "the server is shutting down", null, "shutting_down");
        if (ctx.Request.ContentLength > _o.MaxBodyBytes) throw new ApiException(413, "invalid_request_error", $"the request body is over the {_o.MaxBodyBytes}-byte limit", null, "request_too_large");
        using var ticket = _queue.TryAdmit();
        if (ticket is null) { await Reject(ctx, "queue_full", $"the server's queue is full ({_o.QueueLength} requests); retry later"); return; }
        using var share = _inflight.Open();
        using var timeout = new CancellationTokenSource(_o.RequestTimeout);
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(ctx.RequestAborted, timeout.Token, _shutdown.Token);
        ChatCompletionRequest req;
        try
        {
            var body = await RequestBodies.ReadAsync(ctx.Request, share, _o.MaxBodyBytes, cancel.Token);
            if (body is not { } b) { await Reject(ctx, "busy", $"the server holds {_o.MaxInflightBytes} bytes of requests already (--max-inflight-bytes); retry later"); return; }
            if (b.Length >= LargeBytes) Volatile.Write(ref _largeSinceTrim, 1);
            req = ParseRequest(ctx, b.Body, b.Length);
        }
        catch (OperationCanceledException) when (cancel.IsCancellationRequested) { await Cancelled(ctx, timeout); return; }
        await ServeAdmittedAsync(ctx, req, ticket, timeout, cancel.Token);
    }

    private async Task Reject(HttpContext ctx, string code, string message)
    {
        _metrics.Rejected();
        await RequestBodies.DrainAsync(ctx.Request, TimeSpan.FromSeconds(30), ctx.RequestAborted);
        ctx.Response.Headers.RetryAfter = "1";
        throw new ApiException(429, "rate_limit_error", message, null, code);
    }

    private ChatCompletionRequest ParseRequest(HttpContext ctx, byte[] body, int length)
    {
        JsonDocument doc;
        List<ReadOnlyMemory<byte>> blobs;
        try
        {
            (var json, blobs) = BodyBlobs.Lift(body, length); // the parser never sees the large image strings
            doc = JsonDocument.Parse(json);
        }
        catch (JsonException ex) { throw ApiException.Invalid($"the body is not valid JSON: {ex.Message}", null, "invalid_json"); }
        ChatCompletionRequest req;
        using (doc) req = OpenAiProtocol.Parse(doc.RootElement, _o.Decoding, _o.MaxTokensCap, _o.AllowFileUrls, _o.AllowHttpUrls, blobs);
        ClientOverridePolicy.Check(req.SafeCoDe, _o.ClientOverrides, new ClientOverridePolicy.ServerSide(_o.Decoding, _o.JudgeSpec));
        if (req.Model is not null && req.Model != ModelId && req.Model != "default")
            throw new ApiException(404, "invalid_request_error", $"the model '{req.Model}' does not exist (this server runs '{ModelId}')", "model", "model_not_found");
        var fromFiles = ReadFileImages(req.Messages);
        if (fromFiles.Count > 0) ctx.Items["file_image"] = true;
        CheckImages(req.Messages, fromFiles);
        if (CombineImages(req.Messages) is int combined) ctx.Items["images_combined"] = combined;
        ctx.Items["stream"] = req.Stream;
        return req;
    }

    /// <summary>A request cancelled by the client (499 in the log), its timeout (504) or shutdown (503); in a stream, one more event.</summary>
    private async Task Cancelled(HttpContext ctx, CancellationTokenSource timeout)
    {
        _metrics.Cancelled();
        if (ctx.RequestAborted.IsCancellationRequested) { ctx.Items["aborted"] = true; ctx.Items["error"] = "client disconnected"; return; }
        var e = timeout.IsCancellationRequested
            ? new ApiException(504, "timeout_error", $"the request took longer than the server's {_o.RequestTimeout.TotalSeconds:F0} s limit", null, "timeout")
            : new ApiException(503, "server_error", "the server is shutting down; the request was cancelled", null, "shutting_down");
        if (!ctx.Response.HasStarted) throw e;
        ctx.Items["error"] = e.Message;
        await WriteSse(ctx, e.ToJson(), CancellationToken.None);
    }

    private async Task ServeAdmittedAsync(HttpContext ctx, ChatCompletionRequest req, RequestQueue.Ticket ticket, CancellationTokenSource timeout, CancellationToken cancel)
    {
        try
        {
            var queued = Stopwatch.StartNew();
            var engine = await _engine.WaitAsync(cancel);
            await ticket.WaitTurnAsync(cancel);
            ctx.Items["queue_ms"] = Math.Round(queued.Elapsed.TotalMilliseconds, 1);
            await RunAsync(ctx, req, engine, cancel);
        }
        catch (OperationCanceledException) when (cancel.IsCancellationRequested)
        {
            await Cancelled(ctx, timeout);
        }
        catch (Exception ex) when (ctx.Response.HasStarted)
        {
            // the stream has begun: the error goes out as one more event (the OpenAI convention), then the stream ends
            var e = ToApi(ex, ctx);
            ctx.Items["error"] = e.Message;
            try { await WriteSse(ctx, e.ToJson(), ctx.RequestAborted); } catch (Exception) when (ctx.RequestAborted.IsCancellationRequested) { }
        }
        catch (Exception) when (_engine.IsFaulted)
        {
            throw new ApiException(503, "server_error", $"the model failed to load: {_engine.Exception!.GetBaseException().Message}", null, "model_unavailable");
        }
    }

    /// <summary>
    /// Replaces the request's <c>file:</c> images (allowed by --allow-file-urls) by their bytes, read here within
    /// --max-image from regular files only (a FIFO or <c>/dev/zero</c> is refused by name). Returns those images, so
    /// that errors about them never echo the file's content.
    /// </summary>
    private HashSet<DataContent> ReadFileImages(List<ChatMessage> messages)
    {
        var read = new HashSet<DataContent>(ReferenceEqualityComparer.Instance);
        foreach (var m in messages)
            for (int i = 0; i < m.Contents.Count; i++)
            {
                if (m.Contents[i] is not UriContent { Uri.IsFile: true } u) continue;
                byte[] bytes;
                try { bytes = ChatConversation.ReadFile(u.Uri.LocalPath, _o.MaxImageBytes); }
                catch (SafeCoDe.Torch.Runtime.InputFileException e) { throw ApiException.Invalid($"the image file cannot be used: {e.Message}", "messages", "invalid_image"); }
                catch (UnauthorizedAccessException) { throw ApiException.Invalid($"the image file {u.Uri.LocalPath} cannot be read (permission denied)", "messages", "invalid_image"); }
                var d = new DataContent(bytes, u.MediaType == "image/*" ? "image/png" : u.MediaType);
                m.Contents[i] = d;
                read.Add(d);
            }
        return read;
    }

    /// <summary>
    /// Several images in the last user message and none elsewhere (VLMEvalKit's MMMU sends every image of a question
    /// in one message): they become one image, side by side and top-aligned, where the first stood — how VLMEvalKit
    /// combines images for single-image models, and how <c>eval run</c> sends them — since SafeCoDe judges one scene.
    /// Returns how many were combined, or null when nothing was changed.
    /// </summary>
    private int? CombineImages(List<ChatMessage> messages)
    {
        static bool IsImage(AIContent c) => c is DataContent d && d.HasTopLevelMediaType("image") || c is UriContent u && u.HasTopLevelMediaType("image");
        var last = messages[^1];
        var images = last.Contents.Where(IsImage).ToList();
        if (images.Count < 2 || images.Any(c => c is not DataContent) || messages.Take(messages.Count - 1).Any(m => m.Contents.Any(IsImage))) return null;
        var limits = new ImageDecodeOptions { MaxPixels = _o.MaxImagePixels, MaxFileBytes = _o.MaxImageBytes };
        RgbImage strip;
        try
        {
            // the strip's size from the headers first: nothing is decoded when the combined image would be over the limit
            var sizes = images.Cast<DataContent>().Select((d, k) => ImageDecoder.Identify(d.Data.ToArray(), $"the request's image {k + 1}", limits)).ToList();
            long width = sizes.Sum(h => (long)h.Width), height = sizes.Max(h => (long)h.Height);
            if (width * height > _o.MaxImagePixels)
                throw ApiException.Invalid($"the {images.Count} images side by side would be {width}x{height} pixels, over the server's {_o.MaxImagePixels}-pixel limit (--max-image-pixels)", "messages", "image_too_large");
            strip = SafeCoDe.Eval.ImageStrip.Horizontal(images.Cast<DataContent>().Select((d, k) => ImageDecoder.Decode(d.Data.ToArray(), $"the request's image {k + 1}", limits)).ToList());
        }
        catch (ImageDecodeException ex) { throw ApiException.Invalid($"the image cannot be used: {ex.Message}", "messages", "invalid_image"); }
        using var img = SixLabors.ImageSharp.Image.LoadPixelData<SixLabors.ImageSharp.PixelFormats.Rgb24>(strip.Pixels, strip.Width, strip.Height);
        using var ms = new MemoryStream();
        SixLabors.ImageSharp.ImageExtensions.SaveAsPng(img, ms);
        int first = last.Contents.IndexOf(images[0]);
        foreach (var c in images) last.Contents.Remove(c);
        last.Contents.Insert(first, new DataContent(ms.ToArray(), "image/png"));
        return images.Count;
    }

    private void CheckImages(List<ChatMessage> messages, HashSet<DataContent> fromFiles)
    {
        foreach (var d in messages.SelectMany(m => m.Contents).OfType<DataContent>())
        {
            if (d.Data.Length > _o.MaxImageBytes)
                throw new ApiException(413, "invalid_request_error", $"the image is {d.Data.Length} bytes, over the {_o.MaxImageBytes}-byte limit", "messages", "image_too_large");
            var bytes = System.Runtime.InteropServices.MemoryMarshal.TryGetArray(d.Data, out var seg) && seg.Offset == 0 && seg.Count == seg.Array!.Length ? seg.Array : d.Data.ToArray();
            try
            {
                var header = ImageDecoder.Identify(bytes, "the request's image", new ImageDecodeOptions { MaxPixels = _o.MaxImagePixels, MaxFileBytes = _o.MaxImageBytes });
                if (4L * header.Width * header.Height >= LargeBytes) Volatile.Write(ref _largeSinceTrim, 1);
            }
            catch (ImageDecodeException ex)
            {
                throw ApiException.Invalid(fromFiles.Contains(d) ? FileImageError(ex) : $"the image cannot be used: {ex.Message}", "messages", "invalid_image");
            }
        }
    }

    /// <summary>Why a file image was refused, in words that quote nothing read from the file (no bytes, no chunk names, no sizes).</summary>
    private static string FileImageError(ImageDecodeException e) => "the image file cannot be used: " + e.Failure switch
    {
        ImageDecodeFailure.UnknownFormat => "it is not a JPEG, PNG, WebP, BMP or GIF image",
        ImageDecodeFailure.Truncated => "the image data is truncated",
        ImageDecodeFailure.TooLarge => "it is over the server's image limits (--max-image, --max-image-pixels)",
        ImageDecodeFailure.Unreadable => "it cannot be read",
        _ => "the image data is damaged",
    };

    private async Task RunAsync(HttpContext ctx, ChatCompletionRequest req, SafeCoDeEngine engine, CancellationToken cancel)
    {
        var ext = req.SafeCoDe;
        var decoding = ext.Options;
        if (req.MaxTokens is null) decoding = decoding with { MaxTotalTokens = Math.Min(decoding.MaxTotalTokens ?? _o.MaxTokensCap, _o.MaxTokensCap) };
        using var client = new SafeCoDeChatClient(engine, new SafeCoDeChatClientOptions
        {
            Decoding = decoding, Judge = ext.Judge == "self" ? new ModelJudge(engine) : _judge, ModelId = ModelId,
            Images = new ImageSourcePolicy { MaxImageBytes = _o.MaxImageBytes, AllowFiles = _o.AllowFileUrls, AllowHttp = _o.AllowHttpUrls },
        });
        var options = new ChatOptions { Temperature = (float?)req.Temperature, TopP = (float?)req.TopP, MaxOutputTokens = req.MaxTokens, Seed = req.Seed };
        if (ext.Verdict is not null) (options.AdditionalProperties ??= [])["safecode.verdict"] = ext.Verdict;
        if (req.Logprobs is { } top) (options.AdditionalProperties ??= [])[LogprobsKey] = top;
        var messages = req.Messages;
        if (DecodingMethods.Of(decoding).Needs(decoding).Image && !messages.Any(m => m.Role == ChatRole.User && m.Contents.Any(c => c is DataContent or UriContent)))
            throw ApiException.Invalid(
                $"{decoding.Method} decoding needs an image: send one in a user message as an image_url content part " +
                "({\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,...\"}}), or ask for \"safecode\":{\"mode\":\"" + DecodingMethods.Plain + "\"} to answer without one",
                "messages", "image_required");
        if (_o.SystemPrompt is not null && !messages.Any(m => m.Role == ChatRole.System)) messages = [new ChatMessage(ChatRole.System, _o.SystemPrompt), .. messages];

        string id = "chatcmpl-" + Guid.NewGuid().ToString("N");
        long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var started = Stopwatch.StartNew();
        if (!req.Stream)
        {
            var r = await client.GetResponseAsync(messages, options, cancel);
            Account(ctx, r.Usage, r.AdditionalProperties, started.Elapsed.TotalSeconds);
            var body = new JsonObject
            {
                ["id"] = id, ["object"] = "chat.completion", ["created"] = created, ["model"] = ModelId,
                ["choices"] = new JsonArray(new JsonObject
                {
                    ["index"] = 0, ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = r.Text, ["refusal"] = null },
                    ["logprobs"] = req.Logprobs is null ? null : OpenAiProtocol.LogprobsJson(Logprobs(r.AdditionalProperties)), ["finish_reason"] = Finish(r.FinishReason),
                }),
                ["usage"] = Usage(r.Usage), ["system_fingerprint"] = null, ["safecode"] = SafeCoDeField(r.AdditionalProperties),
            };
            ctx.Response.ContentType = "application/json";
            await ctx.Response.WriteAsync(body.ToJsonString(), cancel);
            return;
        }

        ctx.Response.ContentType = "text/event-stream";
        ctx.Response.Headers.CacheControl = "no-cache";
        ctx.Response.Headers["X-Accel-Buffering"] = "no";
        JsonObject Chunk(JsonObject delta, string? finish, JsonObject? logprobs = null) => new()
        {
            ["id"] = id, ["object"] = "chat.completion.chunk", ["created"] = created, ["model"] = ModelId, ["system_fingerprint"] = null,
            ["choices"] = new JsonArray(new JsonObject { ["index"] = 0, ["delta"] = delta, ["logprobs"] = logprobs, ["finish_reason"] = finish }),
        };
        bool first = true;
        await foreach (var u in client.GetStreamingResponseAsync(messages, options, cancel))
        {
            if (first)
            {
                _metrics.FirstToken(started.Elapsed.TotalSeconds);
                await WriteSse(ctx, Chunk(new JsonObject { ["role"] = "assistant", ["content"] = "" }, null).ToJsonString(), cancel);
                first = false;
            }
            if (u.FinishReason is null)
            {
                // with logprobs, a piece of no text still carries its tokens (special tokens the text leaves out)
                var tokens = req.Logprobs is null ? [] : Logprobs(u.AdditionalProperties);
                if (u.Text.Length > 0 || tokens.Count > 0)
                    await WriteSse(ctx, Chunk(new JsonObject { ["content"] = u.Text }, null, req.Logprobs is null ? null : OpenAiProtocol.LogprobsJson(tokens)).ToJsonString(), cancel);
                continue;
            }
            var usage = u.Contents.OfType<UsageContent>().FirstOrDefault()?.Details;
            Account(ctx, usage, u.AdditionalProperties, started.Elapsed.TotalSeconds);
            var last = Chunk(new JsonObject(), Finish(u.FinishReason));
            last["safecode"] = SafeCoDeField(u.AdditionalProperties);
            await WriteSse(ctx, last.ToJsonString(), cancel);
            // the usage chunk: no choices, the whole request's usage (sent always; stream_options.include_usage asks for it)
            var tail = new JsonObject
            {
                ["id"] = id, ["object"] = "chat.completion.chunk", ["created"] = created, ["model"] = ModelId, ["system_fingerprint"] = null,
                ["choices"] = new JsonArray(), ["usage"] = Usage(usage),
            };
            await WriteSse(ctx, tail.ToJsonString(), cancel);
        }
        await ctx.Response.WriteAsync("data: [DONE]\n\n", cancel);
        await ctx.Response.Body.FlushAsync(cancel);
    }

    private static async Task WriteSse(HttpContext ctx, string json, CancellationToken cancel)
    {
        await ctx.Response.WriteAsync("data: " + json + "\n\n", cancel);
        await ctx.Response.Body.FlushAsync(cancel);
    }

    private void Account(HttpContext ctx, UsageDetails? usage, AdditionalPropertiesDictionary? p, double seconds)
    {
        int prompt = (int)(usage?.InputTokenCount ?? 0), completion = (int)(usage?.OutputTokenCount ?? 0);
        ctx.Items["prompt_tokens"] = prompt;
        ctx.Items["completion_tokens"] = completion;
        ctx.Items["verdict"] = p?.GetValueOrDefault("safecode.verdict")?.ToString();
        ctx.Items["mode"] = p?.GetValueOrDefault("safecode.mode")?.ToString();
        _metrics.Generated(prompt, completion, seconds);
    }

    private const string LogprobsKey = "safecode.logprobs";

    /// <summary>The tokens a response or update carries (the chat client's <c>safecode.logprobs</c>); none when it has none.</summary>
    private static IReadOnlyList<SafeCoDe.Torch.Decoding.Sessions.TokenLogprob> Logprobs(AdditionalPropertiesDictionary? p) =>
        p?.GetValueOrDefault(LogprobsKey) as IReadOnlyList<SafeCoDe.Torch.Decoding.Sessions.TokenLogprob> ?? [];

    private static string Finish(ChatFinishReason? f) => f == ChatFinishReason.Stop ? "stop" : "length";

    private static JsonObject Usage(UsageDetails? u) => new()
    {
        ["prompt_tokens"] = u?.InputTokenCount ?? 0, ["completion_tokens"] = u?.OutputTokenCount ?? 0, ["total_tokens"] = u?.TotalTokenCount ?? 0,
    };

    private static JsonObject SafeCoDeField(AdditionalPropertiesDictionary? p)
    {
        object? Get(string k) => p?.GetValueOrDefault("safecode." + k);
        var o = new JsonObject
        {
            ["verdict"] = Get("verdict")?.ToString(), ["caption"] = Get("caption")?.ToString(), ["guided_text"] = Get("guided_text")?.ToString(),
            ["mode"] = Get("mode")?.ToString(), ["judge"] = Get("judge")?.ToString(), ["raw_verdict"] = Get("raw_verdict")?.ToString(),
        };
        if (Get("forced_phrase") is string forced) o["forced_phrase"] = forced;
        if (Get("guided_tokens") is int g) o["guided_tokens"] = g;
        return o;
    }

    // ---- errors and logs ----------------------------------------------------------------------------------------

    private ApiException ToApi(Exception ex, HttpContext ctx)
    {
        for (var e = ex; e is not null; e = e.InnerException)
            if (e is JudgeException) return new ApiException(502, "server_error", $"the safety judge failed: {e.Message}", null, "judge_failed");
        var inner = ex is AggregateException { InnerException: { } i } ? i : ex;
        return inner switch
        {
            ApiException a => a,
            BadHttpRequestException b when b.StatusCode == 413 => new ApiException(413, "invalid_request_error", $"the request body is over the {_o.MaxBodyBytes}-byte limit", null, "request_too_large"),
            BadHttpRequestException b => new ApiException(b.StatusCode, "invalid_request_error", b.Message),
            ImageDecodeException d when ctx.Items.ContainsKey("file_image") => ApiException.Invalid(FileImageError(d), "messages", "invalid_image"),
            ImageDecodeException => ApiException.Invalid($"the image cannot be used: {inner.Message}", "messages", "invalid_image"),
            SafeCoDe.Torch.Runtime.InputFileException => ApiException.Invalid($"the image file cannot be used: {inner.Message}", "messages", "invalid_image"),
            InvalidDataException => new ApiException(413, "invalid_request_error", inner.Message, "messages", "image_too_large"),
            HttpRequestException => ApiException.Invalid($"the image could not be downloaded: {inner.Message}", "messages", "image_download_failed"),
            FileNotFoundException or DirectoryNotFoundException => ApiException.Invalid($"the image file does not exist: {inner.Message}", "messages", "image_not_found"),
            ArgumentException or NotSupportedException or InvalidOperationException or FormatException => ApiException.Invalid(inner.Message),
            _ => Internal(inner, ctx),
        };
    }

    private static ApiException Internal(Exception ex, HttpContext ctx)
    {
        ctx.Items["error"] = ex.GetType().Name + ": " + ex.Message;
        return new ApiException(500, "server_error", $"internal error (request {ctx.TraceIdentifier}); see the server log", null, "internal_error");
    }

    private static async Task Error(HttpContext ctx, ApiException e)
    {
        ctx.Items["error"] ??= e.Message;
        ctx.Response.StatusCode = e.Status;
        ctx.Response.ContentType = "application/json";
        if (e.Status == 401) ctx.Response.Headers.WWWAuthenticate = "Bearer";
        try { await ctx.Response.WriteAsync(e.ToJson()); }
        catch (Exception) when (ctx.RequestAborted.IsCancellationRequested) { }
    }

    /// <summary>Log lines are read by people and log tools, not embedded in HTML: '+' in a timestamp stays '+', not \u002B.</summary>
    private static readonly JsonSerializerOptions LogJson = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private void Log(JsonObject line, string level = "info")
    {
        var o = new JsonObject { ["ts"] = DateTimeOffset.UtcNow.ToString("O"), ["level"] = level };
        foreach (var (k, v) in line) o[k] = v?.DeepClone();
        lock (_logLock)
        {
            try { _log.WriteLine(o.ToJsonString(LogJson)); _log.Flush(); } catch (ObjectDisposedException) { }
        }
    }
}
