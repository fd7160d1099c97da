using System.Diagnostics;
using SafeCoDe.Torch.Decoding.Rules;
using SafeCoDe.Torch.Models;
using SafeCoDe.Torch.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Decoding.Sessions;

/// <summary>
/// One request's decode while it runs: its rows (the real branch and, while guided, the noised one — as two rows of
/// one <see cref="DecodeState"/>, or as separate states), their current logits, the phase it is in and the tokens so
/// far. The scheduler forwards its rows with every other session's and picks through the phase's chain and selector;
/// the session applies the pick (<see cref="Apply"/>) and moves through its method's phases. Nothing here runs a
/// forward or knows a method.
/// </summary>
public sealed class DecodeSession : IDisposable
{
    private readonly List<DecodeState> _states;
    private readonly List<Tensor?> _logits;
    private readonly List<Tensor?> _fed = [];
    private readonly List<long> _tokens = [];
    private readonly List<long> _phaseTokens = [];
    private readonly List<TokenLogprob> _logprobs = [];
    private readonly List<TokenLogprob> _phaseLogprobs = [];
    /// <summary>The ended holding phase's log-probabilities, while its transition decides what becomes of its tokens.</summary>
    private List<TokenLogprob>? _held;
    private int _heldNext;
    private readonly long _started = Stopwatch.GetTimestamp();

    /// <summary>A session over prefilled <paramref name="states"/> and their logits (it owns both from here on).</summary>
    internal DecodeSession(IReadOnlyList<DecodeState> states, IReadOnlyList<Tensor> logits)
    {
        _states = [.. states];
        _logits = [.. logits];
        foreach (var _ in states) _fed.Add(null);
    }

    /// <summary>The session's decode states (one, or one per branch); the scheduler forwards them.</summary>
    public IReadOnlyList<DecodeState> States => _states;
    /// <summary>Rows over all states (2 while a pair is guided, then 1).</summary>
    public int Rows => (int)_states.Sum(s => s.BatchSize);
    /// <summary>True while the noised branch is still decoding.</summary>
    public bool HasNoised => Rows > 1;
    /// <summary>Cache positions filled in the real branch (prompt plus fed tokens).</summary>
    public long Length => _states[0].Length;
    /// <summary>The current logits, one tensor per state ([rows, vocab] float32); may be views of the scheduler's reused buffer.</summary>
    public IReadOnlyList<Tensor?> Logits => _logits;
    /// <summary>The phase the session is in (null once it is done).</summary>
    public DecodePhase? Phase { get; private set; }
    /// <summary>The step within <see cref="Phase"/> (tokens it picked so far).</summary>
    public int Step => _phaseTokens.Count;
    /// <summary>True when the rows must be forwarded (a token was fed) before the next pick.</summary>
    public bool NeedsForward { get; private set; }
    /// <summary>The answer's tokens so far (a holding phase's tokens join when its transition appends them).</summary>
    public IReadOnlyList<long> Tokens => _tokens;
    /// <summary>True once the decode is done.</summary>
    public bool Finished => Phase is null;
    /// <summary>The decode ended at an end-of-sequence id.</summary>
    public bool StoppedAtEos { get; private set; }

    /// <summary>
    /// Null (the default): nothing is recorded and picking costs what it always did. k (0..): every pick's
    /// log-probability under the distribution it was picked from and that distribution's k most likely tokens are
    /// recorded (one more read-back per step), in <see cref="TokenLogprobs"/>.
    /// </summary>
    public int? Logprobs { get; set; }
    /// <summary>With <see cref="Logprobs"/> set: one entry per token of <see cref="Tokens"/>, in order (empty otherwise).</summary>
    public IReadOnlyList<TokenLogprob> TokenLogprobs => _logprobs;

    /// <summary>Streams each answer token as it is decided (guided tokens when their phase ends).</summary>
    public Action<long>? Emit { get; internal set; }
    /// <summary>Cancels this session alone.</summary>
    public CancellationToken Cancel { get; internal set; }
    /// <summary>True when the session's states must step one by one, never batched (the reference's separate passes, for comparisons).</summary>
    public bool StepsApart { get; internal init; }
    /// <summary>The CPU generator of the session's draws (null when greedy); disposed with the session.</summary>
    public torch.Generator? Generator { get; internal set; }

