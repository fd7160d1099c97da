using SafeCoDe.Torch.Generation;
using SafeCoDe.Torch.Models;
using SafeCoDe.Torch.Models.Common;
using SafeCoDe.Torch.Runtime;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Decoding.Batching;

/// <summary>
/// Continuous batching of decode steps across requests. Every request that is decoding is a member (it joins after
/// its prefill and leaves when its branches are disposed). A member either asks for one step (<see cref="Step"/>:
/// the guided phase, sampling, anything with per-request rules between tokens) or hands over a whole greedy
/// continuation (<see cref="ContinueGreedy"/>). A round starts when every member is waiting: one of the waiting
/// threads runs all waiting steps as rows of one batch (<see cref="DecoderBackbone.StaticStepMany"/>: each request
/// keeps its own cache, length, positions and mask, so requests join, drop their noised row or leave between steps
/// without a new prefill), then picks the next token of every greedy continuation at once — the placeholder ban,
/// one argmax over the stacked rows and one read-back for all of them — and feeds those tokens in the next round
/// without waking their requests. At most <see cref="MaxRows"/> rows go into one forward; more waiting rows run as
/// further batches of the same round. Every family has a static step (IDEFICS through its own decoder), so every
/// family's rounds run batched.
/// </summary>
internal sealed class DecodeBatcher : IDisposable
{
    private class Entry(DecodeState state, Tensor tokens)
    {
        public DecodeState State { get; } = state;
        /// <summary>The token(s) fed this round; a continuation's are a view of the previous round's picks.</summary>
        public Tensor Tokens { get; set; } = tokens;
        public Tensor? Logits;
        public Exception? Error;
        public bool Done;
    }

    /// <summary>A greedy continuation driven by the batcher: pick, emit and feed until EOS or the budget.</summary>
    private sealed class Continuation(DecodeState state, Tensor tokens) : Entry(state, tokens)
    {
        public required int Budget { get; init; }
        public required IReadOnlySet<long> Eos { get; init; }
        public required long[] Banned { get; init; }
        public required Tensor? BanIndex { get; init; }
        public Action<long>? Emit { get; init; }
        public CancellationToken Cancel { get; init; }
        public readonly List<long> Chosen = [];
        public bool StoppedAtEos;
        /// <summary>Set by the round that picked the last token (EOS or the budget); <see cref="Entry.Done"/> follows under the lock.</summary>
        public bool Finished;
        /// <summary>True while <see cref="Entry.Tokens"/> is ours to dispose (a view of the picks), not the caller's.</summary>
        public bool OwnsTokens;
    }

    private readonly IBackbone _model;
    private readonly object _lock = new();
    private readonly List<Entry> _waiting = [];
    private int _members;
    private bool _running;

    public DecodeBatcher(IBackbone model, int maxRows)
    {
        _model = model;
        MaxRows = Math.Max(1, maxRows);
        _logitsBuffer = empty([MaxRows, model.VocabSize], ScalarType.Float32, model.Device).DetachFromDisposeScope();
    }

    /// <summary>Most rows stepped in one forward.</summary>
    public int MaxRows { get; }

    /// <summary>Steps run so far and forwards they took (a forward with several requests counts once).</summary>
    public (long Steps, long Forwards) Counts { get { lock (_lock) return (_steps, _forwards); } }
    private long _steps, _forwards, _rounds, _rows, _picked;
    private double _forwardMs, _pickMs, _forwardCpuMs, _pickCpuMs;

    /// <summary>All counters (see <see cref="DecodeBatchProfile"/>).</summary>
    public DecodeBatchProfile Profile { get { lock (_lock) return new(_rounds, _steps, _forwards, _rows, _forwardMs, _pickMs, _picked, _forwardCpuMs, _pickCpuMs); } }

    /// <summary>Frees the logits buffers (call when no request decodes any more).</summary>
    public void Dispose()
    {
        lock (_lock) _logitsBuffer.Dispose();
    }

    /// <summary>Makes the caller a member until the returned handle is disposed.</summary>
    public IDisposable Join()
    {
        lock (_lock) _members++;
        return new Membership(this);
    }

    private sealed class Membership(DecodeBatcher owner) : IDisposable
    {
        private int _left;
        public void Dispose()
        {
            if (Interlocked.Exchange(ref _left, 1) == 1) return;
            lock (owner._lock) { owner._members--; Monitor.PulseAll(owner._lock); }
            owner.RunIfReady();
        }
    }

    /// <summary>Feeds <paramref name="tokens"/> to <paramref name="state"/> together with the other members' steps; returns its float32 logits.</summary>
    public Tensor Step(DecodeState state, Tensor tokens)
    {
        var entry = new Entry(state, tokens);
        Await(entry);
        return entry.Logits!;
    }

