using System.Diagnostics;
using SafeCoDe.Torch.Decoding.Sessions;
using SafeCoDe.Torch.Models;
using SafeCoDe.Torch.Runtime;

namespace SafeCoDe.Torch.Decoding.Scheduling;

/// <summary>
/// Continuous batching of decode sessions: when to step, not what to pick. A request hands its whole decode over as a
/// session (<see cref="Decode"/>) and sleeps until it is done. Whoever makes a round possible runs it — the request
/// whose session arrives while nothing runs, or the runner of the previous round while its own session goes on — so
/// a thread is woken once, when its session is done (or to take over the rounds when the runner's own session ends).
/// A round forwards every session that was fed a token as rows of one batch (<see cref="RoundForward"/>), then picks
/// for all of them, one rule chain per phase kind over stacked rows (<see cref="RoundPicks"/>). At most
/// <see cref="MaxRows"/> rows go into one forward; more sessions run as further batches of the same round. Sessions
/// join between rounds (after their prefill) and leave when done, without disturbing the others.
/// </summary>
internal sealed class DecodeScheduler : IDisposable
{
    /// <summary>A session while the scheduler holds it, with its owner's wake-up.</summary>
    private sealed class Ticket(DecodeSession session)
    {
        public DecodeSession Session { get; } = session;
        public Exception? Error;
        /// <summary>Set under the scheduler's lock when the session is done (finished or failed).</summary>
        public bool Done;
        /// <summary>Set (under the ticket's own monitor) to wake its owner: it is done, or is to run the next round.</summary>
        public bool Woken;
        /// <summary>The managed thread that waits for this ticket (wake-ups of other threads are counted).</summary>
        public int Owner { get; } = Environment.CurrentManagedThreadId;
    }

    private readonly object _lock = new();
    private readonly List<Ticket> _waiting = [];
    private readonly RoundForward _forward;
    private readonly DecodeBatchProfile.Counter _profile = new();
    private bool _running;
    private int _members;

    public DecodeScheduler(IBackbone model, int maxRows)
    {
        MaxRows = Math.Max(1, maxRows);
        _forward = new RoundForward(model, MaxRows);
    }

    /// <summary>Most rows stepped in one forward.</summary>
    public int MaxRows { get; }

    /// <summary>States stepped so far and the forwards they took (a forward with several sessions counts once).</summary>
    public (long Steps, long Forwards) Counts { get { lock (_lock) return (_profile.Steps, _profile.Forwards); } }

    /// <summary>All counters (see <see cref="DecodeBatchProfile"/>).</summary>
    public DecodeBatchProfile Profile { get { lock (_lock) return _profile.Read(); } }

    /// <summary>
    /// Makes <paramref name="session"/> a member from now until it leaves (its <see cref="Decode"/> ends, or it is disposed):
    /// a round waits until every member has handed its session over, so sessions prefilled together step together from
    /// their first round. Sessions that do not join before <see cref="Decode"/> join there.
    /// </summary>
    public void Join(DecodeSession session)
    {
        lock (_lock)
        {
            if (session.Membership is not null) return;
            _members++;
            session.Membership = new Leave(this);
        }
    }

    private sealed class Leave(DecodeScheduler owner) : IDisposable
    {
        private int _left;
        public void Dispose()
        {
            if (Interlocked.Exchange(ref _left, 1) == 1) return;
            Ticket? next;
            lock (owner._lock)
            {
                owner._members--;
                if (owner._members == 0 && !owner._running) owner._forward.Idle();
                // the others may all be waiting now: one of them runs the round
                next = owner.Ready ? owner._waiting[0] : null;
            }
            if (next is not null) owner.Wake(next);
        }
    }