    /// <summary>Tokens at the start of <see cref="Tokens"/> that are the guided span (set by the method's transitions).</summary>
    public int GuidedTokens { get; set; }
    /// <summary>The refusal phrase forced as the first tokens, if any.</summary>
    public string? ForcedPhrase { get; set; }
    /// <summary>True when guided tokens were rolled back.</summary>
    public bool RolledBack { get; set; }
    /// <summary>The contrast weight α the decode used (0 without a contrast).</summary>
    public double ContrastWeight { get; set; }
    /// <summary>True once a guided phase began (its picks and the ones after it count as guided in the profile).</summary>
    public bool WasGuided { get; private set; }
    /// <summary>Stopwatch timestamp when the last guided phase ended (0: none).</summary>
    public long GuidanceEnded { get; private set; }
    /// <summary>Milliseconds from the session's start to the end of guidance (0 without guidance).</summary>
    public double GuidedMs => GuidanceEnded == 0 ? 0 : Stopwatch.GetElapsedTime(_started, GuidanceEnded).TotalMilliseconds;
    /// <summary>Milliseconds since the session started.</summary>
    public double ElapsedMs => Stopwatch.GetElapsedTime(_started).TotalMilliseconds;

    /// <summary>Enters <paramref name="first"/> (phases with no budget end at once and hand on to the next).</summary>
    internal void Begin(DecodePhase? first) => Enter(first);

    /// <summary>The token tensor fed to state <paramref name="i"/> this round ([rows] int64, refilled in place).</summary>
    internal Tensor Fed(int i) => _fed[i]!;

    /// <summary>Replaces state <paramref name="i"/>'s logits with the forward's (the session owns them).</summary>
    internal void SetLogits(int i, Tensor logits)
    {
        _logits[i]?.Dispose();
        _logits[i] = logits;
    }

    /// <summary>Makes the current logits the session's own copies (they may be views of the scheduler's reused buffer).</summary>
    internal void OwnLogits()
    {
        for (int i = 0; i < _logits.Count; i++)
        {
            if (_logits[i] is not { } l) continue;
            _logits[i] = l.clone().DetachFromDisposeScope();
            l.Dispose();
        }
    }

    /// <summary>Called by the scheduler after the forward that consumed the fed token.</summary>
    internal void Forwarded() => NeedsForward = false;

    /// <summary>
    /// Applies the round's pick for the current phase: records and (unless the phase holds its tokens) streams it,
    /// then ends the phase at EOS, the stop rule, the budget or a selector's decision without a token, or feeds it to
    /// every live row. A phase that ends runs its transition; returns true when the session needs another pick in
    /// this round without a forward (its next phase starts on the logits it has).
    /// </summary>
    internal bool Apply(long pick, TokenLogprob? logprob = null)
    {
        var phase = Phase!;
        if (pick == TokenSelector.NoToken) return End(new PhaseEnd([.. _phaseTokens], false));
        int step = _phaseTokens.Count;
        _phaseTokens.Add(pick);
        if (Logprobs is not null) _phaseLogprobs.Add(logprob ?? TokenLogprob.Unrecorded(pick));
        if (!phase.Holds) { _tokens.Add(pick); if (Logprobs is not null) _logprobs.Add(_phaseLogprobs[^1]); Emit?.Invoke(pick); }
        if (phase.Eos.Contains(pick)) return End(new PhaseEnd([.. _phaseTokens], true));
        if (phase.StopAfter?.Invoke(_phaseTokens, step) == true || _phaseTokens.Count >= phase.Budget)
            return End(new PhaseEnd([.. _phaseTokens], false));
        Feed(pick);
        return false;
    }

    private bool End(PhaseEnd end)
    {
        var phase = Phase!;
        if (end.StoppedAtEos) StoppedAtEos = true;
        if (phase.Guided) GuidanceEnded = Stopwatch.GetTimestamp();
        DecodePhase? next;
        (_held, _heldNext) = (phase.Holds && Logprobs is not null ? [.. _phaseLogprobs] : null, 0);
        try
        {
            if (phase.Next is { } transition) next = transition(this, end);
            else
            {
                if (phase.Holds) Append(end.Tokens);
                next = null;
            }
        }
        finally { _held = null; }
        Enter(next);
        return Phase is not null && !NeedsForward;
    }

