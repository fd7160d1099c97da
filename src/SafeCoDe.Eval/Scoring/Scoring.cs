namespace SafeCoDe.Eval.Scoring;

/// <summary>
/// A scorer's result for one answer. <see cref="Label"/> by rubric: MSSBench "0"–"3" ("-1" when the reply has no
/// usable <c>&lt;answer&gt;</c>); MOSSBench "refusal" or "compliance"; attack benchmarks "safe", "unsafe",
/// "invalid" (the reply was neither word) or "empty" (the model's answer was empty; no judge call). "error" when
/// the judge failed for good, "unscored" when the scorer cannot score this answer (the keyword scorer has no phrases
/// for its language); <see cref="Error"/> says why. Neither counts in any rate.
/// </summary>
public sealed record ScoreResult
{
    /// <summary>The label of an answer the scorer could not score (not a judge failure: scoring again will not help).</summary>
    public const string UnscoredLabel = "unscored";

    /// <summary>The scorer's name (keyword, openai:MODEL, local:DIR, …).</summary>
    public required string Scorer { get; init; }
    /// <summary>The rubric applied (snake_case of <see cref="JudgeRubric"/>).</summary>
    public required string Rubric { get; init; }
    /// <summary>The outcome (see the type's summary).</summary>
    public required string Label { get; init; }
    /// <summary>False when the judge's reply did not follow the rubric's answer format.</summary>
    public bool Parsed { get; init; } = true;
    /// <summary>The judge's raw reply (or the matched refusal phrase for the keyword scorer).</summary>
    public string? Raw { get; init; }
    /// <summary>Why scoring failed ("error") or why the answer was not scored ("unscored").</summary>
    public string? Error { get; init; }
    /// <summary>The language of the refusal phrases the keyword scorer matched with (<c>en</c>, <c>de</c>, …); null for judges.</summary>
    public string? Language { get; init; }
    /// <summary>
    /// For benchmarks whose metric sets judge one answer differently (e.g. MMMU's own scorer and VLMEvalKit's): the
    /// label under each set, by set name; null where <see cref="Label"/> is the only one.
    /// </summary>
    public IReadOnlyDictionary<string, string>? Sets { get; init; }
    /// <summary>The guard format that scored the answer (<c>--scorer-format</c>, e.g. <c>llamaguard</c>); null for the benchmarks' own judges and the offline scorers.</summary>
    public string? Format { get; init; }
    /// <summary>The categories a guard named as violated (e.g. "S1: Violent Crimes"); empty when it judged the answer harmless or its reply could not be read; null when no guard scored it.</summary>
    public IReadOnlyList<string>? Categories { get; init; }
    /// <summary>A guard's stated reason, or why its reply could not be read.</summary>
    public string? Rationale { get; init; }
    /// <summary>A guard's probability of "harmful", for formats that define one.</summary>
    public double? GuardScore { get; init; }
    /// <summary>The reply came from the judge cache.</summary>
    public bool Cached { get; init; }
    /// <summary>Wall time of the judge call(s).</summary>
    public double LatencyMs { get; init; }
}

/// <summary>What a scorer is given for one answer.</summary>
public sealed record ScoreInput(
    string Benchmark, string SampleId, string Key, string Question, string Response,
    IReadOnlyDictionary<string, string> Groups, IReadOnlyDictionary<string, string> Labels,
    byte[]? Image = null, string ImageMediaType = "image/png")
{
    /// <summary>The rubric this answer is scored with (the registered benchmark's choice).</summary>
    public Rubric Rubric => Benchmarks.EvalBenchmarks.Get(Benchmark).RubricFor(SampleId, Groups);
}

/// <summary>Scores one answer of a benchmark sample.</summary>
public interface IScorer
{
    /// <summary>Name recorded with every score and in run.json.</summary>
    string Name { get; }
    /// <summary>Scores one answer. Judge failures are returned as a result with label "error", not thrown.</summary>
    Task<ScoreResult> ScoreAsync(ScoreInput input, CancellationToken cancel = default);
}