    /// <summary>
    /// Greedy decoding of a single-row state driven by the batcher: feeds <paramref name="fed"/> (the token the
    /// caller already chose and emitted), then, each round, picks argmax over the logits with <paramref name="banned"/>
    /// at −∞, emits it and feeds it, until a token in <paramref name="eos"/> or <paramref name="budget"/> picks. The
    /// picks are exactly those of a batch-1 greedy loop over the same logits. Returns the picked tokens, whether the
    /// last one was EOS, and the logits of the last forward (the caller owns them).
    /// </summary>
    public (List<long> Tokens, bool StoppedAtEos, Tensor Logits) ContinueGreedy(DecodeState state, Tensor fed, int budget, IReadOnlySet<long> eos,
        long[] banned, Tensor? banIndex, Action<long>? emit, CancellationToken cancel)
    {
        if (state.BatchSize != 1) throw new ArgumentException("a batched greedy continuation decodes a single-row state", nameof(state));
        if (budget < 1) throw new ArgumentOutOfRangeException(nameof(budget), "at least one token");
        var c = new Continuation(state, fed) { Budget = budget, Eos = eos, Banned = banned, BanIndex = banIndex, Emit = emit, Cancel = cancel };
        try { Await(c); }
        finally { if (c.OwnsTokens) c.Tokens.Dispose(); }
        return (c.Chosen, c.StoppedAtEos, c.Logits!);
    }

    /// <summary>Queues <paramref name="entry"/> and runs rounds (or sleeps) until it is done; rethrows its error.</summary>
    private void Await(Entry entry)
    {
        lock (_lock) { _waiting.Add(entry); Monitor.PulseAll(_lock); }
        while (true)
        {
            List<Entry>? batch = null;
            lock (_lock)
            {
                while (!entry.Done && !(Ready && _waiting.Contains(entry))) Monitor.Wait(_lock);
                if (entry.Done)
                {
                    if (entry.Error is not null)
                    {
                        entry.Logits?.Dispose();
                        System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(entry.Error);
                    }
                    return;
                }
                batch = Take();
            }
            Run(batch, wakeAll: false);
        }
    }

    /// <summary>
    /// True when a batch may start: nothing runs and every member is waiting for its step, or steps of a round that
    /// did not fit in <see cref="MaxRows"/> are left over. A member doing host work between its steps holds the round.
    /// </summary>
    private bool Ready => !_running && _waiting.Count > 0 && (_waiting.Count >= _members || _leftover);
    private bool _leftover;
    /// <summary>Set by <see cref="Take"/>: the batch holds every member's step (a whole round in one forward).</summary>
    private bool _clean;
    /// <summary>
    /// Float32 [<see cref="MaxRows"/>, vocab] logits buffer made with the batcher: a clean round's forward of n rows
    /// writes into its first n rows (see <see cref="Forward"/>), so each batch shape has one fixed buffer.
    /// </summary>
    private readonly Tensor _logitsBuffer;

    /// <summary>Runs the waiting steps when every remaining member is waiting (a member just left).</summary>
    private void RunIfReady()
    {
        List<Entry> batch;
        lock (_lock)
        {
            if (!Ready) return;
            batch = Take();
        }
        Run(batch, wakeAll: true);
    }

    /// <summary>Takes the waiting entries that fit in <see cref="MaxRows"/> (at least one); caller holds the lock.</summary>
    private List<Entry> Take()
    {
        var batch = new List<Entry>();
        long rows = 0;
        foreach (var e in _waiting)
        {
            if (batch.Count > 0 && rows + e.State.BatchSize > MaxRows) break;
            batch.Add(e);
            rows += e.State.BatchSize;
        }
        foreach (var e in batch) _waiting.Remove(e);
        // clean: every member's step is in this batch, so no one still reads logits of an earlier forward
        _clean = !_leftover && _waiting.Count == 0;
        _leftover = _waiting.Count > 0;
        _running = true;
        return batch;
    }

    /// <summary>
    /// One round: the forward(s), then the shared token pick of the continuations. Finished entries are marked done;
    /// unfinished continuations go back to the queue. Sleeping threads are woken only when an entry finished (or when
    /// the round was run by a leaving member, <paramref name="wakeAll"/>): a thread whose continuation goes on keeps
    /// running the rounds itself, so a continuation costs no thread wake-up per token.
    /// </summary>
    private void Run(List<Entry> batch, bool wakeAll)
    {
        int forwards = 0;
        var live = new List<Entry>(batch.Count);
        foreach (var e in batch)
        {
            if (e is Continuation { Cancel.IsCancellationRequested: true } c) c.Error = new OperationCanceledException(c.Cancel);
            else live.Add(e);
        }
        long t0 = System.Diagnostics.Stopwatch.GetTimestamp(), t1 = t0;
        double c0 = ThreadCpu.Ms(), c1 = c0, c2 = c0;
        var picking = new List<Continuation>();
        try
        {
            forwards = Forward(live);
            t1 = System.Diagnostics.Stopwatch.GetTimestamp();
            c1 = ThreadCpu.Ms();
            picking.AddRange(live.OfType<Continuation>().Where(c => c.Error is null));
            // a failed pick fails the continuations still going (re-queued, they would feed a stale token)
            try { Pick(picking); }
            catch (Exception ex) { foreach (var c in picking) if (!c.Finished) c.Error ??= ex; }
            c2 = ThreadCpu.Ms();
        }
        finally
        {
            bool finished = false;
            lock (_lock)
            {
                foreach (var e in batch)
                {
                    if (e is Continuation { Error: null, Finished: false } c) { _waiting.Add(c); continue; }
                    e.Done = true;
                    finished = true;
                }
                _steps += live.Count;
                _forwards += forwards;
                _rounds++;
                _rows += live.Sum(e => e.State.BatchSize);
                _picked += picking.Count;
                _forwardMs += System.Diagnostics.Stopwatch.GetElapsedTime(t0, t1).TotalMilliseconds;
                _pickMs += System.Diagnostics.Stopwatch.GetElapsedTime(t1).TotalMilliseconds;
                _forwardCpuMs += c1 - c0;
                _pickCpuMs += c2 - c1;
                _running = false;
                if (finished || wakeAll || _leftover) Monitor.PulseAll(_lock);
            }
        }
    }

