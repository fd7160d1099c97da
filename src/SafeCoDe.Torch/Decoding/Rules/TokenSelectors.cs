using TorchSharp;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Decoding.Rules;

/// <summary>
/// Picks the next token of every session of a round that uses this kind of selector, from their processed scores
/// stacked as [sessions, vocab]: one read-back for all of them (the host synchronisation of a step). A selector may
/// decide without a token (<see cref="NoToken"/>): its phase then ends on that decision.
/// </summary>
public abstract class TokenSelector
{
    /// <summary>What <see cref="Select(Tensor?, IReadOnlyList{SelectorCall}, long[])"/> returns for a session that picked no token (its phase ends).</summary>
    public const long NoToken = -1;

    /// <summary>False for selectors that ignore the scores (forced tokens): their phase runs no chain.</summary>
    public virtual bool ReadsScores => true;

    /// <summary>Sessions whose selectors share a key are picked together by the first one's <see cref="Select(Tensor?, IReadOnlyList{SelectorCall}, long[])"/>.</summary>
    public virtual string GroupKey => GetType().Name;

    /// <summary>The selector that picks step <paramref name="step"/> of the phase (combinators resolve to a part).</summary>
    public virtual TokenSelector At(int step) => this;

    /// <summary>
    /// The scores this group's selection actually picks from, and what they hold, given the chain's output
    /// <paramref name="scores"/> of kind <paramref name="kind"/>: the same rows for most selectors, the rows after its
    /// own rules for a selector that runs some (<see cref="After"/>). What the log-probabilities of a pick are read from;
    /// the result is a new tensor or an alias, never <paramref name="scores"/> changed.
    /// </summary>
    public virtual (Tensor Scores, ScoreKind Kind) PickedFrom(Tensor scores, ScoreKind kind, IReadOnlyList<SelectorCall> calls) => (scores.alias(), kind);

    /// <summary>
    /// Writes the pick of session i into <paramref name="picks"/>[i]; <paramref name="calls"/>[i] is its selector (of
    /// this group) and its step in the phase. <paramref name="scores"/> is null when the selector does not read scores.
    /// </summary>
    public abstract void Select(Tensor? scores, IReadOnlyList<SelectorCall> calls, long[] picks);

    /// <summary>The pick for one session's scores ([vocab] or [1, vocab]) at <paramref name="step"/>: what the unit tests use.</summary>
    public long Select(Tensor scores, int step)
    {
        var picks = new long[1];
        var selector = At(step);
        using var rows = scores.dim() == 1 ? scores.unsqueeze(0) : scores.alias();
        selector.Select(selector.ReadsScores ? rows : null, [new SelectorCall(selector, step)], picks);
        return picks[0];
    }
}

/// <summary>One session's selector and step, as a group's <see cref="TokenSelector.Select(Tensor?, IReadOnlyList{SelectorCall}, long[])"/> sees it.</summary>
public readonly record struct SelectorCall(TokenSelector Selector, int Step);

/// <summary>Argmax of every row: one argmax and one read-back for all sessions.</summary>
public sealed class Argmax : TokenSelector
{
    /// <inheritdoc/>
    public override void Select(Tensor? scores, IReadOnlyList<SelectorCall> calls, long[] picks)
    {
        using var best = scores!.argmax(-1);
        using var host = best.cpu();
        host.data<long>().CopyTo(picks, 0);
    }
}

/// <summary>
/// The reference's greedy guided pick: it looks at the best two of each row and takes the first, except on step 0
/// with the quote skip on, where a first choice decoding to a quote character gives way to the runner-up.
/// </summary>
public sealed class TopTwo(ITokenCodec codec, bool quoteSkip) : TokenSelector
{
    /// <summary>Decodes a first choice for the quote check.</summary>
    public ITokenCodec Codec => codec;
    /// <summary>True when a quote first choice gives way on step 0.</summary>
    public bool QuoteSkip => quoteSkip;

    private static readonly HashSet<string> QuoteTokens = ["\"", "'", "\u201C", "\u201D", "\u2018", "\u2019", "`", "\u00B4"];

    /// <summary>True when a token's text (trimmed) is a quote character.</summary>
    public static bool IsQuote(string text) => QuoteTokens.Contains(text.Trim());

    /// <inheritdoc/>
    public override void Select(Tensor? scores, IReadOnlyList<SelectorCall> calls, long[] picks)
    {
        int k = (int)Math.Min(2, scores!.shape[^1]);
        using var top = scores.topk(k, -1).indexes;
        using var host = top.cpu();
        var ids = host.data<long>().ToArray();
        for (int i = 0; i < calls.Count; i++)
        {
            var (sel, step) = ((TopTwo)calls[i].Selector, calls[i].Step);
            long first = ids[i * k];
            picks[i] = step == 0 && sel.QuoteSkip && k > 1 && IsQuote(sel.Codec.Decode([first])) ? ids[i * k + 1] : first;
        }
    }
}

