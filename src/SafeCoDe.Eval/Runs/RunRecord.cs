using SafeCoDe.Eval.Scoring;

namespace SafeCoDe.Eval.Runs;

/// <summary>Wall times of one generation, in milliseconds (the engine's timings).</summary>
public sealed record OutputTimings
{
    /// <summary>Scene judge (caption + verdict).</summary>
    public double JudgeMs { get; init; }
    /// <summary>Image decoding, prompt building, noised copy.</summary>
    public double PreprocessMs { get; init; }
    /// <summary>Prefill of both branches.</summary>
    public double PrefillMs { get; init; }
    /// <summary>The guided steps.</summary>
    public double GuidedMs { get; init; }
    /// <summary>Plain decoding after the guided steps.</summary>
    public double DecodeMs { get; init; }
    /// <summary>The whole request.</summary>
    public double TotalMs { get; init; }
    /// <summary>Scoring this answer (judge call; 0 when cached or offline).</summary>
    public double ScoreMs { get; init; }
}

/// <summary>One generation of a sample (one prompt answered) with what the engine reported and its score.</summary>
public sealed record RunOutput
{
    /// <summary>The prompt's key within its sample ("safe"/"unsafe" for MSSBench, "answer" otherwise).</summary>
    public required string Key { get; init; }
    /// <summary>The raw benchmark question (what the scene judge and the scorer see).</summary>
    public required string Question { get; init; }
    /// <summary>The user-turn text sent to the model (the question in the benchmark's framing).</summary>
    public string? UserText { get; init; }
    /// <summary>The system turn, if any.</summary>
    public string? System { get; init; }
    /// <summary>Where the image came from (a path or an embedded-image origin); null for text-only prompts.</summary>
    public string? Image { get; init; }
    /// <summary>Every image of a prompt with several (its first is <see cref="Image"/>), in the order shown; null for one image.</summary>
    public IReadOnlyList<string>? Images { get; init; }
    /// <summary>How several images were given to the model (combined into one when the engine takes one); null for one image.</summary>
    public string? ImageNote { get; init; }
    /// <summary>The model's answer.</summary>
    public required string Answer { get; init; }
    /// <summary>The scene verdict (SafeCoDe mode), else null.</summary>
    public string? Verdict { get; init; }
    /// <summary>The judge's caption.</summary>
    public string? Caption { get; init; }
    /// <summary>The judge's raw verdict reply.</summary>
    public string? RawVerdict { get; init; }
    /// <summary>Which judge decided the verdict.</summary>
    public string? Judge { get; init; }
    /// <summary>The guard format that judged the scene (null: the project's own judge, or none).</summary>
    public string? JudgeFormat { get; init; }
    /// <summary>The categories a guard judge named as violated (null: no guard judged).</summary>
    public IReadOnlyList<string>? JudgeCategories { get; init; }
    /// <summary>A guard judge's stated reason, or why its reply could not be read.</summary>
    public string? JudgeRationale { get; init; }
    /// <summary>A guard judge's probability of "unsafe", when its format gives one.</summary>
    public double? JudgeScore { get; init; }
    /// <summary>Text of the guided tokens.</summary>
    public string? GuidedText { get; init; }
    /// <summary>How many tokens were guided.</summary>
    public int GuidedTokens { get; init; }
    /// <summary>The refusal phrase forced on an unsafe verdict, if any.</summary>
    public string? ForcedPhrase { get; init; }
    /// <summary>Prompt length in tokens.</summary>
    public int PromptTokens { get; init; }
    /// <summary>Generated tokens.</summary>
    public int GeneratedTokens { get; init; }
    /// <summary>The seed the request used.</summary>
    public long? Seed { get; init; }
    /// <summary>The user-turn text the model decoded, when the method's steps changed <see cref="UserText"/> (a rewritten or re-split question).</summary>
    public string? DecodedText { get; init; }
    /// <summary>The system turn the model decoded with, when the method's steps changed <see cref="System"/>.</summary>
    public string? DecodedSystem { get; init; }
    /// <summary>True when a step after decoding replaced the decoded answer.</summary>
    public bool AnswerReplaced { get; init; }
    /// <summary>True when a step before decoding answered with a refusal (nothing was decoded).</summary>
    public bool RefusedBeforeDecoding { get; init; }
    /// <summary>What the method's request-level steps did: their input, output, calls (to whom, prompt, reply, time) and time (null: no steps).</summary>
    public IReadOnlyList<SafeCoDe.Torch.Decoding.Methods.StepRecord>? Steps { get; init; }
    /// <summary>Timings in milliseconds.</summary>
    public OutputTimings Timings { get; init; } = new();
    /// <summary>The scorer's result for this answer (null until scored).</summary>
    public ScoreResult? Score { get; init; }
}

/// <summary>One finished sample: one line of records.jsonl.</summary>
public sealed record RunRecord
{
    /// <summary>The sample's stable id.</summary>
    public required string Id { get; init; }
    /// <summary>Benchmark name.</summary>
    public required string Benchmark { get; init; }
    /// <summary>Fields metrics group by (split, type, scenario, kind, category, …).</summary>
    public IReadOnlyDictionary<string, string> Groups { get; init; } = new Dictionary<string, string>();
    /// <summary>Ground truth and source fields (as text).</summary>
    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();
    /// <summary>One entry per generation of the sample.</summary>
    public required IReadOnlyList<RunOutput> Outputs { get; init; }
    /// <summary>When the sample finished (UTC, ISO 8601).</summary>
    public string? FinishedAt { get; init; }
}

/// <summary>One line of problems.jsonl: a record that was not run (bad data) or whose generation failed.</summary>
public sealed record ProblemRecord(string Id, string Reason, string Stage = "read");
