namespace SafeCoDe.Torch.Decoding.Batching;

/// <summary>
/// Counters of an engine's decode batcher since it was made (subtract two readings for one span): where the
/// batched decode spends its time. Times are host wall time on the thread that ran the round.
/// </summary>
/// <param name="Rounds">Rounds run (a round steps every waiting request once).</param>
/// <param name="Steps">Request steps run (one per request per round).</param>
/// <param name="Forwards">Model forwards the steps took (one per round for static-step families).</param>
/// <param name="Rows">Batch rows stepped (a guided request has two).</param>
/// <param name="ForwardMs">Time in the forwards.</param>
/// <param name="PickMs">Time picking tokens: the guided rows' chain and pick, the greedy continuations' ban, argmax, read-back, emitting.</param>
/// <param name="Picked">Tokens picked by the batcher for greedy continuations handed over with <c>ContinueGreedy</c>.</param>
/// <param name="ForwardCpuMs">CPU time of the running thread in the forwards (Linux; 0 elsewhere): unlike
/// <paramref name="ForwardMs"/> it leaves out the time the thread waited for a core on a loaded machine.</param>
/// <param name="PickCpuMs">CPU time of the running thread picking the continuations' tokens (Linux; 0 elsewhere).</param>
/// <param name="GuidedPicked">Tokens picked by the batcher for guided phases handed over whole (<c>Guide</c>): their guided
/// tokens and the greedy continuation after them.</param>
/// <param name="WakeUps">Times a thread sleeping in the batcher was woken by another (its step or decode done, or to run a round).</param>
public sealed record DecodeBatchProfile(long Rounds, long Steps, long Forwards, long Rows, double ForwardMs, double PickMs, long Picked,
    double ForwardCpuMs, double PickCpuMs, long GuidedPicked = 0, long WakeUps = 0)
{
    /// <summary>The counts of this reading minus an earlier one.</summary>
    public DecodeBatchProfile Since(DecodeBatchProfile earlier) => new(Rounds - earlier.Rounds, Steps - earlier.Steps, Forwards - earlier.Forwards,
        Rows - earlier.Rows, ForwardMs - earlier.ForwardMs, PickMs - earlier.PickMs, Picked - earlier.Picked,
        ForwardCpuMs - earlier.ForwardCpuMs, PickCpuMs - earlier.PickCpuMs, GuidedPicked - earlier.GuidedPicked, WakeUps - earlier.WakeUps);

    /// <summary>All zeros (no batcher).</summary>
    public static DecodeBatchProfile Empty { get; } = new(0, 0, 0, 0, 0, 0, 0, 0, 0);
}