    /// <summary>Steps every entry once (one forward for static-step families); returns the forwards run.</summary>
    private int Forward(List<Entry> live)
    {
        int forwards = 0;
        // a state with a full cache fails on its own (its step throws) instead of failing the whole batch
        var together = live.Where(e => e.State.Length < e.State.Capacity).ToList();
        var alone = live.Except(together).ToList();
        if (together.Count > 1 && _model is DecoderBackbone { StepsStatically: true } d)
        {
            try
            {
                forwards++;
                // a clean round's forward writes the logits into the buffer of its row count: every member is
                // waiting, so none still reads the views the previous round handed out
                long rows = together.Sum(e => e.State.BatchSize);
                using var buffer = _clean && rows <= MaxRows ? _logitsBuffer.narrow(0, 0, rows).DetachFromDisposeScope() : null;
                var logits = d.StaticStepMany(together.Select(e => e.State).ToList(), together.Select(e => e.Tokens).ToList(), logitsOut: buffer);
                for (int i = 0; i < together.Count; i++) SetLogits(together[i], logits[i].DetachFromDisposeScope());
            }
            catch (Exception ex) { foreach (var e in together) e.Error = ex; }
        }
        else alone = live;
        foreach (var e in alone)
        {
            forwards++;
            try { SetLogits(e, _model.Step(e.State, e.Tokens).DetachFromDisposeScope()); }
            catch (Exception ex) { e.Error = ex; }
        }
        return forwards;
    }

    /// <summary>A continuation's last pick: its logits (maybe a view of a reused buffer) become its own copy for the caller.</summary>
    private static void Finish(Continuation c)
    {
        c.Finished = true;
        var own = c.Logits!.clone().DetachFromDisposeScope();
        c.Logits.Dispose();
        c.Logits = own;
    }

    private static void SetLogits(Entry e, Tensor logits)
    {
        e.Logits?.Dispose();
        e.Logits = logits;
    }

    /// <summary>
    /// The next token of every continuation at once: their logits rows stacked, the banned ids set to −∞ (one op
    /// when the rows share their ban list, else one per row), one argmax and one read-back. Each continuation's next
    /// fed token is a view of the picks (no host-made tensor).
    /// </summary>
    private static void Pick(List<Continuation> cs)
    {
        if (cs.Count == 0) return;
        long[] picks;
        Tensor onDevice;
        using (var scope = NewDisposeScope())
        {
            var rows = cs.Count == 1 ? cs[0].Logits!.clone() : cat(cs.Select(c => c.Logits!).ToArray(), 0);
            if (cs.All(c => c.Banned.AsSpan().SequenceEqual(cs[0].Banned)))
            {
                if (cs[0].BanIndex is { } idx && idx.numel() > 0) rows.index_fill_(1, idx, Scalars.NegativeInfinity);
            }
            else
                for (int i = 0; i < cs.Count; i++)
                    if (cs[i].BanIndex is { } idx && idx.numel() > 0) rows.narrow(0, i, 1).index_fill_(1, idx, Scalars.NegativeInfinity);
            onDevice = rows.argmax(1).DetachFromDisposeScope();
            using var host = onDevice.cpu();
            picks = host.data<long>().ToArray();
        }
        using (onDevice)
            for (int i = 0; i < cs.Count; i++)
            {
                var c = cs[i];
                long tok = picks[i];
                c.Chosen.Add(tok);
                try { c.Emit?.Invoke(tok); }
                catch (Exception ex) { c.Error = ex; continue; }
                if (c.Eos.Contains(tok)) { c.StoppedAtEos = true; Finish(c); continue; }
                if (c.Chosen.Count >= c.Budget) { Finish(c); continue; }
                if (c.OwnsTokens) c.Tokens.Dispose();
                c.Tokens = onDevice.narrow(0, i, 1).DetachFromDisposeScope();
                c.OwnsTokens = true;
            }
    }
}
