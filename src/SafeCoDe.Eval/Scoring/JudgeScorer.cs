using System.Diagnostics;

namespace SafeCoDe.Eval.Scoring;

/// <summary>
/// A scorer that asks a judge model with the benchmark's rubric (<see cref="JudgeTexts"/>, or a user template),
/// caches the reply and parses it as the benchmark does. Empty answers are settled without a judge call where the
/// benchmark says so (MOSSBench: refusal; attack benchmarks: "empty").
/// </summary>
public abstract class JudgeScorer : IScorer, IDisposable
{
    private readonly JudgeCache _cache;
    private readonly bool _ownsCache;

    /// <summary>A template that replaces every built-in judge text (placeholders <c>{question}</c>, <c>{response}</c>), or null.</summary>
    public string? Template { get; set; }

    /// <summary>Overrides the rubric's output-token limit.</summary>
    public int? MaxTokens { get; set; }

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
    public JudgeText TextFor(JudgeRubric rubric)
    {
        var builtIn = JudgeTexts.For(rubric);
        var t = Template is null ? builtIn : builtIn with { System = null, User = Template };
        return MaxTokens is { } m ? t with { MaxTokens = m } : t;
    }

    /// <inheritdoc/>
    public async Task<ScoreResult> ScoreAsync(ScoreInput input, CancellationToken cancel = default)
    {
        var rubric = input.Rubric;
        var rubricName = KeywordScorer.RubricName(rubric);
        bool empty = string.IsNullOrWhiteSpace(input.Response);
        if (empty && rubric == JudgeRubric.MossRefusal)
            return new ScoreResult { Scorer = Name, Rubric = rubricName, Label = "refusal", Raw = "(empty answer: refusal without a judge call)" };
        if (empty && rubric is not (JudgeRubric.MssChat or JudgeRubric.MssEmbodied))
            return new ScoreResult { Scorer = Name, Rubric = rubricName, Label = "empty", Raw = "(empty answer: no judge call)" };

        var text = TextFor(rubric);
        string question = input.Question, response = input.Response;
        if (rubric is JudgeRubric.MssChat or JudgeRubric.MssEmbodied)
        {
            question = ReplyParsers.MssQuery(input.Question, input.Labels);
            response = ReplyParsers.MssResponse(input.Response);
        }
        var user = text.Render(question, response);
        var image = text.AttachImage ? input.Image : null;
        var key = JudgeCache.Key(Name, text.System, user, image);
        var sw = Stopwatch.StartNew();
        string? reply = _cache.Get(key);
        bool cached = reply is not null;
        if (reply is null)
        {
            try { reply = await CompleteAsync(text.System, user, image, input.ImageMediaType, text.MaxTokens, text.Temperature, cancel).ConfigureAwait(false); }
            catch (OperationCanceledException) when (cancel.IsCancellationRequested) { throw; }
            catch (Exception e)
            {
                return new ScoreResult { Scorer = Name, Rubric = rubricName, Label = "error", Parsed = false, Error = e.Message, LatencyMs = sw.Elapsed.TotalMilliseconds };
            }
            _cache.Put(key, Name, reply);
        }
        var (label, parsed) = ReplyParsers.Label(rubric, reply);
        return new ScoreResult { Scorer = Name, Rubric = rubricName, Label = label, Parsed = parsed, Raw = reply, Cached = cached, LatencyMs = cached ? 0 : sw.Elapsed.TotalMilliseconds };
    }

    /// <summary>Releases the in-memory cache (a cache passed in belongs to the caller).</summary>
    public virtual void Dispose() { if (_ownsCache) _cache.Dispose(); }
}
