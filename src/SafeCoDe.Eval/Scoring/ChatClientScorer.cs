using System.ClientModel;
using Microsoft.Extensions.AI;

namespace SafeCoDe.Eval.Scoring;

/// <summary>
/// The benchmarks' judges through any <see cref="IChatClient"/> (an OpenAI-compatible endpoint by default), with a
/// time limit per attempt and bounded retries with doubling back-off on timeouts, 429, 5xx and transport errors.
/// </summary>
public sealed class ChatClientScorer : JudgeScorer
{
    private readonly IChatClient _chat;
    private readonly bool _ownsClient;

    /// <summary>The judge model's name (sent as the model id).</summary>
    public string Model { get; }
    /// <summary>Per-attempt time limit.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(120);
    /// <summary>Retries after a retryable failure.</summary>
    public int MaxRetries { get; init; } = 4;
    /// <summary>First back-off; doubled per retry.</summary>
    public TimeSpan InitialBackoff { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Scores with <paramref name="chat"/> as model <paramref name="model"/>.</summary>
    public ChatClientScorer(IChatClient chat, string model, JudgeCache? cache = null, bool ownsClient = false) : base(cache)
    {
        _chat = chat; Model = model; _ownsClient = ownsClient;
    }

    /// <inheritdoc/>
    public override string Name => "openai:" + Model;

    /// <inheritdoc/>
    protected override async Task<string> CompleteAsync(string? system, string user, byte[]? image, string mediaType, int maxTokens, float? temperature, CancellationToken cancel)
    {
        var messages = new List<ChatMessage>();
        if (system is not null) messages.Add(new ChatMessage(ChatRole.System, system));
        var content = new List<AIContent> { new TextContent(user) };
        if (image is not null) content.Add(new DataContent(image, mediaType));
        messages.Add(new ChatMessage(ChatRole.User, content));
        var options = new ChatOptions { ModelId = Model, MaxOutputTokens = maxTokens, Temperature = temperature };
        var delay = InitialBackoff;
        for (int attempt = 0; ; attempt++)
        {
            using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancel);
            limit.CancelAfter(Timeout);
            string why;
            try
            {
                var response = await _chat.GetResponseAsync(messages, options, limit.Token).ConfigureAwait(false);
                return response.Text ?? "";
            }
            catch (OperationCanceledException) when (cancel.IsCancellationRequested) { throw; }
            catch (OperationCanceledException) { why = $"timed out after {Timeout.TotalSeconds:0.#} s"; }
            catch (ClientResultException e) when (e.Status is 0 or 408 or 429 or >= 500) { why = e.Status == 0 ? "transport error: " + e.Message : $"HTTP {e.Status}"; }
            catch (ClientResultException e) { throw new InvalidOperationException($"judge call failed: HTTP {e.Status}: {e.Message.Split('\n')[0]}", e); }
            catch (HttpRequestException e) { why = "transport error: " + e.Message; }
            if (attempt >= MaxRetries) throw new InvalidOperationException($"judge call failed after {attempt + 1} attempt(s): {why}");
            await Task.Delay(delay, cancel).ConfigureAwait(false);
            delay *= 2;
        }
    }

    /// <inheritdoc/>
    public override void Dispose()
    {
        if (_ownsClient) _chat.Dispose();
        base.Dispose();
    }
}
