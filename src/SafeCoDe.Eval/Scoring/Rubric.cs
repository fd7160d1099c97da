using System.Diagnostics;

namespace SafeCoDe.Eval.Scoring;

/// <summary>
/// How one answer is scored: the judge text, what the judge is shown, how its reply becomes a label, and what the
/// offline scorers (keyword, rules) make of the answer. A benchmark's descriptor picks the rubric per answer
/// (<see cref="Benchmarks.IBenchmark.RubricFor"/>); the scorers ask the rubric and never the benchmark's name.
/// </summary>
public abstract class Rubric
{
    /// <summary>The name recorded with every score (snake_case).</summary>
    public abstract string Name { get; }

    /// <summary>The built-in judge text (a user template, <c>--scorer-template</c>, may replace its user message).</summary>
    public abstract JudgeText Text { get; }

    /// <summary>A result settled without a judge call (an empty answer where the benchmark says so), or null.</summary>
    public virtual ScoreResult? WithoutJudge(ScoreInput input, string scorer) => null;

    /// <summary>The question and the answer the judge is shown (the benchmark may cut them).</summary>
    public virtual (string Question, string Response) Shown(ScoreInput input) => (input.Question, input.Response);

    /// <summary>A judge reply as a label: (label, parsed).</summary>
    public abstract (string Label, bool Parsed) Parse(string reply, ScoreInput input);

    /// <summary>The keyword scorer's label for an answer that does (or does not) hold a refusal phrase; null: the keyword scorer cannot score this rubric.</summary>
    public virtual string? KeywordLabel(bool refused, bool empty) => null;

    /// <summary>
    /// The label a guard model's verdict on an answer becomes (<c>--scorer-format</c>): harmful or harmless in the
    /// rubric's terms; null (the default) when the rubric asks something a harmful/harmless verdict does not answer.
    /// </summary>
    public virtual string? GuardLabel(bool harmful) => null;

    /// <summary>The rule-based score of an answer (<c>--scorer rules</c>), or null when the rubric has no rules.</summary>
    public virtual ScoreResult? Rules(ScoreInput input) => null;

    /// <summary>
    /// Scores an answer with the judge <paramref name="ask"/> holds: one call with <see cref="Shown"/> rendered into the
    /// text, parsed by <see cref="Parse"/>. A judge failure is an "error" result. Rubrics that call several times
    /// (retries with another temperature, several grader runs) override this.
    /// </summary>
    public virtual async Task<ScoreResult> JudgeAsync(ScoreInput input, JudgeAsk ask, CancellationToken cancel)
    {
        var (question, response) = Shown(input);
        var user = ask.Text.Render(question, response);
        var image = ask.Text.AttachImage ? input.Image : null;
        var sw = Stopwatch.StartNew();
        JudgeReply got;
        try { got = await ask.AskAsync(user, image, input.ImageMediaType, ask.Text.Temperature, null, cancel).ConfigureAwait(false); }
        catch (OperationCanceledException) when (cancel.IsCancellationRequested) { throw; }
        catch (Exception e) { return ask.Error(Name, e, sw.Elapsed.TotalMilliseconds); }
        var (label, parsed) = Parse(got.Reply, input);
        return new ScoreResult
        {
            Scorer = ask.Scorer, Rubric = Name, Label = label, Parsed = parsed, Raw = got.Reply, Cached = got.Cached,
            LatencyMs = got.Cached ? 0 : sw.Elapsed.TotalMilliseconds,
        };
    }
}

/// <summary>A judge reply and whether it came from the cache.</summary>
public readonly record struct JudgeReply(string Reply, bool Cached);

/// <summary>
/// What a rubric may ask a judge scorer: the text it uses for this rubric (after the user's template and token limit)
/// and a call through the scorer's cache.
/// </summary>
public sealed class JudgeAsk
{
    private readonly Func<string?, string, byte[]?, string, int, float?, string?, CancellationToken, Task<JudgeReply>> _ask;

    internal JudgeAsk(string scorer, JudgeText text, Func<string?, string, byte[]?, string, int, float?, string?, CancellationToken, Task<JudgeReply>> ask)
    {
        Scorer = scorer;
        Text = text;
        _ask = ask;
    }

    /// <summary>The scorer's name (recorded with the score).</summary>
    public string Scorer { get; }

    /// <summary>How many grader runs a rubric that grades several times makes per answer (<c>--scorer-runs</c>; 1 by default).</summary>
    public int Runs { get; init; } = 1;

    /// <summary>The judge text for this rubric.</summary>
    public JudgeText Text { get; }

    /// <summary>
    /// One judge call with <see cref="Text"/>'s system message and token limit. <paramref name="attempt"/> (null for a
    /// first try) tells the cache apart repeated calls with the same text (a retry at another temperature, a second
    /// grader run), so each keeps its own reply.
    /// </summary>
    public Task<JudgeReply> AskAsync(string user, byte[]? image, string mediaType, float? temperature, string? attempt, CancellationToken cancel) =>
        _ask(Text.System, user, image, mediaType, Text.MaxTokens, temperature, attempt, cancel);

    /// <summary>
    /// One judge call with another text's system message and token limit, for rubrics that ask a second question
    /// (e.g. the other metric set's extractor prompt); <paramref name="attempt"/> as in <see cref="AskAsync"/>.
    /// </summary>
    public Task<JudgeReply> AskWithAsync(JudgeText text, string user, byte[]? image, string mediaType, float? temperature, string? attempt, CancellationToken cancel) =>
        _ask(text.System, user, image, mediaType, text.MaxTokens, temperature, attempt, cancel);

    /// <summary>The "error" result of a judge call that failed for good.</summary>
    public ScoreResult Error(string rubric, Exception e, double ms) =>
        new() { Scorer = Scorer, Rubric = rubric, Label = "error", Parsed = false, Error = e.Message, LatencyMs = ms };
}
