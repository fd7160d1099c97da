using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Microsoft.Extensions.AI;
using SafeCoDe.Torch.Chat;
using SafeCoDe.Torch.Decoding.Methods;
using SafeCoDe.Torch.Safety;

namespace SafeCoDe.Torch;

/// <summary>What a <see cref="SafeCoDeChatClient"/> does with a conversation that has no image.</summary>
public enum TextOnlyPolicy
{
    /// <summary>Refuse it (<see cref="InvalidOperationException"/>): SafeCoDe judges a scene and contrasts its image; without one there is no safety steering.</summary>
    Reject,
    /// <summary>Answer with plain decoding (<see cref="DecodingMethods.Plain"/>): no judge, no verdict, no steering; the response's <c>safecode.mode</c> names it and <c>safecode.fallback</c> says why.</summary>
    Plain,
}

/// <summary>Settings of a <see cref="SafeCoDeChatClient"/>.</summary>
public sealed record SafeCoDeChatClientOptions
{
    /// <summary>Decode settings every call starts from (default: the default method's defaults — SafeCoDe, faithful preset).</summary>
    public DecodingOptions Decoding { get; init; } = DecodingMethods.Defaults(DecodingMethods.Default);
    /// <summary>The scene judge (default: the model judges itself).</summary>
    public ISafetyJudge? Judge { get; init; }
    /// <summary>What to do without an image (default: <see cref="TextOnlyPolicy.Reject"/>).</summary>
    public TextOnlyPolicy TextOnly { get; init; } = TextOnlyPolicy.Reject;
    /// <summary>Where images may come from and their size limit (default: data and files up to 20 MiB, no http).</summary>
    public ImageSourcePolicy Images { get; init; } = new();
    /// <summary>The model id reported and accepted in <see cref="ChatOptions.ModelId"/> (default: the checkpoint folder's name).</summary>
    public string? ModelId { get; init; }
}

/// <summary>
/// Microsoft.Extensions.AI's <see cref="IChatClient"/> over a local engine, decoding with SafeCoDe.
/// <para>The whole conversation goes through the family's chat format (system messages and
/// <see cref="ChatOptions.Instructions"/> as the system turn, earlier user/assistant turns, the final user message as
/// the query the judge rules on). The one image may be a <see cref="DataContent"/> or a <see cref="UriContent"/>
/// (file; http(s) only when <see cref="ImageSourcePolicy.AllowHttp"/>), anywhere in the user messages. Without an
/// image the call fails unless <see cref="SafeCoDeChatClientOptions.TextOnly"/> allows vanilla decoding.</para>
/// <para>Honoured <see cref="ChatOptions"/>: Temperature, TopP, TopK, MaxOutputTokens (all generated tokens, the guided
/// span included), Seed, Instructions, ModelId (must name this model), ResponseFormat text, ToolMode none,
/// RawRepresentationFactory returning <see cref="DecodingOptions"/> (used as the base settings), and
/// AdditionalProperties <c>safecode.mode</c> (safecode|vcd|vanilla), <c>safecode.verdict</c> (safe|unsafe: skip the
/// judge) and <c>safecode.logprobs</c> (an integer k ≥ 0: record each answer token's log-probability with the k most
/// likely tokens, see <see cref="SafeCoDeRequest.Logprobs"/>). Rejected with <see cref="NotSupportedException"/>: Tools, a JSON ResponseFormat, StopSequences,
/// Frequency/PresencePenalty, Reasoning, ConversationId, background responses, continuation tokens, other
/// <c>safecode.*</c> properties.</para>
/// <para>Responses (and the last streaming update) carry FinishReason, Usage, ModelId and, in AdditionalProperties,
/// <c>safecode.verdict</c>, <c>safecode.caption</c>, <c>safecode.raw_verdict</c>, <c>safecode.judge</c>,
/// <c>safecode.mode</c>, <c>safecode.guided_text</c>, <c>safecode.guided_tokens</c>, <c>safecode.forced_phrase</c>,
/// <c>safecode.total_ms</c>; with <c>safecode.logprobs</c> asked for, <c>safecode.logprobs</c> holds the answer's
/// <see cref="Decoding.Sessions.TokenLogprob"/>s (in a stream: each text update those of its own tokens).</para>
/// </summary>
public sealed class SafeCoDeChatClient : IChatClient
{
    private readonly SafeCoDeEngine _engine;
    private readonly SafeCoDeChatClientOptions _options;
    private readonly bool _ownsEngine;

