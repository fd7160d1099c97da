using System.ClientModel;
using System.ClientModel.Primitives;
using Microsoft.Extensions.AI;
using OpenAI;

namespace SafeCoDe.Torch.Safety;

/// <summary>A judge call failed for good (after retries), or its answer could not be used.</summary>
public sealed class JudgeException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>Settings of an OpenAI-compatible judge endpoint; null fields come from the environment.</summary>
public sealed record EndpointJudgeOptions
{
    /// <summary>Model name (default: SAFECODE_JUDGE_MODEL, else gpt-4o as in the paper).</summary>
    public string? Model { get; init; }
    /// <summary>Base URL, e.g. http://127.0.0.1:8000/v1 (default: SAFECODE_JUDGE_BASE_URL, then OPENAI_BASE_URL, else OpenAI's).</summary>
    public string? BaseUrl { get; init; }
    /// <summary>API key (default: SAFECODE_JUDGE_API_KEY, then OPENAI_API_KEY).</summary>
    public string? ApiKey { get; init; }
    /// <summary>Per-attempt time limit.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>Time limit of a whole judgement: caption and decision calls, every attempt and back-off together.</summary>
    public TimeSpan TotalDeadline { get; init; } = TimeSpan.FromSeconds(60);
    /// <summary>Longest wait a Retry-After header can ask for (longer requests are cut to this; at most <see cref="EndpointJudge.MaxBackoff"/>).</summary>
    public TimeSpan MaxRetryAfter { get; init; } = EndpointJudge.MaxBackoff;
    /// <summary>Largest reply body read from the endpoint; a longer (or endless) body fails the attempt.</summary>
    public long MaxReplyBytes { get; init; } = 1 << 20;
    /// <summary>Retries after a 429, a 5xx, a transport error or a timeout.</summary>
    public int MaxRetries { get; init; } = 3;
    /// <summary>First back-off delay; doubled per retry (a Retry-After header wins when shorter than 30 s).</summary>
    public TimeSpan InitialBackoff { get; init; } = TimeSpan.FromSeconds(1);
    /// <summary>Output token limit of the caption call.</summary>
    public int CaptionMaxTokens { get; init; } = 100;
    /// <summary>Output token limit of the verdict call.</summary>
    public int VerdictMaxTokens { get; init; } = 10;
    /// <summary>Verdict temperature. The reference leaves it unset (API default 1.0); 0 makes runs repeatable.</summary>
    public float VerdictTemperature { get; init; }

    /// <summary><see cref="Model"/>, else SAFECODE_JUDGE_MODEL, else "gpt-4o".</summary>
    public string ResolvedModel => Model ?? Env("SAFECODE_JUDGE_MODEL") ?? "gpt-4o";
    /// <summary><see cref="BaseUrl"/>, else SAFECODE_JUDGE_BASE_URL, else OPENAI_BASE_URL; null means OpenAI's endpoint.</summary>
    public string? ResolvedBaseUrl => BaseUrl ?? Env("SAFECODE_JUDGE_BASE_URL") ?? Env("OPENAI_BASE_URL");
    /// <summary><see cref="ApiKey"/>, else SAFECODE_JUDGE_API_KEY, else OPENAI_API_KEY; may be null for a local server.</summary>
    public string? ResolvedApiKey => ApiKey ?? Env("SAFECODE_JUDGE_API_KEY") ?? Env("OPENAI_API_KEY");

    private static string? Env(string n) => Environment.GetEnvironmentVariable(n) is { Length: > 0 } v ? v : null;
}

/// <summary>
/// The paper's judge: an OpenAI-compatible chat endpoint (GPT-4o by default) through Microsoft.Extensions.AI's
/// <see cref="IChatClient"/>. Two calls per request: a caption with the image attached, then the text-only decision.
/// Each call has a time limit and bounded retries with back-off.
/// </summary>
public sealed class EndpointJudge : TwoStepJudge, IDisposable
{
    private readonly IChatClient _chat;
    private readonly EndpointJudgeOptions _o;
    private readonly bool _ownsClient;

    /// <summary>Uses any <see cref="IChatClient"/> (another provider, a local server, a test double).</summary>
    public EndpointJudge(IChatClient chat, EndpointJudgeOptions? options = null, bool ownsClient = false)
    {
        _chat = chat;
        _o = options ?? new EndpointJudgeOptions();
        _ownsClient = ownsClient;
    }

    /// <summary>Builds the OpenAI client from options/environment; retries are done here, not by the SDK.</summary>
    public EndpointJudge(EndpointJudgeOptions? options = null) : this(CreateClient(options ?? new EndpointJudgeOptions()), options, ownsClient: true) { }

    /// <inheritdoc/>
    protected override TimeSpan? Deadline => _o.TotalDeadline;

    /// <summary>"openai:" and the resolved model name.</summary>
    public override string Name => "openai:" + _o.ResolvedModel;

