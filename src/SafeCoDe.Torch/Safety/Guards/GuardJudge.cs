using System.Diagnostics;

namespace SafeCoDe.Torch.Safety.Guards;

/// <summary>
/// A guard model behind an OpenAI-compatible endpoint as SafeCoDe's scene judge: the format's calls (one, or one per
/// policy) through the endpoint's time limits and retries, its replies read by the format. A reply the format cannot
/// read follows the unknown-verdict policy (unsafe by default) and is recorded as not parsed. There is no caption:
/// the decode does not need one, and the guard's rationale (when it gives one) is recorded instead.
/// </summary>
public sealed class GuardJudge : ISafetyJudge, IDisposable
{
    private readonly EndpointJudge _endpoint;
    private readonly JudgeFormat _format;
    private readonly bool _owns;

    /// <summary>A guard speaking <paramref name="format"/> on <paramref name="endpoint"/>.</summary>
    /// <exception cref="ArgumentException">The format cannot give a scene verdict.</exception>
    public GuardJudge(EndpointJudge endpoint, JudgeFormat format, bool ownsEndpoint = true)
    {
        format.CheckRole(JudgeRole.SceneVerdict, "--judge-format");
        (_endpoint, _format, _owns) = (endpoint, format, ownsEndpoint);
    }

    /// <summary>The endpoint's name with the format, e.g. <c>openai:meta-llama/Llama-Guard-4-12B [llamaguard]</c>.</summary>
    public string Name => $"{_endpoint.Name} [{_format.Name}]";

    /// <inheritdoc/>
    public async Task<JudgeResult> JudgeAsync(JudgeRequest request, CancellationToken cancel = default)
    {
        var sw = Stopwatch.StartNew();
        var image = request.ImageBytes is { } b ? (b, request.ImageMediaType) : ((byte[], string)?)null;
        var calls = _format.Calls(JudgeRole.SceneVerdict, request.Query, image, null);
        var replies = new List<GuardReply>();
        foreach (var call in calls) replies.Add(await _endpoint.GuardAsync(call, cancel).ConfigureAwait(false));
        var reading = _format.Read(JudgeRole.SceneVerdict, replies);
        var raw = string.Join("\n", replies.Select(r => r.Text));
        var verdict = reading.Verdict ?? request.UnknownVerdict switch
        {
            UnknownVerdictPolicy.Safe => Verdict.Safe,
            UnknownVerdictPolicy.Unsafe => Verdict.Unsafe,
            _ => throw new JudgeException($"{Name} gave no verdict it could read ({reading.Rationale}; reply: {TerminalText.Sanitize(raw, 80)}); the unknown-verdict policy is 'error'"),
        };
        double ms = sw.Elapsed.TotalMilliseconds;
        return new JudgeResult(verdict, "", raw, reading.Verdict is not null, Name, ms, 0, ms)
        {
            Format = _format.Name, Categories = reading.Categories, Rationale = reading.Rationale, Score = reading.Score,
        };
    }

    /// <summary>Disposes the endpoint client when this judge owns it.</summary>
    public void Dispose() { if (_owns) _endpoint.Dispose(); }
}