    private void Enter(DecodePhase? phase)
    {
        _phaseTokens.Clear();
        _phaseLogprobs.Clear();
        // a phase without budget ends before its first pick: its transition runs now
        while (phase is not null && phase.Budget <= 0)
        {
            Phase = phase;
            if (phase.Guided) WasGuided = true;
            phase = phase.Next?.Invoke(this, new PhaseEnd([], false));
        }
        Phase = phase;
        if (phase is { Guided: true }) WasGuided = true;
        if (phase is not null && phase.Selector.At(0).ReadsScores && phase.Chain.RowsOut(Rows) is var left and not 1)
            throw new InvalidOperationException($"phase '{phase.Name}': its rules leave {left} rows of the session's {Rows}, not one to pick from");
    }

    // ---- what a method's transitions do ----

    /// <summary>
    /// Appends tokens to the answer and streams them (a holding phase's tokens, once they are decided). With
    /// <see cref="Logprobs"/> set, the i-th token appended by the transition of a holding phase gets the log-probability
    /// of that phase's i-th pick when it is that token (what a rollback keeps is a prefix); any other token gets
    /// <see cref="TokenLogprob.Unrecorded"/>.
    /// </summary>
    public void Append(IEnumerable<long> tokens)
    {
        foreach (var t in tokens)
        {
            _tokens.Add(t);
            if (Logprobs is not null)
                _logprobs.Add(_held is { } held && _heldNext < held.Count && held[_heldNext].Id == t ? held[_heldNext] : TokenLogprob.Unrecorded(t));
            _heldNext++;
            Emit?.Invoke(t);
        }
    }

    /// <summary>Feeds <paramref name="token"/> to every live row: the next round forwards it.</summary>
    public void Feed(long token)
    {
        using var value = token.ToScalar();
        for (int i = 0; i < _states.Count; i++)
        {
            long rows = _states[i].BatchSize;
            if (_fed[i] is null || _fed[i]!.shape[0] != rows)
            {
                _fed[i]?.Dispose();
                _fed[i] = empty(rows, ScalarType.Int64, _logits[0]!.device).DetachFromDisposeScope();
            }
            _fed[i]!.fill_(value);
        }
        NeedsForward = true;
    }

    /// <summary>Stops the noised branch and frees its cache; the real branch goes on from its cache (row 0 stays a view: nothing is copied).</summary>
    public void DropNoised()
    {
        if (!HasNoised) return;
        if (_states.Count > 1)
        {
            for (int i = _states.Count - 1; i > 0; i--)
            {
                _states[i].Dispose(); _states.RemoveAt(i);
                _logits[i]?.Dispose(); _logits.RemoveAt(i);
                _fed[i]?.Dispose(); _fed.RemoveAt(i);
            }
            return;
        }
        _states[0].KeepRows([0]);
        using (var scope = NewDisposeScope())
        {
            var real = _logits[0]!.narrow(0, 0, 1).DetachFromDisposeScope();
            _logits[0]!.Dispose();
            _logits[0] = real;
        }
    }

    /// <summary>A copy of the real row's current logits [1, vocab] (what a rollback returns to).</summary>
    public Tensor RealLogitsCopy()
    {
        using var row = _logits[0]!.narrow(0, 0, 1);
        return row.clone().DetachFromDisposeScope();
    }

    /// <summary>Rolls the real branch back to <paramref name="length"/> cache positions with <paramref name="logits"/> (copied) as its current logits.</summary>
    public void RollBack(long length, Tensor logits)
    {
        if (HasNoised) throw new InvalidOperationException("a rollback needs the real branch alone");
        _states[0].Truncate(length);
        _logits[0]?.Dispose();
        _logits[0] = logits.clone().DetachFromDisposeScope();
        NeedsForward = false;
    }

    /// <summary>Replaces the answer so far (a rollback keeps part of the guided tokens).</summary>
    public void Truncate(int tokens)
    {
        _tokens.RemoveRange(tokens, _tokens.Count - tokens);
        if (_logprobs.Count > tokens) _logprobs.RemoveRange(tokens, _logprobs.Count - tokens);
    }

    /// <summary>The session's membership of a scheduler (see <c>DecodeScheduler.Join</c>); left when the session is disposed.</summary>
    internal IDisposable? Membership { get; set; }

    /// <summary>Leaves the scheduler it joined, and frees the states, logits, fed tokens and the generator.</summary>
    public void Dispose()
    {
        Membership?.Dispose();
        Membership = null;
        foreach (var s in _states) s.Dispose();
        foreach (var l in _logits) l?.Dispose();
        foreach (var f in _fed) f?.Dispose();
        Generator?.Dispose();
        _states.Clear(); _logits.Clear(); _fed.Clear();
    }
}
