using TorchSharp;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Decoding.Processors;

/// <summary>Picks the next token from processed scores (the one host synchronisation of a step).</summary>
internal interface ITokenSelector
{
    /// <summary>The chosen id for step <paramref name="step"/> of a phase.</summary>
    long Select(Tensor scores, int step);
}

/// <summary>Argmax of a [1, vocab] row.</summary>
internal sealed class Argmax : ITokenSelector
{
    /// <inheritdoc/>
    public long Select(Tensor scores, int step) => scores.argmax(-1).item<long>();
}

/// <summary>One draw from probabilities with a CPU generator (same seed, same tokens on every device).</summary>
internal sealed class Multinomial(torch.Generator? gen) : ITokenSelector
{
    /// <inheritdoc/>
    public long Select(Tensor scores, int step) => multinomial(scores.cpu(), 1, false, gen).item<long>();
}

/// <summary>
/// The reference's greedy guided pick: it looks at the best two of a [vocab] distribution and takes the first, except
/// on step 0 with the quote skip on, where a first choice decoding to a quote character gives way to the runner-up.
/// </summary>
internal sealed class TopTwo(ITokenCodec codec, bool quoteSkip) : ITokenSelector
{
    private static readonly HashSet<string> QuoteTokens = ["\"", "'", "\u201C", "\u201D", "\u2018", "\u2019", "`", "\u00B4"];

    /// <summary>True when a token's text (trimmed) is a quote character.</summary>
    public static bool IsQuote(string text) => QuoteTokens.Contains(text.Trim());

    /// <inheritdoc/>
    public long Select(Tensor scores, int step)
    {
        var top = scores.topk(Math.Min(2, (int)scores.shape[0])).indexes.cpu().data<long>().ToArray();
        return step == 0 && quoteSkip && top.Length > 1 && IsQuote(codec.Decode([top[0]])) ? top[1] : top[0];
    }
}

/// <summary>Extra processors run before another selector (e.g. the guided temperature before a draw).</summary>
internal sealed class After(ILogitsProcessor first, ITokenSelector then) : ITokenSelector
{
    /// <inheritdoc/>
    public long Select(Tensor scores, int step) => then.Select(first.Process(scores), step);
}

/// <summary>A different selector for step 0 than for the later steps.</summary>
internal sealed class FirstThen(ITokenSelector first, ITokenSelector rest) : ITokenSelector
{
    /// <inheritdoc/>
    public long Select(Tensor scores, int step) => (step == 0 ? first : rest).Select(scores, step);
}

/// <summary>Emits fixed ids (a forced refusal phrase), ignoring the scores.</summary>
internal sealed class Forced(IReadOnlyList<long> ids) : ITokenSelector
{
    /// <inheritdoc/>
    public long Select(Tensor scores, int step) => ids[step];
}
