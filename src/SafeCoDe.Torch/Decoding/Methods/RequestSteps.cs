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

/// <summary>A generation a step asks of the request's own model: its text, image, system turn and decoding options (usually the plain method's).</summary>
public sealed record GenerationCall(string Prompt, RgbImage? Image, string? SystemPrompt, DecodingOptions Options);

/// <summary>
/// A completion a step asks of a helper model: the prompt (and a system turn), the decoding options a local helper (or
/// the request's own model) decodes with, and how an endpoint helper samples.
/// </summary>
/// <param name="Prompt">The user message.</param>
/// <param name="Options">How a model of this process decodes it (the request's own generation settings, usually).</param>
public sealed record HelperCall(string Prompt, DecodingOptions Options)
{
    /// <summary>A system message (null: none).</summary>
    public string? SystemPrompt { get; init; }
    /// <summary>An endpoint's sampling temperature (null: the endpoint's default).</summary>
    public float? EndpointTemperature { get; init; }
    /// <summary>An endpoint's seed (null: none).</summary>
    public long? EndpointSeed { get; init; }
    /// <summary>An endpoint's output token limit (null: the endpoint's default).</summary>
    public int? EndpointMaxTokens { get; init; }
}

/// <summary>What the engine lends a request's steps: its judge, generations by its model and helper models, all inside the held request.</summary>
public interface IRequestServices
{
    /// <summary>The request's model as call records name it (the checkpoint folder's name).</summary>
    string ModelName { get; }
    /// <summary>The system text the model's chat template renders when a request gives none (null: none).</summary>
    string? DefaultSystemPrompt { get; }
    /// <summary>Decodes <paramref name="call"/> with the request's own model (a nested request: it is not streamed).</summary>
    Task<string> GenerateAsync(GenerationCall call, CancellationToken cancel);
    /// <summary>A completion by <paramref name="helper"/> (<c>self</c>: the request's model through <see cref="GenerateAsync"/>, text only).</summary>
    Task<string> HelperAsync(ModelSpec helper, HelperCall call, CancellationToken cancel);
    /// <summary>The perplexity of <paramref name="text"/> (raw, no chat template, no image) under <paramref name="helper"/>'s language model; NaN for fewer than two tokens.</summary>
    Task<double> PerplexityAsync(ModelSpec helper, string text, CancellationToken cancel);
    /// <summary>The perplexity threshold calibrated for <paramref name="helper"/> and stored in its model folder (<c>safecode-ppl.json</c>), or null.</summary>
    double? CalibratedPerplexityThreshold(ModelSpec helper);
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

    /// <summary>The system text the model's template renders when <see cref="SystemPrompt"/> is null (null: none).</summary>
    public string? DefaultSystemPrompt => services.DefaultSystemPrompt;

    /// <summary>The raw question of the request (what the judge sees); the prompt embeds it in the benchmark's framing.</summary>
    public string Question => JudgeQuery;

    /// <summary>
    /// Puts <paramref name="rewritten"/> in place of the question inside <see cref="Prompt"/> (the framing around it is
    /// kept); when the prompt does not contain the question, the rewritten text becomes the prompt.
    /// </summary>
    public void ReplaceQuestion(string rewritten)
    {
        int at = Prompt.IndexOf(Question, StringComparison.Ordinal);
        Prompt = Question.Length > 0 && at >= 0 ? string.Concat(Prompt.AsSpan(0, at), rewritten, Prompt.AsSpan(at + Question.Length)) : rewritten;
    }

    /// <summary>The request's model decodes <paramref name="call"/>; recorded as a call of <paramref name="role"/>.</summary>
    public async Task<string> GenerateAsync(string role, GenerationCall call, CancellationToken cancel)
    {
        var sw = Stopwatch.StartNew();
        var reply = await services.GenerateAsync(call, cancel).ConfigureAwait(false);
        RecordCall(new CallRecord(role, "self:" + services.ModelName, call.Prompt, reply, sw.Elapsed.TotalMilliseconds));
        return reply;
    }

    /// <summary>A helper model completes <paramref name="call"/>; recorded as a call of <paramref name="role"/> to the helper.</summary>
    public async Task<string> AskHelperAsync(string role, ModelSpec helper, HelperCall call, CancellationToken cancel)
    {
        var sw = Stopwatch.StartNew();
        var reply = await services.HelperAsync(helper, call, cancel).ConfigureAwait(false);
        RecordCall(new CallRecord(role, Describe(helper), call.Prompt, reply, sw.Elapsed.TotalMilliseconds));
        return reply;
    }

    /// <summary>The perplexity of <paramref name="text"/> under a helper's language model; recorded as a call of <paramref name="role"/>.</summary>
    public async Task<double> PerplexityAsync(string role, ModelSpec helper, string text, CancellationToken cancel)
    {
        var sw = Stopwatch.StartNew();
        double ppl = await services.PerplexityAsync(helper, text, cancel).ConfigureAwait(false);
        RecordCall(new CallRecord(role, Describe(helper), text, ppl.ToString("R", System.Globalization.CultureInfo.InvariantCulture), sw.Elapsed.TotalMilliseconds));
        return ppl;
    }

    /// <summary>The helper's calibrated perplexity threshold (from its model folder), or null.</summary>
    public double? CalibratedPerplexityThreshold(ModelSpec helper) => services.CalibratedPerplexityThreshold(helper);

    private string Describe(ModelSpec helper) => helper.Kind == ModelSpecKind.Self ? "self:" + services.ModelName : helper.ToString();

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
