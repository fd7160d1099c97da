using SafeCoDe.Torch.Decoding.Methods;
using SafeCoDe.Torch.Processing.Images;
using SafeCoDe.Torch.Safety;

namespace SafeCoDe.Torch.Tests.Methods.Baselines;

/// <summary>
/// What a request's steps are lent, scripted: the model's own generations and the helpers' replies come from queues,
/// every call is kept as it was asked, so a test reads exactly what a defense sent to whom.
/// </summary>
public sealed class ScriptedServices : IRequestServices
{
    private readonly Queue<string> _generations = new();
    private readonly Queue<string> _helpers = new();

    /// <summary>The generations asked of the request's model, in order.</summary>
    public List<GenerationCall> Generations { get; } = [];
    /// <summary>The helper completions asked, in order.</summary>
    public List<(ModelSpec Helper, HelperCall Call)> HelperCalls { get; } = [];
    /// <summary>The perplexities asked, in order.</summary>
    public List<(ModelSpec Helper, string Text)> PerplexityCalls { get; } = [];
    /// <summary>The perplexity every text scores.</summary>
    public double Perplexity { get; set; } = 10;
    /// <summary>The threshold the model folder carries (null: none).</summary>
    public double? Calibrated { get; set; }
    /// <inheritdoc/>
    public string? DefaultSystemPrompt { get; set; }
    /// <inheritdoc/>
    public string ModelName => "scripted-model";

    /// <summary>Queues replies of the request's own model.</summary>
    public ScriptedServices Generates(params string[] replies) { foreach (var r in replies) _generations.Enqueue(r); return this; }
    /// <summary>Queues replies of helper models.</summary>
    public ScriptedServices HelpersReply(params string[] replies) { foreach (var r in replies) _helpers.Enqueue(r); return this; }

    /// <inheritdoc/>
    public Task<string> GenerateAsync(GenerationCall call, CancellationToken cancel)
    {
        Generations.Add(call);
        return Task.FromResult(_generations.Count > 0 ? _generations.Dequeue() : throw new InvalidOperationException("no scripted generation left"));
    }

    /// <inheritdoc/>
    public Task<string> HelperAsync(ModelSpec helper, HelperCall call, CancellationToken cancel)
    {
        HelperCalls.Add((helper, call));
        return Task.FromResult(_helpers.Count > 0 ? _helpers.Dequeue() : throw new InvalidOperationException("no scripted helper reply left"));
    }

    /// <inheritdoc/>
    public Task<double> PerplexityAsync(ModelSpec helper, string text, CancellationToken cancel)
    {
        PerplexityCalls.Add((helper, text));
        return Task.FromResult(Perplexity);
    }

    /// <inheritdoc/>
    public double? CalibratedPerplexityThreshold(ModelSpec helper) => Calibrated;
    /// <inheritdoc/>
    public Task<JudgeResult> JudgeAsync(string query, UnknownVerdictPolicy unknownVerdict, CancellationToken cancel) => throw new InvalidOperationException("a baseline asked the judge");
    /// <inheritdoc/>
    public Task<string> CompleteAsync(string prompt, RgbImage? image, int maxNewTokens, CancellationToken cancel) => throw new InvalidOperationException("a baseline asked for a judge-style completion");

    /// <summary>
    /// Runs <paramref name="options"/>' method's steps on one request as the engine does: the before-steps, then (unless one
    /// refused) <paramref name="decodedAnswer"/> stands for the decode, then the after-steps.
    /// </summary>
    public async Task<RequestContext> Run(DecodingOptions options, string question, string? decodedAnswer = null, string? framedPrompt = null,
        string? system = null, RgbImage? image = null)
    {
        options.Validate();
        var method = DecodingMethods.Of(options);
        var request = new RequestContext(framedPrompt ?? question, system, question, image, null, options, this);
        foreach (var step in method.Before(options)) await request.ExecuteAsync(step, CancellationToken.None);
        if (request.Refusal is not null) return request;
        request.Answer = decodedAnswer ?? "the decoded answer";
        foreach (var step in method.After(options)) await request.ExecuteAsync(step, CancellationToken.None);
        return request;
    }
}
