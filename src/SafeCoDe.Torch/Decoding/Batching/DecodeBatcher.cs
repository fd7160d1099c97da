using SafeCoDe.Torch.Generation;
using SafeCoDe.Torch.Models;
using SafeCoDe.Torch.Models.Common;
using SafeCoDe.Torch.Runtime;
using TorchSharp;
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
        /// <summary>Set under the batcher's lock when the entry is finished; its owner is then woken (<see cref="Wake"/>).</summary>
        public bool Done;
        /// <summary>
        /// False while the entry's current logits still have to be picked from (a guided phase entering with its
        /// prefill logits): it joins the round's picks without a forward.
        /// </summary>
        public bool NeedsForward = true;
        /// <summary>Set (under the entry's own monitor) to wake its owner: it is done, or asked to run the next round.</summary>
        public bool Woken;
        /// <summary>The managed thread that waits for this entry (wake-ups of other threads are counted).</summary>
        public int Owner { get; } = Environment.CurrentManagedThreadId;
    }

    /// <summary>A greedy continuation driven by the batcher: pick, emit and feed until EOS or the budget.</summary>
    private class Continuation(DecodeState state, Tensor tokens) : Entry(state, tokens)
    {
        public required int Budget { get; set; }
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

    /// <summary>
    /// A SafeCoDe guided phase driven by the batcher (<see cref="Guide"/>): while <see cref="Guiding"/>, its two rows
    /// [real, noised] are contrasted, modulated and picked together with every other guided request's rows; at the end
    /// of guidance the noised row is dropped and, when the request allows, it goes on as a greedy
    /// <see cref="Continuation"/> of the real row.
    /// </summary>
    private sealed class Guided(DecodeState state, Tensor tokens) : Continuation(state, tokens)
    {
        public required GuidedSpec Spec { get; init; }
        /// <summary>[2] and [1] int64 token tensors of this request, refilled in place (the fed guided token, then the last one on the real row).</summary>
        public required Tensor Fed2 { get; init; }
        public required Tensor Fed1 { get; init; }
        public readonly List<long> GuidedTokens = [];
        public bool Guiding = true;
        /// <summary>True when the batcher went on with the greedy continuation after guidance.</summary>
        public bool Continued;
        /// <summary>Stopwatch timestamp of the end of guidance.</summary>
        public long GuidanceEnded;
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
    private long _steps, _forwards, _rounds, _rows, _picked, _guidedPicked, _wakeUps;
    private double _forwardMs, _pickMs, _forwardCpuMs, _pickCpuMs;

    /// <summary>All counters (see <see cref="DecodeBatchProfile"/>).</summary>
    public DecodeBatchProfile Profile { get { lock (_lock) return new(_rounds, _steps, _forwards, _rows, _forwardMs, _pickMs, _picked, _forwardCpuMs, _pickCpuMs, _guidedPicked, _wakeUps); } }

    /// <summary>Frees the logits buffers (call when no request decodes any more).</summary>
    public void Dispose()
    {
        lock (_lock) { _logitsBuffer.Dispose(); _scratch.Dispose(); }
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
            Entry? next;
            lock (owner._lock)
            {
                owner._members--;
                if (owner._members == 0 && !owner._running) owner._scratch.Clear();
                // the others may all be waiting now: one of them runs the round (the leaving request goes on with
                // its own host work instead of running the others' rounds)
                next = owner.Ready ? owner._waiting[0] : null;
            }
            if (next is not null) owner.Wake(next);
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

    /// <summary>
    /// SafeCoDe's guided phase of a [real, noised] state driven by the batcher, from the state's current
    /// <paramref name="logits"/> ([2, vocab], the caller keeps them): each round contrasts, modulates and picks the
    /// next guided token of every guided request at once (see <see cref="GuidePick"/>) and feeds it to both rows,
    /// until <see cref="GuidedSpec.MaxSteps"/> tokens or the early exit. Then the noised row is dropped (a view, as
    /// <see cref="Decoding.BatchedBranches.DropNoised"/> does) and, when <see cref="GuidedSpec.ContinueGreedily"/>
    /// allows, the guided tokens are handed to <see cref="GuidedSpec.OnGuided"/> and the real row goes on as a greedy
    /// continuation (as <see cref="ContinueGreedy"/>, its first token included) without waking the caller. Tokens
    /// equal those of the request's own loop (<see cref="Processors.DecodeLoop"/> with the guided chain and selector).
    /// </summary>
    public GuidedOutcome Guide(DecodeState state, Tensor logits, GuidedSpec spec, IReadOnlySet<long> eos, long[] banned, Tensor? banIndex,
        Action<long>? emit, CancellationToken cancel)
    {
        if (state.BatchSize != 2) throw new ArgumentException("a batched guided phase decodes a [real, noised] state", nameof(state));
        if (spec.MaxSteps < 1) throw new ArgumentOutOfRangeException(nameof(spec), "at least one guided step");
        using var fed2 = empty(2, ScalarType.Int64, _model.Device).DetachFromDisposeScope();
        using var fed1 = empty(1, ScalarType.Int64, _model.Device).DetachFromDisposeScope();
        var g = new Guided(state, fed2)
        {
            Budget = 0, Eos = eos, Banned = banned, BanIndex = banIndex, Emit = emit, Cancel = cancel, Spec = spec, Fed2 = fed2, Fed1 = fed1,
            NeedsForward = false, Logits = logits.alias().DetachFromDisposeScope(),
        };
        try { Await(g); }
        finally { if (g.OwnsTokens) g.Tokens.Dispose(); }
        return new GuidedOutcome(g.GuidedTokens, g.Continued, g.Chosen, g.StoppedAtEos, g.Logits!, g.GuidanceEnded);
    }

    /// <summary>
    /// Queues <paramref name="entry"/> and runs rounds (or sleeps) until it is done; rethrows its error. Whoever makes
    /// a round possible runs it — the member whose step completes the round, the runner of the previous round while
    /// its own entry goes on, or a member woken by a leaving or finished one — so a thread sleeps from queuing its
    /// entry until that entry is done, and is woken once for it (not after every round).
    /// </summary>
    private void Await(Entry entry)
    {
        List<Entry>? batch;
        lock (_lock)
        {
            _waiting.Add(entry);
            batch = Ready ? Take() : null;
        }
        while (true)
        {
            while (batch is not null)
            {
                Run(batch);
                // go on while a round is possible: our own entry re-queued (a driven decode), or rows left over
                lock (_lock) batch = Ready ? Take() : null;
            }
            lock (entry)
            {
                while (!entry.Woken) Monitor.Wait(entry);
                entry.Woken = false;
            }
            lock (_lock)
            {
                if (entry.Done) break;
                // woken to run the next round (a member left while the others all wait)
                batch = Ready ? Take() : null;
            }
        }
        if (entry.Error is not null)
        {
            entry.Logits?.Dispose();
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(entry.Error);
        }
    }

    /// <summary>Wakes the thread waiting for <paramref name="e"/> (its entry is done, or it is to run the next round); never called under the batcher's lock.</summary>
    private void Wake(Entry e)
    {
        lock (e) { e.Woken = true; Monitor.Pulse(e); }
        if (e.Owner != Environment.CurrentManagedThreadId) Interlocked.Increment(ref _wakeUps);
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

    /// <summary>
    /// The rounds' reusable GEMM buffers (rounds run one at a time); freed whenever the last member leaves, so an idle
    /// engine holds none and a busy one makes each row range's views once.
    /// </summary>
    private readonly StaticScratch _scratch = new(1);

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
    /// One round: the forward(s), then the shared picks — the guided rows' contrast, modulation and pick, and the
    /// greedy continuations' argmax. Finished entries are marked done and their threads woken; unfinished driven
    /// entries (continuations, guided phases) go back to the queue without waking anyone: a request whose decode
    /// goes on costs no thread wake-up per token.
    /// </summary>
    private void Run(List<Entry> batch)
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
        var guiding = new List<Guided>();
        int stepped = 0;
        long rows = 0;
        try
        {
            var stepping = live.Where(e => e.NeedsForward).ToList();
            stepped = stepping.Count;
            rows = stepping.Sum(e => e.State.BatchSize);
            foreach (var e in live) e.NeedsForward = true;
            forwards = Forward(stepping);
            t1 = System.Diagnostics.Stopwatch.GetTimestamp();
            c1 = ThreadCpu.Ms();
            // a guided phase that ends this round goes on as a continuation in the next one: split before picking
            guiding.AddRange(live.OfType<Guided>().Where(g => g.Error is null && g.Guiding));
            picking.AddRange(live.OfType<Continuation>().Where(c => c.Error is null && c is not Guided { Guiding: true }));
            try { GuidePick(guiding); }
            catch (Exception ex) { foreach (var g in guiding) if (!g.Finished) g.Error ??= ex; }
            // a failed pick fails the continuations still going (re-queued, they would feed a stale token)
            try { Pick(picking); }
            catch (Exception ex) { foreach (var c in picking) if (!c.Finished) c.Error ??= ex; }
            c2 = ThreadCpu.Ms();
        }
        finally
        {
            var finished = new List<Entry>();
            lock (_lock)
            {
                foreach (var e in batch)
                {
                    if (e is Continuation { Error: null, Finished: false } c) { _waiting.Add(c); continue; }
                    e.Done = true;
                    finished.Add(e);
                }
                _steps += stepped;
                _forwards += forwards;
                _rows += rows;
                _picked += picking.Count(c => c is not Guided);
                _guidedPicked += guiding.Count + picking.Count(c => c is Guided);
                RecordTimes(t0, t1, c1 - c0, c2 - c1);
                _running = false;
            }
            // only the requests whose entry finished are woken
            foreach (var e in finished) Wake(e);
        }
    }

    /// <summary>Adds a round's forward and pick times to the counters; caller holds the lock.</summary>
    private void RecordTimes(long t0, long t1, double forwardCpuMs, double pickCpuMs)
    {
        _rounds++;
        _forwardMs += System.Diagnostics.Stopwatch.GetElapsedTime(t0, t1).TotalMilliseconds;
        _pickMs += System.Diagnostics.Stopwatch.GetElapsedTime(t1).TotalMilliseconds;
        _forwardCpuMs += forwardCpuMs;
        _pickCpuMs += pickCpuMs;
    }

    /// <summary>Steps every entry once (one forward for static-step families); returns the forwards run.</summary>
    private int Forward(List<Entry> live)
    {
        int forwards = 0;
        // a state with a full cache fails on its own (its step throws) instead of failing the whole batch
        // in cache order: requests prefilled together sit next to each other and attend as one segment
        var together = DecoderBackbone.InCacheOrder(live.Where(e => e.State.Length < e.State.Capacity).ToList(), e => e.State);
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
                var logits = d.StaticStepMany(together.Select(e => e.State).ToList(), together.Select(e => e.Tokens).ToList(), logitsOut: buffer, scratch: _scratch);
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

    /// <summary>Sets the banned ids of every row of <paramref name="rows"/> to −∞ in place: one op when the rows share their ban list, else one per row.</summary>
    private static void Ban(Tensor rows, IReadOnlyList<Continuation> cs)
    {
        if (cs.All(c => c.Banned.AsSpan().SequenceEqual(cs[0].Banned)))
        {
            if (cs[0].BanIndex is { } idx && idx.numel() > 0) rows.index_fill_(1, idx, Scalars.NegativeInfinity);
        }
        else
            for (int i = 0; i < cs.Count; i++)
                if (cs[i].BanIndex is { } idx && idx.numel() > 0) rows.narrow(0, i, 1).index_fill_(1, idx, Scalars.NegativeInfinity);
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
            Ban(rows, cs);
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

    /// <summary>
    /// The next guided token of every guided request at once, the chain of <c>GuidedDecoder</c>'s guided phase over
    /// the stacked rows: the contrast z_r − α·z_n (one α for all rows, or a column of per-row α), the placeholder ban,
    /// the softmax, × the refusal scale vector (shared when the rows' verdict factors and refusal sets agree, else
    /// stacked per row) renormalised, then one top-2 and one read-back for all rows; the quote skip at a request's
    /// first guided token and a request's own sampler for its later tokens (sampling) run per row. Each operation is
    /// the batch-1 chain's, row by row, so the picks are the request's own.
    /// </summary>
    private void GuidePick(List<Guided> gs)
    {
        if (gs.Count == 0) return;
        int n = gs.Count;
        var picks = new long[n];
        using (var scope = NewDisposeScope())
        {
            var p = GuidedProbabilities(gs);
            long k = Math.Min(2, p.shape[^1]);
            using var top2 = p.topk((int)k, -1).indexes.cpu();
            var top = top2.data<long>().ToArray();
            for (int i = 0; i < n; i++)
            {
                var g = gs[i];
                int step = g.GuidedTokens.Count;
                long first = top[i * k];
                picks[i] = step > 0 && g.Spec.Sampled is { } sampler ? sampler.Select(p.select(0, i), step)
                    : step == 0 && g.Spec.QuoteSkip && k > 1 && Processors.TopTwo.IsQuote(g.Spec.Codec.Decode([first])) ? top[i * k + 1]
                    : first;
            }
        }
        for (int i = 0; i < n; i++)
        {
            var g = gs[i];
            try
            {
                long tok = picks[i];
                g.GuidedTokens.Add(tok);
                int step = g.GuidedTokens.Count - 1;
                bool stop = g.GuidedTokens.Count >= g.Spec.MaxSteps || g.Spec.StopAfter?.Invoke(g.GuidedTokens, step) == true;
                if (!stop)
                {
                    using (var t = tok.ToScalar()) g.Fed2.fill_(t);
                    g.Tokens = g.Fed2;
                    continue;
                }
                EndGuidance(g);
            }
            catch (Exception ex) { g.Error = ex; }
        }
    }

    /// <summary>The guided rows' modulated probabilities [n, vocab] (see <see cref="GuidePick"/>), in the caller's dispose scope.</summary>
    private static Tensor GuidedProbabilities(List<Guided> gs)
    {
        int n = gs.Count;
        var both = n == 1 ? gs[0].Logits! : cat(gs.Select(g => g.Logits!).ToArray(), 0);   // [2n, vocab]: real, noised, real, …
        var pairs = both.reshape(n, 2, -1);
        var noised = pairs.select(1, 1);
        Tensor scaled;
        double alpha = gs[0].Spec.Alpha;
        if (gs.All(g => g.Spec.Alpha == alpha))
        {
            using var a = alpha.ToScalar();
            scaled = noised * a;
        }
        else
        {
            // a float32 column: a float32 tensor times a double scalar computes with the scalar in float32 too
            using var host = tensor(gs.Select(g => (float)g.Spec.Alpha).ToArray(), ScalarType.Float32);
            scaled = noised * host.to(both.device).view(n, 1);
        }
        // −(α·z_n) + z_r in place on the one temporary, as LogitsOps.SafeCoDeContrast
        var contrast = scaled.neg_().PlusInPlace(pairs.select(1, 0));
        Ban(contrast, gs);
        var probs = contrast.softmax(-1);
        // × the refusal scale vector, renormalised, as LogitsOps.ScaleAndRenormalize
        var key = gs[0].Spec.ScaleKey;
        var scale = gs.All(g => Equals(g.Spec.ScaleKey, key)) ? gs[0].Spec.Scale : stack(gs.Select(g => g.Spec.Scale).ToArray(), 0);
        var p = probs * scale;
        using (var sum = p.sum(-1, keepdim: true)) p.div_(sum);
        return p;
    }

    /// <summary>
    /// The end of a guided phase: the noised row is dropped (row 0 of the cache and of the logits stay views), then
    /// either the request's thread takes over (rollback, sampling, no budget left: <see cref="GuidedSpec.ContinueGreedily"/>
    /// says 0) or the guided tokens are handed on and the last one is fed to the real row alone for the greedy continuation.
    /// </summary>
    private static void EndGuidance(Guided g)
    {
        g.GuidanceEnded = System.Diagnostics.Stopwatch.GetTimestamp();
        g.Guiding = false;
        using (var scope = NewDisposeScope())
        {
            g.State.KeepRows([0]);
            var real = g.Logits!.narrow(0, 0, 1).DetachFromDisposeScope();
            g.Logits.Dispose();
            g.Logits = real;
        }
        int budget = g.Spec.ContinueGreedily?.Invoke(g.GuidedTokens) ?? 0;
        if (budget <= 0) { Finish(g); return; }
        g.Continued = true;
        g.Spec.OnGuided?.Invoke(g.GuidedTokens);
        g.Budget = budget;
        using (var t = g.GuidedTokens[^1].ToScalar()) g.Fed1.fill_(t);
        g.Tokens = g.Fed1;
    }
}

/// <summary>How the batcher runs one request's guided phase (<see cref="DecodeBatcher.Guide"/>): the settings of its guided chain and selector.</summary>
internal sealed record GuidedSpec
{
    /// <summary>α of the contrast z_r − α·z_n.</summary>
    public required double Alpha { get; init; }
    /// <summary>The float32 [vocab] refusal scale vector (1 everywhere, the verdict's factor at the refusal ids); the caller owns it.</summary>
    public required Tensor Scale { get; init; }
    /// <summary>Rows whose keys are equal share one scale vector (e.g. the factor and the refusal token set).</summary>
    public required object ScaleKey { get; init; }
    /// <summary>Most guided tokens.</summary>
    public required int MaxSteps { get; init; }
    /// <summary>The reference's quote skip on the first guided token (a top-1 quote character gives way to the runner-up).</summary>
    public required bool QuoteSkip { get; init; }
    /// <summary>Decodes a token for the quote skip.</summary>
    public required ITokenCodec Codec { get; init; }
    /// <summary>The selector of guided tokens after the first when sampling (null: greedy top-1); it gets the row's modulated probabilities.</summary>
    public Processors.ITokenSelector? Sampled { get; init; }
    /// <summary>The early exit, checked after each guided token with the tokens so far and the step (null: never).</summary>
    public Func<IReadOnlyList<long>, int, bool>? StopAfter { get; init; }
    /// <summary>At the end of guidance: the greedy continuation's budget when the batcher may go on with it, 0 to hand the request back.</summary>
    public Func<IReadOnlyList<long>, int>? ContinueGreedily { get; init; }
    /// <summary>Called with the guided tokens when the batcher goes on with the continuation (the request streams them then).</summary>
    public Action<IReadOnlyList<long>>? OnGuided { get; init; }
}

/// <summary>What <see cref="DecodeBatcher.Guide"/> produced.</summary>
/// <param name="Guided">The guided tokens.</param>
/// <param name="Continued">True when the batcher also ran the greedy continuation (its tokens in <paramref name="Continuation"/>).</param>
/// <param name="Continuation">The continuation's tokens (empty when not <paramref name="Continued"/>).</param>
/// <param name="StoppedAtEos">The continuation ended at EOS.</param>
/// <param name="Logits">The real row's logits [1, vocab] after the last forward (the caller owns them).</param>
/// <param name="GuidanceEnded">Stopwatch timestamp of the end of guidance.</param>
internal sealed record GuidedOutcome(List<long> Guided, bool Continued, List<long> Continuation, bool StoppedAtEos, Tensor Logits, long GuidanceEnded);
