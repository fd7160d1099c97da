using SafeCoDe.Torch.Models;
using SafeCoDe.Torch.Models.Common;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Decoding.Scheduling;

/// <summary>
/// Prefills of requests that wait at the same time run as one forward (group commit). A request queues its rows
/// (real and, when guided, noised) and waits; while no prefill runs, one waiting thread takes every queued request
/// whose image inputs have the same shapes as the first one in line (up to <see cref="MaxRows"/> rows), left-pads
/// their prompts into one batch (<see cref="BatchCollator.Collate"/>), runs one prefill — the vision tower over all
/// their images at once, the decoder over all their rows — and hands each request its own state
/// (<see cref="DecoderBackbone.PrefillParts"/>). Requests arriving meanwhile form the next batch. A request alone
/// is prefilled exactly as before (no padding). When a batch fails, its requests are prefilled one by one, so an
/// error stays with the request that caused it. Results equal a prefill alone within float rounding (the padded
/// rows attend over masked slots; the tolerance: 1e-5 relative in float32).
/// </summary>
internal sealed class PrefillBatcher
{
    private sealed class Ticket(BackboneInputs real, BackboneInputs? noised, int maxNewTokens)
    {
        public BackboneInputs Real { get; } = real;
        public BackboneInputs? Noised { get; } = noised;
        public int MaxNewTokens { get; } = maxNewTokens;
        public int Rows => Noised is null ? 1 : 2;
        public (DecodeState State, Tensor Logits)? Result;
        public Exception? Error;
        public bool Taken, Done;
    }

    private readonly DecoderBackbone _model;
    private readonly long _padId;
    private readonly object _lock = new();
    private readonly List<Ticket> _queue = [];
    private bool _running;
    private long _prefills, _forwards;

    public PrefillBatcher(DecoderBackbone model, long padId, int maxRows)
    {
        _model = model;
        _padId = padId;
        MaxRows = Math.Max(2, maxRows);
    }

    /// <summary>Most rows in one batched prefill.</summary>
    public int MaxRows { get; }

    /// <summary>Requests prefilled so far, and the forwards they took.</summary>
    public (long Prefills, long Forwards) Counts { get { lock (_lock) return (_prefills, _forwards); } }

    /// <summary>
    /// Prefills the request's rows ([real, noised] when <paramref name="noised"/> is given) with room for
    /// <paramref name="maxNewTokens"/> new tokens, batched with whatever other requests wait at the same time.
    /// The state and logits ([rows, vocab], float32) belong to the caller.
    /// </summary>
    public (DecodeState State, Tensor Logits) Prefill(BackboneInputs real, BackboneInputs? noised, int maxNewTokens, CancellationToken cancel)
    {
        var me = new Ticket(real, noised, maxNewTokens);
        lock (_lock)
        {
            _queue.Add(me);
            while (!me.Done)
            {
                if (!_running) { _running = true; break; }
                Monitor.Wait(_lock, 50);
                if (cancel.IsCancellationRequested && !me.Taken)
                {
                    _queue.Remove(me);
                    cancel.ThrowIfCancellationRequested();
                }
            }
        }
        if (!me.Done)
        {
            try
            {
                // lead: run batches until ours is done (it is in the first one unless others queued earlier)
                while (!me.Done)
                {
                    List<Ticket> group;
                    lock (_lock) group = TakeGroup();
                    Run(group);
                    lock (_lock) { foreach (var t in group) t.Done = true; Monitor.PulseAll(_lock); }
                }
            }
            finally
            {
                lock (_lock) { _running = false; Monitor.PulseAll(_lock); }
            }
        }
        if (me.Error is { } e) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e).Throw();
        return me.Result!.Value;
    }

    /// <summary>The first queued request and every later one whose image inputs stack with it, up to <see cref="MaxRows"/> rows.</summary>
    private List<Ticket> TakeGroup()
    {
        var first = _queue[0];
        var group = new List<Ticket> { first };
        int rows = first.Rows;
        foreach (var t in _queue.Skip(1))
            if (rows + t.Rows <= MaxRows && Stackable(first.Real, t.Real)) { group.Add(t); rows += t.Rows; }
        foreach (var t in group) { _queue.Remove(t); t.Taken = true; }
        return group;
    }

    /// <summary>Same image input names, and each tensor of the same shape past its first axis (past the prompt axis for per-token inputs), so they concatenate.</summary>
    private static bool Stackable(BackboneInputs a, BackboneInputs b)
    {
        if (a.Images.Count != b.Images.Count) return false;
        foreach (var (k, ta) in a.Images)
        {
            if (!b.Images.TryGetValue(k, out var tb) || ta.dim() != tb.dim()) return false;
            // per-token inputs are left-padded along the prompt axis like the ids
            for (int d = BatchCollator.TokenAligned.Contains(k) ? 2 : 1; d < ta.dim(); d++) if (ta.shape[d] != tb.shape[d]) return false;
        }
        return true;
    }

    private void Run(List<Ticket> group)
    {
        if (group.Count > 1)
        {
            try
            {
                PrefillTogether(group);
                lock (_lock) { _prefills += group.Count; _forwards++; }
                return;
            }
            catch (Exception)
            {
                // fall back to one prefill per request: each gets its own result or its own error
                foreach (var t in group) t.Result = null;
            }
        }
        foreach (var t in group)
        {
            try { t.Result = Alone(t); }
            catch (Exception e) { t.Error = e; }
            lock (_lock) { _prefills++; _forwards++; }
        }
    }

    private (DecodeState, Tensor) Alone(Ticket t)
    {
        using var scope = NewDisposeScope();
        var batch = t.Noised is { } n ? BatchCollator.Collate([t.Real, n], _padId) : t.Real;
        var (s, l) = _model.Prefill(batch, t.MaxNewTokens);
        return (s, l.DetachFromDisposeScope());
    }

    private void PrefillTogether(List<Ticket> group)
    {
        using var scope = NewDisposeScope();
        var rows = new List<BackboneInputs>();
        foreach (var t in group) { rows.Add(t.Real); if (t.Noised is { } n) rows.Add(n); }
        var batch = BatchCollator.Collate(rows, _padId);
        var parts = _model.PrefillParts(batch, group.Max(t => t.MaxNewTokens), group.Select(t => t.Rows).ToList());
        for (int i = 0; i < group.Count; i++) group[i].Result = parts[i];
    }
}
