using SafeCoDe.Eval.Metrics;
using SafeCoDe.Eval.Runs;
using SafeCoDe.Eval.Scoring;

namespace SafeCoDe.Eval.Benchmarks;

/// <summary>
/// One benchmark as the harness sees it: its reader (layout, subsets, framings of its prompts), the scorers it can be
/// scored with and the rubric of each answer, its default judge model, its metrics with their metric sets, what a
/// comparison of two runs counts as an answer's outcome, and notes for its report section. Central code (the runner,
/// the scorers, the metrics, reports and comparisons, the command line) asks the descriptor and never names a
/// benchmark; <see cref="EvalBenchmarks"/> holds them and <see cref="EvalBenchmarks.Register"/> adds one at run time.
/// </summary>
public interface IBenchmark
{
    /// <summary>The name on the command line and in run.json (the reader's).</summary>
    string Name => Reader.Name;

    /// <summary>Reads the benchmark from a local copy.</summary>
    IBenchmarkReader Reader { get; }

    /// <summary>One line for <c>--help</c>: what the benchmark measures.</summary>
    string Summary { get; }

    /// <summary>
    /// What the reader's selection options mean for this benchmark, by option (<c>splits</c>, <c>steps</c>, <c>kinds</c>,
    /// <c>prompts</c>), for the help texts; an option it does not read is not listed.
    /// </summary>
    IReadOnlyDictionary<string, string> SelectionHelp => new Dictionary<string, string>();

    /// <summary>
    /// The scorer kinds that can score it (<c>keyword</c>, <c>rules</c>, <c>openai</c>, <c>local</c>, and <c>guard</c>
    /// when a guard model's harmful/harmless verdict is a score of it: <c>--scorer openai:MODEL --scorer-format NAME</c>).
    /// </summary>
    IReadOnlyList<string> ScorerKinds => ["keyword", "openai", "local"];

    /// <summary>
    /// What <c>--scorer-runs N</c> does for this benchmark (its rubric grades each answer N times and the metrics report
    /// mean ± std over the runs), or null when it grades once and the option is refused.
    /// </summary>
    string? GraderRuns => null;

    /// <summary>The judge model of <c>--scorer openai</c> without a model (the paper's code's; SAFECODE_EVAL_MODEL overrides).</summary>
    string DefaultJudgeModel => "gpt-4o";

    /// <summary>The rubric one answer of a sample is scored with.</summary>
    Rubric RubricFor(string id, IReadOnlyDictionary<string, string> groups);

    /// <summary>Writes the benchmark's rows, JSON and definitions for a run's records.</summary>
    void Metrics(IReadOnlyList<RunRecord> records, MetricsBuilder metrics);

    /// <summary>The metric sets its rows name, each with a sentence saying whose definition it is.</summary>
    IReadOnlyDictionary<string, string> MetricSets { get; }

    /// <summary>An answer's outcome in the benchmark's terms, for <c>eval compare</c> (the score is usable: neither an error nor unscored).</summary>
    string Outcome(RunOutput output, ScoreResult score);

    /// <summary>
    /// The cluster a record's answers belong to: answers of one cluster are not independent (a query asked on a safe
    /// and an unsafe image, the steps of one adversarial item, the prompt types of one case), so the paired tests and
    /// the bootstrap resample clusters, never single answers of them. By default the record itself (its answers
    /// together).
    /// </summary>
    string ClusterKey(RunRecord record) => record.Id;

    /// <summary>
    /// Where the benchmark's headline metric sits on a study's trade-off chart: <c>safety</c> (refusing what is unsafe),
    /// <c>helpfulness</c> (answering what is harmless or solvable), or null to leave it off the chart.
    /// </summary>
    string? Axis => null;

    /// <summary>Whether a higher value of <paramref name="metric"/> (a row's metric name) is better; false for attack success and refusal rates.</summary>
    bool HigherIsBetter(string metric) => true;

    /// <summary>
    /// Whether a metric row feeds a study's over-refusal vs under-sensitivity chart, and on which axis; null (the
    /// default) leaves it off. Several rows of one benchmark on one axis are pooled (their counts added), so a
    /// benchmark names rows that do not overlap (per split, or the top level alone).
    /// </summary>
    SensitivityFeed? Sensitivity(MetricRow row) => null;

    /// <summary>Lines added under the benchmark's table in report.md (none by default).</summary>
    IReadOnlyList<string> ReportNotes(IReadOnlyList<RunMetrics> runs) => [];
}

/// <summary>How a metric row feeds the over-refusal vs under-sensitivity chart.</summary>
/// <param name="Axis"><see cref="OverRefusal"/> (refusing or mishandling what is harmless) or <see cref="UnderSensitivity"/> (answering what is risky as if it were not).</param>
/// <param name="Complement">True when the axis counts the row's misses (1 − rate, e.g. an accuracy), false when the rate itself is the axis (e.g. a refusal rate of harmless requests).</param>
public sealed record SensitivityFeed(string Axis, bool Complement)
{
    /// <summary>The x axis: share of harmless requests refused or mishandled.</summary>
    public const string OverRefusal = "over-refusal";
    /// <summary>The y axis: share of risky requests answered as if they were harmless (missed risks).</summary>
    public const string UnderSensitivity = "under-sensitivity";
}
