using TorchSharp;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Decoding.Processors;

/// <summary>How one phase picks its tokens: the logits chain, the selector, and when it stops early.</summary>
/// <param name="Chain">Applied to the live branches' logits each step.</param>
/// <param name="Selector">Picks the token from the processed scores.</param>
/// <param name="StopAfter">Checked after each token with the phase's tokens so far (e.g. the early exit); null: never.</param>
internal sealed record DecodePhase(ILogitsProcessor Chain, ITokenSelector Selector, Func<IReadOnlyList<long>, int, bool>? StopAfter = null)
{
    /// <summary>Plain greedy generation on the real branch (what the model judge's caption and verdict use).</summary>
    public static DecodePhase Greedy { get; } = new(new LogitsChain(new RealRow()), new Argmax());
}

/// <summary>What a phase produced.</summary>
internal sealed record PhaseResult(List<long> Tokens, bool StoppedAtEos);

/// <summary>
/// The one generation loop: plain generation, SafeCoDe's guided phase (and its forced phrase) and the continuation
/// all run through it. Each step: process the logits, pick a token, hand it on, stop at EOS / the phase's rule /
/// the budget, else feed the token to every live branch. The last token of a phase is not fed (the caller decides).
/// </summary>
internal static class DecodeLoop
{
    public static PhaseResult Run(IBranches branches, DecodePhase phase, int budget, IReadOnlySet<long> eos, Action<long>? emit, CancellationToken cancel)
    {
        var tokens = new List<long>();
        for (int i = 0; i < budget; i++)
        {
            cancel.ThrowIfCancellationRequested();
            long tok;
            using (var scope = NewDisposeScope())
                tok = phase.Selector.Select(phase.Chain.Process(branches.Logits), i);
            tokens.Add(tok);
            emit?.Invoke(tok);
            if (eos.Contains(tok)) return new PhaseResult(tokens, true);
            if (phase.StopAfter?.Invoke(tokens, i) == true) break;
            if (i < budget - 1) branches.Step(tok);
        }
        return new PhaseResult(tokens, false);
    }
}
