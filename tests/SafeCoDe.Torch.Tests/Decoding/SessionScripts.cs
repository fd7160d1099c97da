using SafeCoDe.Torch.Decoding.Rules;
using SafeCoDe.Torch.Decoding.Sessions;
using SafeCoDe.Torch.Models;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Tests.Decoding;

/// <summary>Sessions with hand-made phases for the scheduler's own tests (no method involved).</summary>
internal static class SessionScripts
{
    /// <summary>
    /// A session over a prefilled state that feeds <paramref name="fed"/> (a token the caller chose) and then decodes
    /// greedily — the real row, <paramref name="banned"/> at −∞, argmax — for up to <paramref name="budget"/> tokens or
    /// one of <paramref name="eos"/>. Its tokens are the greedy ones (the fed token is not part of them).
    /// </summary>
    public static DecodeSession FeedThenGreedy(DecodeState state, Tensor logits, long fed, int budget, long[] banned, IReadOnlySet<long> eos, Action<long>? emit = null)
    {
        var index = tensor(banned, ScalarType.Int64).DetachFromDisposeScope();
        var greedy = new DecodePhase
        {
            Name = "greedy", Chain = new RuleChain(new RealRow(), new BanTokens(index, banned)), Selector = new Argmax(), Budget = budget, Eos = eos,
            Next = (s, end) => { index.Dispose(); return null; },
        };
        var session = new DecodeSession([state], [logits]) { Emit = emit };
        session.Begin(new DecodePhase
        {
            Name = "feed", Selector = new Forced([fed]), Budget = 1, Holds = true,
            Next = (s, end) => { s.Feed(end.Tokens[0]); return greedy; },
        });
        return session;
    }
}
