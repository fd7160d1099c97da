using SafeCoDe.Torch.Decoding.Rules;
using SafeCoDe.Torch.Decoding.Sessions;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Decoding.Scheduling;

/// <summary>
/// The picks of a round: sessions are grouped by their phase's rule chain (its signature) and row count, each group's
/// rows are stacked and the chain runs once over them, then each selector kind picks for all of its sessions with
/// one read-back, and every session applies its pick (<see cref="DecodeSession.Apply"/>). It names no method and no
/// rule: what runs is what each session's phase says.
/// </summary>
internal static class RoundPicks
{
    /// <summary>What one call picked: sessions that need another pick this round (their next phase starts on the logits they have).</summary>
    public readonly record struct Result(List<DecodeSession> Again, int Groups, int Picks);

    /// <summary>Picks once for every session in <paramref name="sessions"/> (all in a phase, none failed); failures go to <paramref name="fail"/>.</summary>
    public static Result Pick(IReadOnlyList<DecodeSession> sessions, Action<DecodeSession, Exception> fail)
    {
        var again = new List<DecodeSession>();
        int groups = 0;
        foreach (var group in sessions.GroupBy(s => (s.Phase!.Chain.Signature, s.Rows, Reads: s.Phase.Selector.At(s.Step).ReadsScores)))
        {
            groups++;
            // sessions with the same selector kind next to each other: each kind picks from a contiguous block
            var members = group.OrderBy(s => s.Phase!.Selector.At(s.Step).GroupKey, StringComparer.Ordinal).ToList();
            long[] picks;
            TokenLogprob?[] logprobs;
            try { (picks, logprobs) = PickGroup(members, group.Key.Rows, group.Key.Reads); }
            catch (Exception ex)
            {
                foreach (var s in members) fail(s, ex);
                continue;
            }
            for (int i = 0; i < members.Count; i++)
            {
                try { if (members[i].Apply(picks[i], logprobs[i])) again.Add(members[i]); }
                catch (Exception ex) { fail(members[i], ex); }
            }
        }
        return new Result(again, groups, sessions.Count);
    }

    /// <summary>
    /// The chain once over the group's stacked rows, then one selection per selector kind; for the sessions that record
    /// log-probabilities (<see cref="DecodeSession.Logprobs"/>), those of their picks (null for the others).
    /// </summary>
    private static (long[] Picks, TokenLogprob?[] Logprobs) PickGroup(List<DecodeSession> members, int rowsPerSession, bool reads)
    {
        var picks = new long[members.Count];
        var logprobs = new TokenLogprob?[members.Count];
        bool record = members.Any(s => s.Logprobs is not null);
        using var scope = NewDisposeScope();
        Tensor? scores = null;
        if (reads)
        {
            var parts = members.SelectMany(s => s.Logits).Select(l => l!).ToArray();
            bool owned = parts.Length > 1;
            var stacked = owned ? cat(parts, 0) : parts[0];
            scores = RuleChain.Apply(stacked, rowsPerSession, owned, members.Select(s => s.Phase!.Chain).ToList());
        }
        int start = 0;
        while (start < members.Count)
        {
            var key = members[start].Phase!.Selector.At(members[start].Step).GroupKey;
            int end = start;
            while (end < members.Count && members[end].Phase!.Selector.At(members[end].Step).GroupKey == key) end++;
            var calls = members.Skip(start).Take(end - start).Select(s => new SelectorCall(s.Phase!.Selector.At(s.Step), s.Step)).ToArray();
            var block = scores is null ? null : end - start == members.Count ? scores : scores.narrow(0, start, end - start);
            var out_ = new long[calls.Length];
            calls[0].Selector.Select(block, calls, out_);
            Array.Copy(out_, 0, picks, start, calls.Length);
            if (record) Record(block, members[start].Phase!.Chain.Output, calls, members.GetRange(start, end - start), out_, logprobs.AsSpan(start, calls.Length));
            start = end;
        }
        return (picks, logprobs);
    }

    /// <summary>
    /// The log-probabilities of one selector block's picks, for its sessions that record them: the log of the
    /// distribution the selector picked from (<see cref="TokenSelector.PickedFrom"/>; the log-softmax of logits, the
    /// log of probabilities), the pick's value and the best k, for all of them in one read-back. A selector that reads
    /// no scores chose with certainty (<see cref="TokenLogprob.Certain"/>).
    /// </summary>
    private static void Record(Tensor? block, ScoreKind kind, SelectorCall[] calls, List<DecodeSession> sessions, long[] picks, Span<TokenLogprob?> into)
    {
        var wanted = new List<int>();
        for (int i = 0; i < sessions.Count; i++)
            if (sessions[i].Logprobs is not null && picks[i] != TokenSelector.NoToken) wanted.Add(i);
        if (wanted.Count == 0) return;
        if (block is null)
        {
            foreach (int i in wanted) into[i] = TokenLogprob.Certain(picks[i], sessions[i].Logprobs!.Value);
            return;
        }
        using var scope = NewDisposeScope();
        var (dist, distKind) = calls[0].Selector.PickedFrom(block, kind, calls);
        var logp = distKind == ScoreKind.Probabilities ? dist.log() : dist.log_softmax(-1);
        var device = logp.device;
        var rows = wanted.Count == sessions.Count ? logp : logp.index_select(0, tensor(wanted.Select(i => (long)i).ToArray()).to(device));
        var chosen = rows.gather(1, tensor(wanted.Select(i => picks[i]).ToArray()).to(device).view(-1, 1));
        int k = (int)Math.Min(wanted.Max(i => sessions[i].Logprobs!.Value), logp.shape[^1]);
        var parts = new List<Tensor> { chosen.to(ScalarType.Float64) };
        if (k > 0)
        {
            var (values, indexes) = rows.topk(k, -1);
            parts.Add(values.to(ScalarType.Float64));
            parts.Add(indexes.to(ScalarType.Float64)); // ids below 2^53 are exact in a double: one read-back carries both
        }
        using var host = cat(parts.ToArray(), 1).cpu();
        var data = host.data<double>().ToArray();
        int width = 1 + 2 * k;
        for (int w = 0; w < wanted.Count; w++)
        {
            int i = wanted[w], own = Math.Min(sessions[i].Logprobs!.Value, k);
            var top = new List<TopLogprob>(own);
            for (int j = 0; j < own; j++)
            {
                double v = data[w * width + 1 + j];
                if (double.IsFinite(v)) top.Add(new TopLogprob((long)data[w * width + 1 + k + j], v));
            }
            into[i] = new TokenLogprob(picks[i], data[w * width], top);
        }
    }
}