    /// <summary>A client over <paramref name="engine"/> (not owned: dispose the engine yourself).</summary>
    public SafeCoDeChatClient(SafeCoDeEngine engine, SafeCoDeChatClientOptions options)
        : this(engine, options, ownsEngine: false) { }

    /// <summary>A client over <paramref name="engine"/> with default decode settings and judge (not owned).</summary>
    public SafeCoDeChatClient(SafeCoDeEngine engine, DecodingOptions? defaults = null, ISafetyJudge? judge = null)
        : this(engine, new SafeCoDeChatClientOptions { Decoding = defaults ?? DecodingMethods.Defaults(DecodingMethods.Default), Judge = judge }, ownsEngine: false) { }

    private SafeCoDeChatClient(SafeCoDeEngine engine, SafeCoDeChatClientOptions options, bool ownsEngine)
    {
        _engine = engine ?? throw new ArgumentNullException(nameof(engine));
        _options = options ?? throw new ArgumentNullException(nameof(options));
        _options.Decoding.Validate();
        _ownsEngine = ownsEngine;
        ModelId = options.ModelId ?? CheckpointName(engine.Directory.Dir);
    }

    /// <summary>Loads a checkpoint and returns a client that owns (and disposes) its engine.</summary>
    /// <param name="modelDir">The Hugging Face checkpoint folder.</param>
    /// <param name="engine">Device, dtype, prompt style.</param>
    /// <param name="options">Client settings.</param>
    /// <param name="progress">Told about the load (bytes read, GB/s).</param>
    /// <param name="cancellationToken">Stops the load between two tensors.</param>
    public static async Task<SafeCoDeChatClient> LoadAsync(string modelDir, EngineOptions? engine = null, SafeCoDeChatClientOptions? options = null,
        IProgress<LoadProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var e = await SafeCoDeEngine.LoadAsync(modelDir, engine, progress, cancellationToken).ConfigureAwait(false);
        try { return new SafeCoDeChatClient(e, options ?? new SafeCoDeChatClientOptions(), ownsEngine: true); }
        catch { e.Dispose(); throw; }
    }

    /// <summary>The checkpoint's name (its folder name unless set in the options).</summary>
    public string ModelId { get; }

    /// <summary>Provider "safecode", the checkpoint folder as the provider URI, <see cref="ModelId"/> as the default model.</summary>
    public ChatClientMetadata Metadata => new("safecode", new Uri(Path.GetFullPath(_engine.Directory.Dir)), ModelId);

    private static string CheckpointName(string dir)
    {
        var full = Path.GetFullPath(dir).TrimEnd(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar);
        var name = Path.GetFileName(full);
        // Hub snapshot folders (…/models--org--name/snapshots/<hash>) are named by the repository, not the hash
        var parent = Path.GetFileName(Path.GetDirectoryName(full) ?? "");
        var grand = Path.GetFileName(Path.GetDirectoryName(Path.GetDirectoryName(full) ?? "") ?? "");
        if (parent == "snapshots" && grand.StartsWith("models--", StringComparison.Ordinal)) return grand["models--".Length..].Replace("--", "/");
        return name;
    }