    /// <summary>An OpenAI chat client for the resolved model, base URL and key, with the SDK's own retries off (this judge retries).</summary>
    /// <exception cref="JudgeException">Neither an API key nor a base URL is configured.</exception>
    public static IChatClient CreateClient(EndpointJudgeOptions o)
    {
        var key = o.ResolvedApiKey;
        if (key is null && o.ResolvedBaseUrl is null)
            throw new JudgeException("the endpoint judge needs an API key (SAFECODE_JUDGE_API_KEY or OPENAI_API_KEY) or a base URL of a local OpenAI-compatible server (SAFECODE_JUDGE_BASE_URL)");
        var opts = new OpenAIClientOptions
        {
            RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
            NetworkTimeout = o.Timeout + TimeSpan.FromSeconds(5), // our own per-attempt limit fires first
            Transport = new HttpClientPipelineTransport(new HttpClient(new CappedReplyHandler(o.MaxReplyBytes)) { Timeout = System.Threading.Timeout.InfiniteTimeSpan }),
        };
        if (o.ResolvedBaseUrl is { } url) opts.Endpoint = new Uri(url);
        var client = new OpenAI.Chat.ChatClient(o.ResolvedModel, new ApiKeyCredential(key ?? "unused"), opts);
        return client.AsIChatClient();
    }

    /// <inheritdoc/>
    protected override Task<string> CaptionAsync(JudgeRequest request, CancellationToken cancel)
    {
        var content = new List<AIContent> { new TextContent(JudgePrompts.CaptionInstruction) };
        if (request.ImageBytes is { } bytes) content.Add(new DataContent(bytes, request.ImageMediaType));
        return CallAsync("caption", [new ChatMessage(ChatRole.User, content)], new ChatOptions { ModelId = _o.ResolvedModel, MaxOutputTokens = _o.CaptionMaxTokens }, cancel);
    }

    /// <inheritdoc/>
    protected override Task<string> DecideAsync(JudgeRequest request, string caption, CancellationToken cancel) =>
        CallAsync("verdict",
            [new ChatMessage(ChatRole.System, JudgePrompts.VerdictSystem), new ChatMessage(ChatRole.User, JudgePrompts.VerdictPrompt(request.Query, caption))],
            new ChatOptions { ModelId = _o.ResolvedModel, MaxOutputTokens = _o.VerdictMaxTokens, Temperature = _o.VerdictTemperature }, cancel);

    /// <summary>
    /// A plain chat completion on this endpoint with its time limit and retries: what a method's helper model (a
    /// paraphraser, a checker) served by an OpenAI-compatible endpoint answers.
    /// </summary>
    public Task<string> ChatAsync(string user, string? system, float? temperature, long? seed, int? maxTokens, CancellationToken cancel = default)
    {
        var messages = new List<ChatMessage>();
        if (system is not null) messages.Add(new ChatMessage(ChatRole.System, system));
        messages.Add(new ChatMessage(ChatRole.User, user));
        return CallAsync("helper", messages, new ChatOptions { ModelId = _o.ResolvedModel, Temperature = temperature, Seed = seed, MaxOutputTokens = maxTokens }, cancel);
    }

    /// <summary>
    /// One guard-model call on this endpoint, with its time limit and retries: the messages as they are, the reply's
    /// text and, when the call asks for them, the first reply token's top log-probabilities.
    /// </summary>
    public async Task<Guards.GuardReply> GuardAsync(Guards.GuardCall call, CancellationToken cancel = default)
    {
        var options = new ChatOptions { ModelId = _o.ResolvedModel, MaxOutputTokens = call.MaxTokens, Temperature = 0 };
        if (call.LogProbs)
            options.RawRepresentationFactory = _ => new OpenAI.Chat.ChatCompletionOptions { IncludeLogProbabilities = true, TopLogProbabilityCount = GuardTopLogProbs };
        var response = await RespondAsync(call.What, [.. call.Messages], options, cancel).ConfigureAwait(false);
        IReadOnlyList<(string, double)>? top = null;
        if (call.LogProbs && response.RawRepresentation is OpenAI.Chat.ChatCompletion { ContentTokenLogProbabilities: { Count: > 0 } lps })
            top = lps[0].TopLogProbabilities.Select(t => (t.Token, (double)t.LogProbability)).Append((lps[0].Token, (double)lps[0].LogProbability)).ToArray();
        return new Guards.GuardReply(response.Text ?? "", top);
    }

    /// <summary>How many alternatives of the first token a guard call asks for (enough for "Yes" and "No" to be among them).</summary>
    public const int GuardTopLogProbs = 20;

    private async Task<string> CallAsync(string what, List<ChatMessage> messages, ChatOptions options, CancellationToken cancel)
    {
        var response = await RespondAsync(what, messages, options, cancel).ConfigureAwait(false);
        var text = response.Text;
        if (string.IsNullOrWhiteSpace(text) && what == "caption")
            throw new JudgeException($"the judge endpoint returned an empty {what}");
        return text ?? "";
    }

