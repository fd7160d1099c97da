namespace SafeCoDe.Eval.Scoring;

/// <summary>
/// A scorer that asks a judge model with the answer's <see cref="Rubric"/> (its text, or a user template), caches the
/// reply and lets the rubric parse it as the benchmark does; answers the rubric settles without a judge (an empty
/// answer where the benchmark says so) cost no call.
/// </summary>
public abstract class JudgeScorer : IScorer, IDisposable
{
    private readonly JudgeCache _cache;
    private readonly bool _ownsCache;

    /// <summary>A template that replaces every built-in judge text (placeholders <c>{question}</c>, <c>{response}</c>), or null.</summary>
    public string? Template { get; set; }

    /// <summary>Overrides the rubric's output-token limit.</summary>
    public int? MaxTokens { get; set; }

    /// <summary>Grader runs per answer for rubrics that grade several runs (<see cref="JudgeAsk.Runs"/>); 1 by default.</summary>
    public int Runs { get; set; } = 1;

    /// <summary>Uses <paramref name="cache"/> (null: an in-memory cache).</summary>
    protected JudgeScorer(JudgeCache? cache)
    {
        _cache = cache ?? new JudgeCache(null);
        _ownsCache = cache is null;
    }

    /// <inheritdoc/>
    public abstract string Name { get; }

    /// <summary>One judge call: optional system message, the user message, optionally the image.</summary>
    protected abstract Task<string> CompleteAsync(string? system, string user, byte[]? image, string mediaType, int maxTokens, float? temperature, CancellationToken cancel);

    /// <summary>The judge text used for an answer (the template when one is set).</summary>
    public JudgeText TextFor(Rubric rubric)
    {
        var builtIn = rubric.Text;
        var t = Template is null ? builtIn : builtIn with { System = null, User = Template };
        return MaxTokens is { } m ? t with { MaxTokens = m } : t;
    }

    /// <summary>The judge text used for a safety rubric (the template when one is set).</summary>
    public JudgeText TextFor(JudgeRubric rubric) => TextFor(SafetyRubric.Of(rubric));

    /// <inheritdoc/>
    public Task<ScoreResult> ScoreAsync(ScoreInput input, CancellationToken cancel = default)
    {
        var rubric = input.Rubric;
        if (rubric.WithoutJudge(input, Name) is { } settled) return Task.FromResult(settled);
        return rubric.JudgeAsync(input, new JudgeAsk(Name, TextFor(rubric), AskAsync) { Runs = Runs }, cancel);
    }

    /// <summary>One call through the cache; <paramref name="attempt"/> joins the cache key only when given, so first calls keep their keys.</summary>
    private async Task<JudgeReply> AskAsync(string? system, string user, byte[]? image, string mediaType, int maxTokens, float? temperature, string? attempt, CancellationToken cancel)
    {
        var key = JudgeCache.Key(attempt is null ? Name : $"{Name}#{attempt}", system, user, image);
        if (_cache.Get(key) is { } hit) return new JudgeReply(hit, true);
        var reply = await CompleteAsync(system, user, image, mediaType, maxTokens, temperature, cancel).ConfigureAwait(false);
        _cache.Put(key, Name, reply);
        return new JudgeReply(reply, false);
    }

    /// <summary>Releases the in-memory cache (a cache passed in belongs to the caller).</summary>
    public virtual void Dispose() { if (_ownsCache) _cache.Dispose(); }
}
