using SafeCoDe.Torch.Models;
using SafeCoDe.Torch.Models.Common;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Decoding.Batching;

/// <summary>
/// Continuous batching of decode steps across requests. Every request that is decoding is a member (it joins after
/// its prefill and leaves when its branches are disposed); a member's <see cref="Step"/> waits until every member
/// has asked for its next step, then one of them runs all waiting steps as rows of one batch
/// (<see cref="DecoderBackbone.StaticStepMany"/>: each request keeps its own cache, length, positions and mask, so
/// requests join, drop their noised row or leave between steps without a new prefill). At most
/// <see cref="MaxRows"/> rows go into one forward; more waiting rows run as further batches of the same round.
/// Every family has a static step (IDEFICS through its own decoder), so every family's rounds run batched.
/// </summary>
internal sealed class DecodeBatcher
{
    private sealed class Entry(DecodeState state, Tensor tokens)
    {
        public DecodeState State { get; } = state;
        public Tensor Tokens { get; } = tokens;
        public Tensor? Logits;
        public Exception? Error;
        public bool Done;
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
    }

    /// <summary>Most rows stepped in one forward.</summary>
    public int MaxRows { get; }

    /// <summary>Steps run so far and forwards they took (a forward with several requests counts once).</summary>
    public (long Steps, long Forwards) Counts { get { lock (_lock) return (_steps, _forwards); } }
    private long _steps, _forwards;

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
        lock (_lock) { _waiting.Add(entry); Monitor.PulseAll(_lock); }
        while (true)
        {
            List<Entry>? batch = null;
            lock (_lock)
            {
                while (!entry.Done && !(Ready && _waiting.Contains(entry))) Monitor.Wait(_lock);
                if (entry.Done)
                {
                    if (entry.Error is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(entry.Error);
                    return entry.Logits!;
                }
                batch = Take();
            }
            Run(batch);
        }
    }

    /// <summary>
    /// True when a batch may start: nothing runs and every member is waiting for its step, or steps of a round that
    /// did not fit in <see cref="MaxRows"/> are left over. A member doing host work between its steps holds the round.
    /// </summary>
    private bool Ready => !_running && _waiting.Count > 0 && (_waiting.Count >= _members || _leftover);
    private bool _leftover;

    /// <summary>Runs the waiting steps when every remaining member is waiting (a member just left).</summary>
    private void RunIfReady()
    {
        List<Entry> batch;
        lock (_lock)
        {
            if (!Ready) return;
            batch = Take();
        }
        Run(batch);
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
        _leftover = _waiting.Count > 0;
        _running = true;
        return batch;
    }

    private void Run(List<Entry> batch)
    {
        int forwards = 0;
        try
        {
            // a state with a full cache fails on its own (its step throws) instead of failing the whole batch
            var together = batch.Where(e => e.State.Length < e.State.Capacity).ToList();
            var alone = batch.Except(together).ToList();
            if (together.Count > 1 && _model is DecoderBackbone { StepsStatically: true } d)
            {
                try
                {
                    forwards++;
                    var logits = d.StaticStepMany(together.Select(e => e.State).ToList(), together.Select(e => e.Tokens).ToList());
                    for (int i = 0; i < together.Count; i++) together[i].Logits = logits[i].DetachFromDisposeScope();
                }
                catch (Exception ex) { foreach (var e in together) e.Error = ex; }
            }
            else alone = batch;
            foreach (var e in alone)
            {
                forwards++;
                try { e.Logits = _model.Step(e.State, e.Tokens).DetachFromDisposeScope(); }
                catch (Exception ex) { e.Error = ex; }
            }
        }
        finally
        {
            lock (_lock)
            {
                foreach (var e in batch) e.Done = true;
                _steps += batch.Count;
                _forwards += forwards;
                _running = false;
                Monitor.PulseAll(_lock);
            }
        }
    }
}
