using SafeCoDe.Torch.Decoding.Sessions;
using SafeCoDe.Torch.Models;
using SafeCoDe.Torch.Models.Common;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Decoding.Scheduling;

/// <summary>
/// The forward of a round: every state of every session that was fed a token steps as a row of one batch
/// (<see cref="DecoderBackbone.StaticStepMany"/>: each request keeps its own cache, length, positions and mask,
/// attention runs per request, everything else once over all rows), written into one reused float32 logits buffer.
/// States of sessions that must step apart, families without a static step and a lone state step by themselves.
/// </summary>
internal sealed class RoundForward : IDisposable
{
    private readonly IBackbone _model;
    private readonly int _maxRows;
    /// <summary>[max rows, vocab]: a forward of n rows writes into its first n (the logits are read only within the round).</summary>
    private readonly Tensor _logitsBuffer;
    /// <summary>The rounds' reusable GEMM buffers (rounds run one at a time); cleared when no session is left.</summary>
    private readonly StaticScratch _scratch = new(1);

    public RoundForward(IBackbone model, int maxRows)
    {
        _model = model;
        _maxRows = maxRows;
        _logitsBuffer = empty([maxRows, model.VocabSize], ScalarType.Float32, model.Device).DetachFromDisposeScope();
    }

    /// <summary>One fed state of a session.</summary>
    private readonly record struct Row(DecodeSession Session, int Index, DecodeState State, Tensor Fed);

    /// <summary>Forwards every fed state of <paramref name="sessions"/>; a failure is recorded per session. Returns the forwards run.</summary>
    public int Forward(IReadOnlyList<DecodeSession> sessions, Action<DecodeSession, Exception> fail)
    {
        var rows = sessions.SelectMany(s => s.States.Select((st, i) => new Row(s, i, st, s.Fed(i)))).ToList();
        // a state with a full cache fails on its own (its step throws) instead of failing the whole batch;
        // in cache order, requests prefilled together sit next to each other and attend as one segment
        var together = DecoderBackbone.InCacheOrder(rows.Where(r => !r.Session.StepsApart && r.State.Length < r.State.Capacity).ToList(), r => r.State);
        int forwards = 0;
        if (together.Count > 1 && _model is DecoderBackbone { StepsStatically: true } d)
        {
            forwards++;
            try { Batched(d, together); }
            catch (Exception ex) { foreach (var r in together) fail(r.Session, ex); }
        }
        else together = [];
        foreach (var r in rows.Except(together))
        {
            forwards++;
            try { r.Session.SetLogits(r.Index, _model.Step(r.State, r.Fed).DetachFromDisposeScope()); }
            catch (Exception ex) { fail(r.Session, ex); }
        }
        foreach (var s in sessions) s.Forwarded();
        return forwards;
    }

    private void Batched(DecoderBackbone d, List<Row> together)
    {
        long rows = together.Sum(r => r.State.BatchSize);
        using var buffer = rows <= _maxRows ? _logitsBuffer.narrow(0, 0, rows).DetachFromDisposeScope() : null;
        var logits = d.StaticStepMany(together.Select(r => r.State).ToList(), together.Select(r => r.Fed).ToList(), logitsOut: buffer, scratch: _scratch);
        for (int i = 0; i < together.Count; i++) together[i].Session.SetLogits(together[i].Index, logits[i].DetachFromDisposeScope());
    }

    /// <summary>Frees the rounds' GEMM buffers (an idle scheduler holds none).</summary>
    public void Idle() => _scratch.Clear();

    /// <summary>Frees the logits buffer and the GEMM buffers.</summary>
    public void Dispose() { _logitsBuffer.Dispose(); _scratch.Dispose(); }
}
