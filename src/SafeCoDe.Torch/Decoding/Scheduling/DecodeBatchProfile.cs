namespace SafeCoDe.Torch.Decoding.Scheduling;

/// <summary>
/// Counters of an engine's decode scheduler since it was made (subtract two readings for one span): where the
/// batched decode spends its time. Times are host wall time on the thread that ran the round.
/// </summary>
/// <param name="Rounds">Batches run (a round steps every waiting session once; more than <c>MaxRows</c> rows split it into several).</param>
/// <param name="Steps">Decode states stepped (one per session per round; two for a session whose branches step apart).</param>
/// <param name="Forwards">Model forwards the steps took (one per round for static-step families).</param>
/// <param name="Rows">Batch rows stepped (a guided request has two).</param>
/// <param name="ForwardMs">Time in the forwards.</param>
/// <param name="PickMs">Time picking tokens: the rule chains over stacked rows, the selections and read-backs, the sessions' transitions and streaming.</param>
/// <param name="Picked">Tokens picked for sessions without a guided phase right after a forward of theirs (a session's first pick, from its prefill logits, is not counted).</param>
/// <param name="ForwardCpuMs">CPU time of the running thread in the forwards (Linux; 0 elsewhere): unlike
/// <paramref name="ForwardMs"/> it leaves out the time the thread waited for a core on a loaded machine.</param>
/// <param name="PickCpuMs">CPU time of the running thread picking (Linux; 0 elsewhere).</param>
/// <param name="GuidedPicked">Picks for sessions with a guided phase: their guided tokens, the decisions of their guided phases and the continuation after them.</param>
/// <param name="WakeUps">Times a thread sleeping in the scheduler was woken by another (its decode done, or to run the rounds).</param>
/// <param name="Chains">Rule-chain runs: one per phase kind per round, however many sessions share it.</param>
public sealed record DecodeBatchProfile(long Rounds, long Steps, long Forwards, long Rows, double ForwardMs, double PickMs, long Picked,
    double ForwardCpuMs, double PickCpuMs, long GuidedPicked = 0, long WakeUps = 0, long Chains = 0)
{
    /// <summary>The counts of this reading minus an earlier one.</summary>
    public DecodeBatchProfile Since(DecodeBatchProfile earlier) => new(Rounds - earlier.Rounds, Steps - earlier.Steps, Forwards - earlier.Forwards,
        Rows - earlier.Rows, ForwardMs - earlier.ForwardMs, PickMs - earlier.PickMs, Picked - earlier.Picked,
        ForwardCpuMs - earlier.ForwardCpuMs, PickCpuMs - earlier.PickCpuMs, GuidedPicked - earlier.GuidedPicked, WakeUps - earlier.WakeUps,
        Chains - earlier.Chains);

    /// <summary>All zeros.</summary>
    public static DecodeBatchProfile Empty { get; } = new(0, 0, 0, 0, 0, 0, 0, 0, 0);

    /// <summary>What one batch of a round did.</summary>
    internal sealed class Round
    {
        public long States, Rows, Forwards, Picked, GuidedPicked, Chains;
    }

    /// <summary>The running totals (the scheduler adds under its lock; wake-ups are counted with Interlocked).</summary>
    internal sealed class Counter
    {
        public long Rounds, Steps, Forwards, Rows, Picked, GuidedPicked, WakeUps, Chains;
        public double ForwardMs, PickMs, ForwardCpuMs, PickCpuMs;

        public void Add(Round r, double forwardMs, double pickMs, double forwardCpuMs, double pickCpuMs)
        {
            Rounds++; Steps += r.States; Forwards += r.Forwards; Rows += r.Rows; Picked += r.Picked; GuidedPicked += r.GuidedPicked; Chains += r.Chains;
            ForwardMs += forwardMs; PickMs += pickMs; ForwardCpuMs += forwardCpuMs; PickCpuMs += pickCpuMs;
        }

        public DecodeBatchProfile Read() => new(Rounds, Steps, Forwards, Rows, ForwardMs, PickMs, Picked, ForwardCpuMs, PickCpuMs, GuidedPicked,
            Interlocked.Read(ref WakeUps), Chains);
    }
}