    private async Task<ChatResponse> RespondAsync(string what, List<ChatMessage> messages, ChatOptions options, CancellationToken cancel)
    {
        var delay = _o.InitialBackoff;
        for (int attempt = 0; ; attempt++)
        {
            using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancel);
            limit.CancelAfter(_o.Timeout);
            string failure;
            TimeSpan? retryAfter = null;
            try
            {
                return await _chat.GetResponseAsync(messages, options, limit.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancel.IsCancellationRequested) { throw; }
            catch (Exception e) when (FindTooLarge(e) is { } big) { throw new JudgeException($"judge {what} reply refused: {big.Message}", e); }
            catch (OperationCanceledException) { failure = $"timed out after {_o.Timeout.TotalSeconds:0.#} s"; }
            catch (ClientResultException e) when (e.Status == 429 || e.Status >= 500 || e.Status == 0)
            {
                failure = e.Status == 0 ? "transport error: " + e.Message : $"HTTP {e.Status}";
                retryAfter = RetryAfter(e);
            }
            catch (ClientResultException e) { throw new JudgeException($"judge {what} call failed: HTTP {e.Status}: {FirstLine(e.Message)}", e); }
            catch (HttpRequestException e) { failure = "transport error: " + e.Message; }
            catch (JudgeException) { throw; }
            catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException or FormatException or ArgumentException or KeyNotFoundException)
            {
                throw new JudgeException($"judge {what} call returned a malformed response: {FirstLine(e.Message)}", e);
            }
            if (attempt >= _o.MaxRetries)
                throw new JudgeException($"judge {what} call failed after {attempt + 1} attempt(s): {failure}");
            var wait = retryAfter is { } ra ? (ra > _o.MaxRetryAfter ? _o.MaxRetryAfter : ra) : delay;
            await Task.Delay(wait, cancel).ConfigureAwait(false);
            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, MaxBackoff.Ticks));
        }
    }

    /// <summary>Longest wait between attempts, whatever Retry-After says.</summary>
    public static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(30);

    private static ReplyTooLargeException? FindTooLarge(Exception? e)
    {
        for (int depth = 0; e is not null && depth < 16; depth++, e = e.InnerException)
            if (e is ReplyTooLargeException t) return t;
        return null;
    }

    private static TimeSpan? RetryAfter(ClientResultException e)
    {
        var raw = e.GetRawResponse();
        return raw is not null && raw.Headers.TryGetValue("Retry-After", out var v) ? ParseRetryAfter(v, DateTimeOffset.UtcNow) : null;
    }

    /// <summary>
    /// A Retry-After header as a wait in [0, <see cref="MaxBackoff"/>]: delta-seconds or an HTTP date; negative, NaN,
    /// infinite, huge or unreadable values give null (the normal back-off is used).
    /// </summary>
    public static TimeSpan? ParseRetryAfter(string? value, DateTimeOffset now)
    {
        if (string.IsNullOrWhiteSpace(value) || value.Length > 100) return null;
        value = value.Trim();
        if (double.TryParse(value, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var s))
        {
            if (!double.IsFinite(s) || s < 0) return null;
            return s >= MaxBackoff.TotalSeconds ? MaxBackoff : TimeSpan.FromSeconds(s);
        }
        if (DateTimeOffset.TryParse(value, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out var at))
        {
            var d = at - now;
            if (d < TimeSpan.Zero) return TimeSpan.Zero;
            return d > MaxBackoff ? MaxBackoff : d;
        }
        return null;
    }

    private static string FirstLine(string s) => s.Split('\n')[0].Trim();

    /// <summary>Disposes the chat client when this judge created it (or was told it owns it).</summary>
    public void Dispose() { if (_ownsClient) _chat.Dispose(); }
}

/// <summary>An endpoint reply body was longer than allowed.</summary>
public sealed class ReplyTooLargeException(string message) : IOException(message);

/// <summary>
/// Lets at most a fixed number of reply bytes through: a declared Content-Length above the cap fails at once, and a
/// body that keeps coming (chunked, endless) fails as soon as the cap is passed, so memory stays bounded.
/// </summary>
internal sealed class CappedReplyHandler(long maxBytes) : DelegatingHandler(new SocketsHttpHandler())
{
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
        var content = response.Content;
        if (content.Headers.ContentLength is long n && n > maxBytes)
        {
            response.Dispose();
            throw new ReplyTooLargeException($"the body declares {n:N0} bytes, more than the {maxBytes:N0} allowed");
        }
        var inner = await content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        var capped = new StreamContent(new Runtime.CappedStream(inner, maxBytes, "the reply", "body",
            () => new ReplyTooLargeException($"the body is longer than the {maxBytes:N0} bytes allowed")));
        foreach (var h in content.Headers) capped.Headers.TryAddWithoutValidation(h.Key, h.Value);
        response.Content = capped;
        return response;
    }
}