    private async Task<(SafeCoDeRequest Request, string Mode, string? Fallback)> BuildAsync(IEnumerable<ChatMessage> messages, ChatOptions? options, CancellationToken cancel)
    {
        var o = _options.Decoding;
        Verdict? verdict = null;
        if (options is not null)
        {
            Reject(options);
            if (options.RawRepresentationFactory?.Invoke(this) is { } raw)
                o = raw as DecodingOptions ?? throw new NotSupportedException($"RawRepresentationFactory returned {raw.GetType().Name}; SafeCoDeChatClient takes DecodingOptions");
            var extra = options.AdditionalProperties;
            if (extra?.TryGetValue("safecode.mode", out var mode) == true)
                o = DecodingMethods.Rebase(o, DecodingMethods.Get(mode?.ToString() ?? "").Name);
            // an API temperature decides greedy vs sampled: 0 is greedy, anything above samples
            if (options.Temperature is { } t) o = Set(Set(o, "temperature", (double)t, "Temperature"), "greedy", t <= 0, "Temperature");
            if (options.TopP is { } p) o = Set(o, "top-p", (double)p, "TopP");
            if (options.TopK is { } k) o = Set(o, "top-k", k, "TopK");
            // the guided span counts too
            if (options.MaxOutputTokens is { } n) o = Set(Set(o, "max-new-tokens", (int?)n, "MaxOutputTokens"), "max-total-tokens", (int?)n, "MaxOutputTokens");
            if (options.Seed is { } s) o = Set(o, "seed", (long?)s, "Seed");
            if (extra is not null) (o, verdict) = Properties(o, extra);
        }
        var c = await ChatConversation.FromMessagesAsync(messages, options?.Instructions, _options.Images, cancel).ConfigureAwait(false);
        string? fallback = null;
        if (c.ImageBytes is null && DecodingMethods.Of(o).Needs(o).Image)
        {
            if (_options.TextOnly == TextOnlyPolicy.Reject)
                throw new InvalidOperationException(
                    $"{o.Method} decoding needs an image (DataContent or UriContent with an image media type) in a user message; " +
                    $"this conversation has none. Send the scene's image, ask for safecode.mode = {DecodingMethods.Plain}, or set SafeCoDeChatClientOptions.TextOnly = Plain.");
            fallback = $"no image: {DecodingMethods.Plain} decoding, no verdict";
            o = DecodingMethods.Rebase(o, DecodingMethods.Plain);
        }
        var request = new SafeCoDeRequest
        {
            Prompt = c.Prompt, ImageBytes = c.ImageBytes, Options = o, Judge = _options.Judge, Verdict = verdict,
            SystemPrompt = c.SystemPrompt, History = c.History, Logprobs = LogprobsOf(options?.AdditionalProperties),
        };
        return (request, o.Method, fallback);
    }

    /// <summary>The <c>safecode.logprobs</c> property: null when absent, else the number of most likely tokens to list.</summary>
    private static int? LogprobsOf(AdditionalPropertiesDictionary? extra)
    {
        if (extra?.TryGetValue(LogprobsKey, out var v) != true || v is null) return null;
        int k = v switch
        {
            int i => i, long l and >= int.MinValue and <= int.MaxValue => (int)l, System.Text.Json.JsonElement { ValueKind: System.Text.Json.JsonValueKind.Number } e when e.TryGetInt32(out var j) => j,
            _ => throw new ArgumentException($"AdditionalProperties[\"{LogprobsKey}\"] must be an integer (the number of most likely tokens to list), not {v.GetType().Name}"),
        };
        return k >= 0 ? k : throw new ArgumentException($"AdditionalProperties[\"{LogprobsKey}\"] must be 0 or more, not {k}");
    }

    private const string LogprobsKey = "safecode.logprobs";

    /// <summary>One option of the options' method by name, set from a .NET value.</summary>
    /// <exception cref="NotSupportedException">The method has no such option.</exception>
    private static DecodingOptions Set(DecodingOptions o, string name, object? value, string at)
    {
        var opt = DecodingMethods.OptionOf(DecodingMethods.Of(o), name);
        if (opt is null || !opt.AppliesTo(o)) throw new NotSupportedException($"{at}: the {o.Method} method has no '{name}' option");
        return opt.Set(o, opt.From(value, at));
    }

