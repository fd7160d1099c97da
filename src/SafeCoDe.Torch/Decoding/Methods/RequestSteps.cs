using System.Diagnostics;
using System.Text.Json.Serialization;
using SafeCoDe.Torch.Processing.Images;
using SafeCoDe.Torch.Safety;

namespace SafeCoDe.Torch.Decoding.Methods;

/// <summary>
/// A request-level step of a method: before decoding (rewrite the prompt, ask the model or a judge something, refuse
/// outright) or after it (check the answer, replace it). It reads and changes the request's <see cref="RequestContext"/>
/// and records what it asked and got there; the engine times it and puts the record in the result.
/// </summary>
public interface IRequestStep
{
    /// <summary>The step's name in results (e.g. <c>scene_judge</c>).</summary>
    string Name { get; }
    /// <summary>Runs the step.</summary>
    Task ExecuteAsync(RequestContext request, CancellationToken cancel);
}

/// <summary>One call a step made: to whom (its role and the model or judge that answered), what it sent and got, how long it took.</summary>
public sealed record CallRecord(
    [property: JsonPropertyName("role")] string Role,
    [property: JsonPropertyName("to")] string To,
    [property: JsonPropertyName("prompt")] string? Prompt,
    [property: JsonPropertyName("reply")] string? Reply,
    [property: JsonPropertyName("ms")] double Ms);

/// <summary>What one request-level step did: its input and output as text, the calls it made, its wall time.</summary>
public sealed record StepRecord(
    [property: JsonPropertyName("step")] string Step,
    [property: JsonPropertyName("input")] string? Input,
    [property: JsonPropertyName("output")] string? Output,
    [property: JsonPropertyName("calls")] IReadOnlyList<CallRecord> Calls,
    [property: JsonPropertyName("ms")] double Ms);

/// <summary>What the engine lends a request's steps: its judge, and completions by the model inside the held request.</summary>
public interface IRequestServices
{
    /// <summary>The request's scene judge on (query, image): caption and verdict; <paramref name="unknownVerdict"/> decides an unclear reply.</summary>
    Task<JudgeResult> JudgeAsync(string query, UnknownVerdictPolicy unknownVerdict, CancellationToken cancel);
    /// <summary>Greedy completion of <paramref name="prompt"/> (and optional image) by the request's model, without a system turn.</summary>
    Task<string> CompleteAsync(string prompt, RgbImage? image, int maxNewTokens, CancellationToken cancel);
}

/// <summary>
/// One request as its steps see it: the texts that will be decoded (which a step may rewrite), the image, the verdict,
/// the answer once decoded (which an after-step may replace), and the records of what the steps did.
/// </summary>
public sealed class RequestContext(string prompt, string? systemPrompt, string judgeQuery, RgbImage? image, Verdict? givenVerdict, DecodingOptions options,
    IRequestServices services)
{
    private readonly List<StepRecord> _steps = [];
    private List<CallRecord>? _calls;
    private string? _input, _output;

    /// <summary>The request's options.</summary>
    public DecodingOptions Options { get; } = options;
    /// <summary>The user turn's text that will be decoded; a before-step may rewrite it.</summary>
    public string Prompt { get; set; } = prompt;
    /// <summary>The system turn (null: none); a before-step may set it.</summary>
    public string? SystemPrompt { get; set; } = systemPrompt;
    /// <summary>The query a judge is asked about (the request's raw question).</summary>
    public string JudgeQuery { get; } = judgeQuery;
    /// <summary>The request's image (null: none).</summary>
    public RgbImage? Image { get; } = image;
    /// <summary>True when the request gave the verdict (no judge runs).</summary>
    public bool VerdictGiven { get; } = givenVerdict is not null;
    /// <summary>The verdict the decode uses (safe until a step decides).</summary>
    public Verdict Verdict { get; set; } = givenVerdict ?? Verdict.Safe;
    /// <summary>The judge's caption and verdict, when a judge ran.</summary>
    public JudgeResult? Judged { get; set; }
    /// <summary>Milliseconds the judge took (0 when none ran).</summary>
    public double JudgeMs { get; set; }
    /// <summary>A before-step's answer given without decoding (a filter's refusal); null: decode.</summary>
    public string? Refusal { get; set; }
    /// <summary>The decoded answer (after decoding); an after-step may replace it.</summary>
    public string? Answer { get; set; }
    /// <summary>True when an after-step replaced the decoded answer.</summary>
    public bool AnswerReplaced { get; set; }
    /// <summary>What the steps did, in order.</summary>
    public IReadOnlyList<StepRecord> Steps => _steps;

    /// <summary>The request's judge (see <see cref="IRequestServices.JudgeAsync"/>).</summary>
    public Task<JudgeResult> JudgeAsync(UnknownVerdictPolicy unknownVerdict, CancellationToken cancel) => services.JudgeAsync(JudgeQuery, unknownVerdict, cancel);
    /// <summary>A completion by the request's model (see <see cref="IRequestServices.CompleteAsync"/>).</summary>
    public Task<string> CompleteAsync(string prompt, RgbImage? image, int maxNewTokens, CancellationToken cancel) =>
        services.CompleteAsync(prompt, image, maxNewTokens, cancel);

    /// <summary>Records a call of the running step.</summary>
    public void RecordCall(CallRecord call) => (_calls ??= []).Add(call);
    /// <summary>Records the running step's input and output as text.</summary>
    public void RecordIo(string? input, string? output) => (_input, _output) = (input, output);

    /// <summary>Runs <paramref name="step"/>, timed, and keeps its record.</summary>
    internal async Task ExecuteAsync(IRequestStep step, CancellationToken cancel)
    {
        (_calls, _input, _output) = (null, null, null);
        var sw = Stopwatch.StartNew();
        await step.ExecuteAsync(this, cancel).ConfigureAwait(false);
        _steps.Add(new StepRecord(step.Name, _input, _output, (IReadOnlyList<CallRecord>?)_calls ?? [], sw.Elapsed.TotalMilliseconds));
    }
}
