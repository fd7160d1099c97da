using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;
using SafeCoDe.Torch.Decoding;
using SafeCoDe.Torch.Safety;

namespace SafeCoDe.Torch;

/// <summary>
/// Microsoft.Extensions.AI's <see cref="IChatClient"/> over a local engine, decoding with SafeCoDe. The last user
/// message's text is the query and its first image (<see cref="DataContent"/> with an image media type) the scene;
/// system messages become the system prompt. <see cref="ChatOptions"/> maps onto the decode options (temperature,
/// top-p, max output tokens, seed); <c>AdditionalProperties["safecode.mode"]</c> = safecode|vcd|vanilla and
/// <c>["safecode.verdict"]</c> = safe|unsafe override per call. The response carries the verdict and caption in
/// its AdditionalProperties.
/// </summary>
public sealed class SafeCoDeChatClient(SafeCoDeEngine engine, SafeCoDeOptions? defaults = null, ISafetyJudge? judge = null) : IChatClient
{
    private readonly SafeCoDeOptions _defaults = defaults ?? SafeCoDeOptions.For(SafeCoDePreset.Faithful);

    /// <summary>Provider "safecode", no endpoint, the engine's family as the default model id.</summary>
    public ChatClientMetadata Metadata => new("safecode", null, engine.Family);

    private SafeCoDeRequest Build(IEnumerable<ChatMessage> messages, ChatOptions? options)
    {
        var list = messages.ToList();
        var user = list.LastOrDefault(m => m.Role == ChatRole.User) ?? throw new ArgumentException("the conversation has no user message");
        var text = string.Concat(user.Contents.OfType<TextContent>().Select(t => t.Text));
        var image = user.Contents.OfType<DataContent>().FirstOrDefault(d => d.MediaType.StartsWith("image/", StringComparison.OrdinalIgnoreCase));
        var system = string.Join("\n", list.Where(m => m.Role == ChatRole.System).Select(m => m.Text));
        var o = _defaults;
        if (options?.Temperature is { } t) o = o with { TemperatureSafe = t, TemperatureUnsafe = t, Greedy = t <= 0 };
        if (options?.TopP is { } p) o = o with { TopPSafe = p, TopPUnsafe = p };
        if (options?.MaxOutputTokens is { } n) o = o with { MaxNewTokens = n, MaxTotalTokens = n }; // the guided span counts too
        if (options?.Seed is { } s) o = o with { Seed = s };
        Verdict? verdict = null;
        if (options?.AdditionalProperties is { } extra)
        {
            if (extra.TryGetValue("safecode.mode", out var mode) && mode is string ms)
                o = o with { Mode = ms.ToLowerInvariant() switch { "vcd" => DecodeMode.Vcd, "vanilla" => DecodeMode.Vanilla, "safecode" => DecodeMode.SafeCoDe, _ => throw new ArgumentException($"safecode.mode '{ms}': expected safecode, vcd or vanilla") } };
            if (extra.TryGetValue("safecode.verdict", out var v) && v is string vs)
                verdict = vs.ToLowerInvariant() switch { "safe" => Verdict.Safe, "unsafe" => Verdict.Unsafe, _ => throw new ArgumentException($"safecode.verdict '{vs}': expected safe or unsafe") };
        }
        if (image is null && o.Mode != DecodeMode.Vanilla) o = o with { Mode = DecodeMode.Vanilla }; // nothing to contrast without an image
        return new SafeCoDeRequest
        {
            Prompt = text, ImageBytes = image?.Data.ToArray(), Options = o, Judge = judge, Verdict = verdict,
            SystemPrompt = system.Length > 0 ? system : null,
        };
    }

    /// <summary>Runs the conversation's last user message through <see cref="SafeCoDeEngine.GenerateAsync"/>.</summary>
    /// <returns>The answer as one assistant message; <c>FinishReason</c> is Stop on EOS, else Length; token usage and the <c>safecode.*</c> verdict, caption, guided text, judge and total time in AdditionalProperties.</returns>
    /// <exception cref="ArgumentException">No user message, or an unknown <c>safecode.mode</c> / <c>safecode.verdict</c>.</exception>
    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var r = await engine.GenerateAsync(Build(messages, options), cancellationToken).ConfigureAwait(false);
        var msg = new ChatMessage(ChatRole.Assistant, r.Answer);
        return new ChatResponse(msg)
        {
            ModelId = engine.Family,
            FinishReason = r.StoppedAtEos ? ChatFinishReason.Stop : ChatFinishReason.Length,
            Usage = new UsageDetails { InputTokenCount = r.PromptTokens, OutputTokenCount = r.GeneratedTokens, TotalTokenCount = r.PromptTokens + r.GeneratedTokens },
            AdditionalProperties = new AdditionalPropertiesDictionary
            {
                ["safecode.verdict"] = r.Verdict, ["safecode.caption"] = r.Caption, ["safecode.guided_text"] = r.GuidedText,
                ["safecode.judge"] = r.Judge, ["safecode.total_ms"] = r.Timings.TotalMs,
            },
        };
    }

    /// <summary>As <see cref="GetResponseAsync"/>, streaming the answer text as it is generated; the updates carry text only (no verdict or usage).</summary>
    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await foreach (var piece in engine.StreamAsync(Build(messages, options), cancellationToken).ConfigureAwait(false))
            yield return new ChatResponseUpdate(ChatRole.Assistant, piece) { ModelId = engine.Family };
    }

    /// <summary>Returns this client, the underlying <see cref="SafeCoDeEngine"/>, or <see cref="Metadata"/> for an unkeyed request of that type; otherwise null.</summary>
    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey is null && serviceType.IsInstanceOfType(this) ? this
        : serviceKey is null && serviceType == typeof(SafeCoDeEngine) ? engine
        : serviceKey is null && serviceType == typeof(ChatClientMetadata) ? Metadata : null;

    /// <summary>Does nothing: the client does not own the engine (dispose the engine yourself).</summary>
    public void Dispose() { }
}