    /// <summary>
    /// The <c>safecode.*</c> properties: <c>safecode.mode</c> (applied first), <c>safecode.verdict</c>, and
    /// <c>safecode.OPTION</c> for any option of the method (flag or JSON spelling).
    /// </summary>
    private static (DecodingOptions, Verdict?) Properties(DecodingOptions o, AdditionalPropertiesDictionary extra)
    {
        Verdict? verdict = null;
        foreach (var (key, value) in extra)
        {
            if (!key.StartsWith("safecode.", StringComparison.Ordinal) || key is "safecode.mode" or LogprobsKey) continue;
            var name = key["safecode.".Length..];
            if (name == "verdict")
                verdict = (value?.ToString() ?? "").ToLowerInvariant() switch
                {
                    "safe" => Verdict.Safe, "unsafe" => Verdict.Unsafe,
                    var vs => throw new ArgumentException($"safecode.verdict '{vs}': expected safe or unsafe"),
                };
            else if (DecodingMethods.OptionOf(DecodingMethods.Of(o), name) is { } opt && opt.AppliesTo(o))
                o = opt.Set(o, opt.From(value, $"AdditionalProperties[\"{key}\"]"));
            else
                throw new NotSupportedException($"unknown option AdditionalProperties[\"{key}\"]: SafeCoDeChatClient takes safecode.mode, safecode.verdict and the {o.Method} method's options " +
                    $"({string.Join(", ", DecodingMethods.Of(o).Options.Select(x => "safecode." + x.JsonName))})");
        }
        o.Validate();
        return (o, verdict);
    }

    private void Reject(ChatOptions o)
    {
        static NotSupportedException No(string what) => new($"SafeCoDeChatClient does not support {what}");
        if (o.ModelId is { } id && id != ModelId) throw new NotSupportedException($"ModelId '{id}': this client runs '{ModelId}'");
        if (o.Tools is { Count: > 0 }) throw No("tools");
        if (o.ToolMode is not null and not NoneChatToolMode) throw No($"tool mode {o.ToolMode}");
        if (o.ResponseFormat is not null and not ChatResponseFormatText) throw No("JSON response formats");
        if (o.StopSequences is { Count: > 0 }) throw No("stop sequences");
        if (o.FrequencyPenalty is not null) throw No("a frequency penalty");
        if (o.PresencePenalty is not null) throw No("a presence penalty");
        if (o.Reasoning is not null) throw No("reasoning options");
        if (o.ConversationId is not null) throw No("server-side conversations (ConversationId): send the whole conversation");
        if (o.AllowBackgroundResponses is true) throw No("background responses");
        if (o.ContinuationToken is not null) throw No("continuation tokens");
    }

    private AdditionalPropertiesDictionary Properties(SafeCoDeResult r, string mode, string? fallback)
    {
        var d = new AdditionalPropertiesDictionary
        {
            ["safecode.mode"] = mode, ["safecode.verdict"] = r.Verdict, ["safecode.caption"] = r.Caption, ["safecode.raw_verdict"] = r.RawVerdict,
            ["safecode.judge"] = r.Judge, ["safecode.guided_text"] = r.GuidedText, ["safecode.guided_tokens"] = r.GuidedTokens,
            ["safecode.forced_phrase"] = r.ForcedPhrase, ["safecode.total_ms"] = r.Timings.TotalMs,
        };
        if (r.Logprobs is not null) d[LogprobsKey] = r.Logprobs;
        if (fallback is not null) d["safecode.fallback"] = fallback;
        return d;
    }

    private static UsageDetails Usage(SafeCoDeResult r) =>
        new() { InputTokenCount = r.PromptTokens, OutputTokenCount = r.GeneratedTokens, TotalTokenCount = r.PromptTokens + r.GeneratedTokens };

