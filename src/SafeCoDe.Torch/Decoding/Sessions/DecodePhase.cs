using SafeCoDe.Torch.Decoding.Rules;

namespace SafeCoDe.Torch.Decoding.Sessions;

/// <summary>How a phase ended: the tokens it picked (in order) and whether the last one was an end-of-sequence id.</summary>
public readonly record struct PhaseEnd(IReadOnlyList<long> Tokens, bool StoppedAtEos);

/// <summary>
/// One phase of a session's decode, as a method describes it: the rule chain its rows go through each step, the
/// selector, when it stops, and what comes next. Each step: the chain over the session's rows (stacked with every
/// other session in the round that runs the same chain), the selector's pick, then the token is handed on and the
/// phase stops at one of <see cref="Eos"/>, the <see cref="StopAfter"/> rule, <see cref="Budget"/> tokens, or a
/// selector that decides without a token; otherwise the token is fed to every live row. The last token of a phase is
/// not fed: <see cref="Next"/> decides.
/// </summary>
public sealed class DecodePhase
{
    /// <summary>What the phase is, for traces and errors (e.g. "guided", "continuation").</summary>
    public required string Name { get; init; }
    /// <summary>The rules run over the rows each step.</summary>
    public RuleChain Chain { get; init; } = RuleChain.Empty;
    /// <summary>The selector (resolved per step with <see cref="TokenSelector.At"/>).</summary>
    public required TokenSelector Selector { get; init; }
    /// <summary>Most tokens the phase picks; 0 ends it before its first pick.</summary>
    public required int Budget { get; init; }
    /// <summary>Tokens that end the phase when picked (the end-of-sequence ids of a continuation; none in a guided phase).</summary>
    public IReadOnlySet<long> Eos { get; init; } = NoIds;
    /// <summary>Checked after each token with the phase's tokens so far and the step (e.g. the early exit); null: never.</summary>
    public Func<IReadOnlyList<long>, int, bool>? StopAfter { get; init; }
    /// <summary>True when the phase's tokens are not streamed as they are picked: <see cref="Next"/> decides what becomes of them.</summary>
    public bool Holds { get; init; }
    /// <summary>True for a guided phase (its picks count as guided in the profile; the end of the last one ends the guided span).</summary>
    public bool Guided { get; init; }
    /// <summary>
    /// Runs when the phase ends, on the thread that runs the round: it may change the session's rows (drop the noised
    /// one, roll back), append and stream tokens, feed one; it returns the next phase, or null when the decode is done.
    /// Null here: the decode ends with this phase, its tokens appended.
    /// </summary>
    public Func<DecodeSession, PhaseEnd, DecodePhase?>? Next { get; init; }

    /// <summary>An empty id set.</summary>
    public static readonly IReadOnlySet<long> NoIds = new HashSet<long>();
}
