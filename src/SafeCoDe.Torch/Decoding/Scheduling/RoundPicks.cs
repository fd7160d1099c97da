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
            try { picks = PickGroup(members, group.Key.Rows, group.Key.Reads); }
            catch (Exception ex)
            {
                foreach (var s in members) fail(s, ex);
                continue;
            }
            for (int i = 0; i < members.Count; i++)
            {
                try { if (members[i].Apply(picks[i])) again.Add(members[i]); }
                catch (Exception ex) { fail(members[i], ex); }
            }
        }
        return new Result(again, groups, sessions.Count);
    }

    /// <summary>The chain once over the group's stacked rows, then one selection per selector kind.</summary>
    private static long[] PickGroup(List<DecodeSession> members, int rowsPerSession, bool reads)
    {
        var picks = new long[members.Count];
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
            start = end;
        }
        return picks;
    }
}
