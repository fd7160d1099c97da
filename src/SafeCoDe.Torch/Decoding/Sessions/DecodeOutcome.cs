namespace SafeCoDe.Torch.Decoding.Sessions;

/// <summary>What one decode produced and how.</summary>
/// <param name="Tokens">Every generated token, the guided span first.</param>
/// <param name="GuidedTokens">Tokens at the start of <paramref name="Tokens"/> that are the guided span.</param>
/// <param name="ForcedPhrase">The refusal phrase forced as the first tokens, if any.</param>
/// <param name="StoppedAtEos">The answer ended at an end-of-sequence id.</param>
/// <param name="AlphaUsed">The contrast weight used (0 without a contrast).</param>
/// <param name="Budget">New tokens allowed after the guided span.</param>
/// <param name="RolledBack">Guided tokens were rolled back as corrupt.</param>
/// <param name="GuidedMs">Milliseconds from the start of the decode to the end of guidance (0 without guidance).</param>
/// <param name="ContinuationMs">Milliseconds after guidance.</param>
/// <param name="ContinuationTokens">Tokens after the guided span.</param>
public sealed record DecodeOutcome(
    long[] Tokens, int GuidedTokens, string? ForcedPhrase, bool StoppedAtEos, double AlphaUsed, int Budget,
    bool RolledBack, double GuidedMs, double ContinuationMs, int ContinuationTokens)
{
    /// <summary>One log-probability per token of <see cref="Tokens"/> when the session recorded them (<see cref="DecodeSession.Logprobs"/>); null otherwise.</summary>
    public IReadOnlyList<TokenLogprob>? Logprobs { get; init; }

    /// <summary>The outcome of a finished session.</summary>
    internal static DecodeOutcome Of(DecodeSession s, int budget)
    {
        double total = s.ElapsedMs, guided = s.GuidedMs;
        return new DecodeOutcome(s.Tokens.ToArray(), s.GuidedTokens, s.ForcedPhrase, s.StoppedAtEos, s.ContrastWeight, budget, s.RolledBack,
            guided, total - guided, s.Tokens.Count - s.GuidedTokens)
        { Logprobs = s.Logprobs is null ? null : s.TokenLogprobs.ToArray() };
    }
}
