using SafeCoDe.Torch.Decoding.Rules;
using SafeCoDe.Torch.Decoding.Scheduling;
using SafeCoDe.Torch.Models;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Decoding.Sessions;

/// <summary>Opens sessions: the prefill of a request's branches, as one batch (the engine's way) or as separate passes (what VCD's and SafeCoDe's reference code do).</summary>
public static class DecodeSessions
{
    /// <summary>
    /// Prefills the real branch and, when given, the noised one as two rows of one batch, with room for
    /// <paramref name="capacity"/> new tokens; the session owns the state and logits.
    /// </summary>
    public static DecodeSession Open(IBackbone model, BackboneInputs real, BackboneInputs? noised, int capacity, long padId)
    {
        using var scope = NewDisposeScope();
        var batch = noised is null ? real : BatchCollator.Collate([real, noised], padId);
        var (state, logits) = model.Prefill(batch, capacity);
        return new DecodeSession([state], [logits.DetachFromDisposeScope()]);
    }

    /// <summary>The real and the noised branch as two batch-1 passes with their own caches, stepped one by one (for comparisons).</summary>
    public static DecodeSession OpenSeparate(IBackbone model, BackboneInputs real, BackboneInputs noised, int capacity)
    {
        var (r, lr) = model.Prefill(real, capacity);
        var (n, ln) = model.Prefill(noised, capacity);
        return new DecodeSession([r, n], [lr.DetachFromDisposeScope(), ln.DetachFromDisposeScope()]) { StepsApart = true };
    }

    /// <summary>A session over a state already prefilled (by the engine's prefill batcher); it owns <paramref name="state"/> and <paramref name="logits"/>.</summary>
    internal static DecodeSession FromPrefill(DecodeState state, Tensor logits) => new([state], [logits]);

    /// <summary>
    /// Plain greedy decoding of the first row of <paramref name="inputs"/> for exactly <paramref name="tokens"/> tokens
    /// (<paramref name="banned"/> never picked, e.g. the end-of-sequence ids to force the length), stepped alone: what
    /// <c>verify</c> compares with HF's greedy tokens and the benches time.
    /// </summary>
    public static long[] Greedy(IBackbone model, BackboneInputs inputs, int tokens, IReadOnlyList<long> banned)
    {
        using var index = LogitsOps.Index(banned.ToArray(), model.Device);
        using var session = Open(model, inputs, null, tokens, 0);
        session.Begin(new DecodePhase
        {
            Name = "greedy", Chain = new RuleChain(new RealRow(), new BanTokens(index, banned)), Selector = new Argmax(), Budget = tokens,
        });
        using var scheduler = new DecodeScheduler(model, (int)Math.Max(1, inputs.BatchSize));
        scheduler.Decode(session);
        return session.Tokens.ToArray();
    }
}
