namespace SafeCoDe.Eval.Scoring;

/// <summary>
/// Offline scorer (<c>--scorer rules</c>): the benchmark's own rule-based answer extraction and comparison, with no
/// judge model (<see cref="Rubric.Rules"/>). A rubric without rules leaves the answer unscored with the reason.
/// </summary>
public sealed class RuleScorer : IScorer
{
    /// <summary>"rules".</summary>
    public string Name => "rules";

    /// <inheritdoc/>
    public Task<ScoreResult> ScoreAsync(ScoreInput input, CancellationToken cancel = default)
    {
        var rubric = input.Rubric;
        var result = rubric.Rules(input) ?? new ScoreResult
        {
            Scorer = Name, Rubric = rubric.Name, Label = ScoreResult.UnscoredLabel,
            Error = $"the {rubric.Name} rubric has no rule-based scoring (a judge scores it)",
        };
        return Task.FromResult(result with { Scorer = Name });
    }
}