    /// <summary>Decodes <paramref name="session"/> to its end with every other session that runs meanwhile; rethrows its error.</summary>
    public void Decode(DecodeSession session)
    {
        Join(session);
        try
        {
            if (session.Finished) return;
            var me = new Ticket(session);
            List<Ticket>? batch;
            lock (_lock)
            {
                _waiting.Add(me);
                batch = Ready ? Take() : null;
            }
            Await(me, batch);
            if (me.Error is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(me.Error);
        }
        finally
        {
            session.Membership?.Dispose();
            session.Membership = null;
        }
    }

    /// <summary>Runs rounds while this thread's session goes on and a round is possible, else sleeps until woken.</summary>
    private void Await(Ticket me, List<Ticket>? batch)
    {
        while (true)
        {
            while (batch is not null)
            {
                StepBatch(batch);
                lock (_lock) batch = !me.Done && Ready ? Take() : null;
            }
            lock (_lock) if (me.Done) return;
            lock (me)
            {
                while (!me.Woken) Monitor.Wait(me);
                me.Woken = false;
            }
            lock (_lock)
            {
                if (me.Done) return;
                batch = Ready ? Take() : null;
            }
        }
    }

    /// <summary>Wakes the thread waiting for <paramref name="t"/> (done, or to run the next round); never called under the scheduler's lock.</summary>
    private void Wake(Ticket t)
    {
        lock (t) { t.Woken = true; Monitor.Pulse(t); }
        if (t.Owner != Environment.CurrentManagedThreadId) Interlocked.Increment(ref _profile.WakeUps);
    }

    /// <summary>
    /// True when a batch may start: nothing runs and every member has handed its session over — or sessions of a
    /// round that did not fit in <see cref="MaxRows"/> are left over.
    /// </summary>
    private bool Ready => !_running && _waiting.Count > 0 && (_waiting.Count >= _members || _leftover);
    private bool _leftover;

    /// <summary>Takes the waiting sessions that fit in <see cref="MaxRows"/> rows (at least one); caller holds the lock.</summary>
    private List<Ticket> Take()
    {
        var batch = new List<Ticket>();
        long rows = 0;
        foreach (var t in _waiting)
        {
            if (batch.Count > 0 && rows + t.Session.Rows > MaxRows) break;
            batch.Add(t);
            rows += t.Session.Rows;
        }
        _waiting.RemoveRange(0, batch.Count);
        _leftover = _waiting.Count > 0;
        _running = true;
        return batch;
    }

    /// <summary>
    /// One batch of a round: the forward of the fed sessions, then picks until every session has either been fed its
    /// next token, finished or failed. Unfinished sessions go back to the queue without waking anyone; the owners of
    /// finished ones are woken.
    /// </summary>
    private void StepBatch(List<Ticket> batch)
    {
        var tickets = batch.ToDictionary(t => t.Session);
        void Fail(DecodeSession s, Exception ex) => tickets[s].Error ??= ex;
        long t0 = Stopwatch.GetTimestamp(), t1 = t0;
        double c0 = ThreadCpu.Ms(), c1 = c0, c2 = c0;
        var round = new DecodeBatchProfile.Round();
        try
        {
            foreach (var t in batch)
                if (t.Session.Cancel.IsCancellationRequested) t.Error = new OperationCanceledException(t.Session.Cancel);
            var stepping = batch.Where(t => t.Error is null && t.Session.NeedsForward).Select(t => t.Session).ToList();
            round.States = stepping.Sum(s => s.States.Count);
            round.Rows = stepping.Sum(s => s.Rows);
            round.Forwards = _forward.Forward(stepping, Fail);
            t1 = Stopwatch.GetTimestamp();
            c1 = ThreadCpu.Ms();
            var pending = batch.Where(t => t.Error is null && !t.Session.Finished).Select(t => t.Session).ToList();
            var forwarded = stepping.ToHashSet();
            while (pending.Count > 0)
            {
                foreach (var s in pending)
                    if (s.WasGuided || (s.Phase?.Guided ?? false)) round.GuidedPicked++;
                    else if (forwarded.Contains(s)) round.Picked++;
                var picked = RoundPicks.Pick(pending, Fail);
                round.Chains += picked.Groups;
                forwarded.Clear();
                pending = picked.Again.Where(s => tickets[s].Error is null).ToList();
            }
            c2 = ThreadCpu.Ms();
        }
        catch (Exception ex) { foreach (var t in batch) t.Error ??= ex; }
        finally { Finish(batch, round, t0, t1, c1 - c0, c2 - c1); }
    }

    private void Finish(List<Ticket> batch, DecodeBatchProfile.Round round, long t0, long t1, double forwardCpuMs, double pickCpuMs)
    {
        var finished = new List<Ticket>();
        foreach (var t in batch)
            if (t.Error is null && t.Session.Finished) t.Session.OwnLogits();
        lock (_lock)
        {
            foreach (var t in batch)
            {
                if (t.Error is null && !t.Session.Finished) { _waiting.Add(t); continue; }
                t.Done = true;
                finished.Add(t);
            }
            _profile.Add(round, Stopwatch.GetElapsedTime(t0, t1).TotalMilliseconds, Stopwatch.GetElapsedTime(t1).TotalMilliseconds, forwardCpuMs, pickCpuMs);
            _running = false;
        }
        // the runner's own session needs no wake-up: it sees Done when the batch returns
        foreach (var t in finished)
            if (t.Owner != Environment.CurrentManagedThreadId) Wake(t);
    }

    /// <summary>Frees the logits and GEMM buffers (call when no session runs any more).</summary>
    public void Dispose()
    {
        lock (_lock) _forward.Dispose();
    }
}
