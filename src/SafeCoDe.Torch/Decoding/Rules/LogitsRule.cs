using static TorchSharp.torch;

namespace SafeCoDe.Torch.Decoding.Rules;

/// <summary>
/// The stacked scores a rule runs over: <see cref="Sessions"/> sessions of <see cref="RowsPerSession"/> rows each, in
/// session order ([real, noised, real, noised, …] for two-row sessions). <see cref="Owned"/>: the tensor is the chain's
/// own temporary, so a rule may change it in place instead of allocating.
/// </summary>
public readonly record struct RuleRows(int Sessions, int RowsPerSession, bool Owned);

/// <summary>What a row of scores holds: unnormalised logits, or a probability distribution over the vocabulary.</summary>
public enum ScoreKind
{
    /// <summary>Logits (the model's, or a rule's logit-space transform): log-probabilities are their log-softmax.</summary>
    Logits,
    /// <summary>Probabilities that sum to one per row: log-probabilities are their logarithm.</summary>
    Probabilities,
}

/// <summary>
/// One rule of the decoding pipeline, written once over the stacked rows of every session that runs it in a round
/// (a single request is one session: there is no separate single-request path). Scores in ([sessions × rows, vocab],
/// logits or probabilities), scores out; the input is changed only when <see cref="RuleRows.Owned"/>, and nothing is
/// read back to the host. Each session's chain holds its own instance with its own parameters (α, scale vector,
/// temperature, …); <see cref="Apply"/> gets all of them and applies the parameters per row — one operation when
/// the rows agree, per row otherwise — so a row's value equals the rule applied to that session alone.
/// Rules are composed into a <see cref="RuleChain"/> per phase, as HF's LogitsProcessorList and llama.cpp's sampler
/// chain are.
/// </summary>
public abstract class LogitsRule
{
    /// <summary>Rows per session the rule returns given the rows it gets (most keep them; pair rules make one of two).</summary>
    public virtual int RowsOut(int rowsIn) => rowsIn;

    /// <summary>True when the result is a view of the input (then it is owned exactly when the input was).</summary>
    public virtual bool ReturnsView => false;

    /// <summary>What the rule's output holds given what its input held (most rules keep the kind; a softmax makes probabilities).</summary>
    public virtual ScoreKind Output(ScoreKind input) => input;

    /// <summary>Applies the rule to the stacked rows; <paramref name="members"/>[i] is session i's instance (all of this type).</summary>
    public abstract Tensor Apply(Tensor scores, RuleRows rows, IReadOnlyList<LogitsRule> members);

    /// <summary>
    /// The rule on one session's scores ([rows, vocab], or one [vocab] row): what the unit tests and one-off callers use.
    /// A one-row result of a one-dimensional input is one-dimensional again.
    /// </summary>
    public Tensor Process(Tensor scores)
    {
        bool flat = scores.dim() == 1;
        using var input = flat ? scores.unsqueeze(0) : scores.alias();
        var result = Apply(input, new RuleRows(1, (int)input.shape[0], Owned: false), [this]);
        if (!flat && !ReferenceEquals(result, input)) return result;
        if (ReferenceEquals(result, input)) return scores.alias();
        using (result) return result.squeeze(0);
    }

    /// <summary>True when every member gives the same <paramref name="key"/> (the common case: one study, one setting).</summary>
    protected static bool Agree<T, TKey>(IReadOnlyList<LogitsRule> members, Func<T, TKey> key) where T : LogitsRule
    {
        var first = key((T)members[0]);
        for (int i = 1; i < members.Count; i++)
            if (!EqualityComparer<TKey>.Default.Equals(key((T)members[i]), first)) return false;
        return true;
    }

    /// <summary>
    /// The rule session by session, each on its own rows with its own instance, concatenated: the exact fallback when
    /// the sessions' parameters differ and no stacked form gives the same values bit for bit.
    /// </summary>
    protected static Tensor PerSession(Tensor scores, RuleRows rows, IReadOnlyList<LogitsRule> members)
    {
        using var scope = NewDisposeScope();
        var parts = new Tensor[rows.Sessions];
        for (int i = 0; i < rows.Sessions; i++)
        {
            using var own = scores.narrow(0, (long)i * rows.RowsPerSession, rows.RowsPerSession);
            var r = members[i].Apply(own, new RuleRows(1, rows.RowsPerSession, Owned: false), [members[i]]);
            parts[i] = ReferenceEquals(r, own) ? own.alias() : r;
        }
        return cat(parts, 0).MoveToOuterDisposeScope();
    }
}

/// <summary>Rules applied in order; what a phase runs over its rows each step.</summary>
public sealed class RuleChain(params LogitsRule[] rules)
{
    /// <summary>The chain without rules (a phase whose selector does not read scores, or picks from the raw logits).</summary>
    public static RuleChain Empty { get; } = new();

    /// <summary>The rules, in the order they run.</summary>
    public IReadOnlyList<LogitsRule> Rules { get; } = rules;

    /// <summary>Sessions whose chains have the same signature run as one chain over their stacked rows.</summary>
    public string Signature { get; } = string.Join('>', rules.Select(r => r.GetType().Name));

    /// <summary>The chain with <paramref name="more"/> appended.</summary>
    public RuleChain Then(params LogitsRule[] more) => new([.. Rules, .. more]);

    /// <summary>What the chain's output holds, given the model's logits as its input.</summary>
    public ScoreKind Output => Rules.Aggregate(ScoreKind.Logits, (kind, r) => r.Output(kind));

    /// <summary>Rows per session after the chain, given the rows before it.</summary>
    public int RowsOut(int rowsIn) => Rules.Aggregate(rowsIn, (rows, r) => r.RowsOut(rows));

    /// <summary>The chain on one session's scores ([rows, vocab]): what the unit tests and one-off callers use.</summary>
    public Tensor Process(Tensor scores) => Apply(scores, (int)scores.shape[0], owned: false, [this]);

    /// <summary>
    /// Runs the chain over the stacked rows of <paramref name="chains"/>.Count sessions that share this signature
    /// (<paramref name="chains"/>[i] is session i's chain). Returns a new tensor or a view of the input.
    /// </summary>
    public static Tensor Apply(Tensor scores, int rowsPerSession, bool owned, IReadOnlyList<RuleChain> chains)
    {
        var current = scores;
        int rows = rowsPerSession;
        var members = new LogitsRule[chains.Count];
        for (int j = 0; j < chains[0].Rules.Count; j++)
        {
            for (int i = 0; i < chains.Count; i++) members[i] = chains[i].Rules[j];
            var rule = members[0];
            var next = rule.Apply(current, new RuleRows(chains.Count, rows, owned), members);
            rows = rule.RowsOut(rows);
            if (!ReferenceEquals(next, current)) owned = rule.ReturnsView ? owned : true;
            current = next;
        }
        return ReferenceEquals(current, scores) ? scores.alias() : current;
    }
}