/// <summary>One draw per row from probabilities with the session's CPU generator (same seed, same tokens on every device).</summary>
public sealed class Multinomial(torch.Generator? gen) : TokenSelector
{
    /// <inheritdoc/>
    public override void Select(Tensor? scores, IReadOnlyList<SelectorCall> calls, long[] picks)
    {
        using var host = scores!.cpu();
        for (int i = 0; i < calls.Count; i++)
        {
            using var row = host.narrow(0, i, 1);
            using var draw = multinomial(row, 1, false, ((Multinomial)calls[i].Selector).Generator);
            picks[i] = draw.item<long>();
        }
    }

    private torch.Generator? Generator => gen;
}

/// <summary>Extra rules run on the selector's rows before another selector (e.g. the guided temperature before a draw).</summary>
public sealed class After(LogitsRule first, TokenSelector then) : TokenSelector
{
    /// <summary>The rule run first.</summary>
    public LogitsRule First => first;
    /// <summary>The selector that picks after it.</summary>
    public TokenSelector Then => then;

    /// <inheritdoc/>
    public override string GroupKey => $"After({first.GetType().Name},{then.GroupKey})";

    /// <inheritdoc/>
    public override (Tensor Scores, ScoreKind Kind) PickedFrom(Tensor scores, ScoreKind kind, IReadOnlyList<SelectorCall> calls)
    {
        using var scope = NewDisposeScope();
        var rules = calls.Select(c => ((After)c.Selector).First).ToArray();
        var processed = first.Apply(scores, new RuleRows(calls.Count, 1, Owned: false), rules); // the scope frees it (scores themselves are not in it)
        var (picked, pickedKind) = then.PickedFrom(processed, first.Output(kind), calls.Select(c => new SelectorCall(((After)c.Selector).Then, c.Step)).ToArray());
        return (picked.MoveToOuterDisposeScope(), pickedKind);
    }

    /// <inheritdoc/>
    public override void Select(Tensor? scores, IReadOnlyList<SelectorCall> calls, long[] picks)
    {
        using var scope = NewDisposeScope();
        var rules = calls.Select(c => ((After)c.Selector).First).ToArray();
        var processed = first.Apply(scores!, new RuleRows(calls.Count, 1, Owned: false), rules);
        then.Select(processed, calls.Select(c => new SelectorCall(((After)c.Selector).Then, c.Step)).ToArray(), picks);
    }
}

/// <summary>A different selector for step 0 than for the later steps.</summary>
public sealed class FirstThen(TokenSelector first, TokenSelector rest) : TokenSelector
{
    /// <inheritdoc/>
    public override TokenSelector At(int step) => step == 0 ? first.At(step) : rest.At(step);

    /// <inheritdoc/>
    public override void Select(Tensor? scores, IReadOnlyList<SelectorCall> calls, long[] picks) =>
        throw new InvalidOperationException("FirstThen resolves to a part through At(step)");
}

/// <summary>Emits fixed ids (a forced refusal phrase), ignoring the scores.</summary>
public sealed class Forced(IReadOnlyList<long> ids) : TokenSelector
{
    /// <summary>The ids, in order.</summary>
    public IReadOnlyList<long> Ids => ids;

    /// <inheritdoc/>
    public override bool ReadsScores => false;

    /// <inheritdoc/>
    public override void Select(Tensor? scores, IReadOnlyList<SelectorCall> calls, long[] picks)
    {
        for (int i = 0; i < calls.Count; i++) picks[i] = ((Forced)calls[i].Selector).Ids[calls[i].Step];
    }
}

/// <summary>
/// Ranks a refusal phrase list on each row's distribution (<see cref="RefusalTokens.ChoosePhrase"/>: summed probability
/// of each phrase's ids, the best <c>topK</c>, keyword-preferred) and reports the choice (−1: none could be ranked); it
/// picks no token, so its phase ends on the decision. One read-back of the rows for all sessions.
/// </summary>
public sealed class RankPhrases(RefusalTokens refusal, int topK, IReadOnlyList<string> keywords, Action<int> chosen) : TokenSelector
{
    /// <inheritdoc/>
    public override void Select(Tensor? scores, IReadOnlyList<SelectorCall> calls, long[] picks)
    {
        using var host = scores!.cpu();
        for (int i = 0; i < calls.Count; i++)
        {
            using var row = host.select(0, i);
            ((RankPhrases)calls[i].Selector).Choose(row.data<float>().ToArray());
            picks[i] = NoToken;
        }
    }

    private void Choose(float[] probs) => chosen(refusal.ChoosePhrase(probs, topK, keywords));
}