    private static ChatFinishReason Finish(SafeCoDeResult r) => r.StoppedAtEos ? ChatFinishReason.Stop : ChatFinishReason.Length;

    /// <summary>Runs the conversation through <see cref="SafeCoDeEngine.GenerateAsync"/>.</summary>
    /// <returns>One assistant message; FinishReason Stop on EOS, else Length; usage; the <c>safecode.*</c> properties.</returns>
    /// <exception cref="ArgumentException">The conversation does not end with a user message, has several images, or a <c>safecode.*</c> value is wrong.</exception>
    /// <exception cref="InvalidOperationException">No image and <see cref="TextOnlyPolicy.Reject"/>.</exception>
    /// <exception cref="NotSupportedException">An option or content this client rejects.</exception>
    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var (request, mode, fallback) = await BuildAsync(messages, options, cancellationToken).ConfigureAwait(false);
        var r = await _engine.GenerateAsync(request, cancellationToken).ConfigureAwait(false);
        return new ChatResponse(new ChatMessage(ChatRole.Assistant, r.Answer))
        {
            ModelId = ModelId, FinishReason = Finish(r), Usage = Usage(r), AdditionalProperties = Properties(r, mode, fallback),
            CreatedAt = DateTimeOffset.UtcNow,
        };
    }

    /// <summary>
    /// As <see cref="GetResponseAsync"/>, streaming the answer text as it is generated; a last update (no text) carries
    /// FinishReason, a <see cref="UsageContent"/> and the <c>safecode.*</c> properties, so <c>ToChatResponse()</c> has them.
    /// </summary>
    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var (request, mode, fallback) = await BuildAsync(messages, options, cancellationToken).ConfigureAwait(false);
        var responseId = Guid.NewGuid().ToString("N");
        var channel = Channel.CreateUnbounded<(string Text, IReadOnlyList<Decoding.Sessions.TokenLogprob> Tokens)>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var work = Task.Run(async () =>
        {
            try { return await _engine.GenerateAsync(request with { OnTokens = (s, tokens) => channel.Writer.TryWrite((s, tokens)) }, stop.Token).ConfigureAwait(false); }
            finally { channel.Writer.TryComplete(); }
        }, stop.Token);
        bool finished = false;
        try
        {
            await foreach (var (piece, tokens) in channel.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
                yield return new ChatResponseUpdate(ChatRole.Assistant, piece)
                {
                    ModelId = ModelId, ResponseId = responseId, MessageId = responseId,
                    AdditionalProperties = request.Logprobs is null ? null : new AdditionalPropertiesDictionary { [LogprobsKey] = tokens },
                };
            var r = await work.ConfigureAwait(false); // surfaces errors
            finished = true;
            yield return new ChatResponseUpdate(ChatRole.Assistant, [new UsageContent(Usage(r))])
            {
                ModelId = ModelId, ResponseId = responseId, MessageId = responseId, FinishReason = Finish(r),
                AdditionalProperties = Properties(r, mode, fallback), CreatedAt = DateTimeOffset.UtcNow,
            };
        }
        finally
        {
            if (!finished)
            {
                stop.Cancel();
                try { await work.ConfigureAwait(false); } catch (OperationCanceledException) { } catch (Exception) when (cancellationToken.IsCancellationRequested) { }
            }
        }
    }

    /// <summary>Returns this client, the underlying <see cref="SafeCoDeEngine"/>, or <see cref="Metadata"/> for an unkeyed request of that type; otherwise null.</summary>
    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey is null && serviceType.IsInstanceOfType(this) ? this
        : serviceKey is null && serviceType == typeof(SafeCoDeEngine) ? _engine
        : serviceKey is null && serviceType == typeof(ChatClientMetadata) ? Metadata : null;

    /// <summary>Disposes the engine when the client loaded it (<see cref="LoadAsync"/>); otherwise nothing.</summary>
    public void Dispose()
    {
        if (_ownsEngine) _engine.Dispose();
    }
}
