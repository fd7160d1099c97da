using SafeCoDe.Torch.Decoding.Rules;
using SafeCoDe.Torch.Decoding.Sessions;
using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Safety;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Decoding.Methods.SafeCoDeDecoding;

/// <summary>
/// SafeCoDe's phases. Guided: the contrast of the real and noised rows (α, halved on safe verdicts in the faithful
/// preset), the placeholder ban, softmax, refusal suppression (safe) or boost (unsafe), a greedy first token with the
/// quote skip, then greedy or tempered draws, the early exit — or, on an unsafe verdict with the forced-phrase
/// strategy, a ranking of the refusal phrases on the contrast and the best one forced. At the end of guidance the
/// noised row is dropped, corrupt guided tokens are rolled back (keeping a clean first one), and the real row
/// continues with the verdict's sampling settings. Host synchronisation: one per guided step, one per continuation
/// token (shared with every other session of the round).
/// </summary>
public static class SafeCoDePlan
{
    /// <summary>The first phase of a SafeCoDe decode of <paramref name="session"/> ([real, noised] prefilled).</summary>
    public static DecodePhase Start(DecodeContext context, DecodeSession session, SafeCoDeOptions o)
    {
        bool unsafePath = context.Verdict == Verdict.Unsafe && (!o.UnsafeNeedsTwoSteps || o.MaxSteps >= 2);
        double alpha = !unsafePath && o.HalveAlphaOnSafe ? o.Alpha * 0.5 : o.Alpha;
        session.ContrastWeight = alpha;
        var g = new Guidance(context, session, o, alpha, unsafePath);
        int maxSteps = Math.Min(o.MaxSteps, context.Cap);
        return unsafePath && o.Unsafe == UnsafeStrategy.ForcePhrase && maxSteps > 0 ? g.RankPhrases(maxSteps) : g.Guide(maxSteps);
    }

    /// <summary>One request's guidance: its rules' settings and what the end of guidance returns to.</summary>
    private sealed class Guidance
    {
        private readonly DecodeContext _c;
        private readonly DecodeSession _s;
        private readonly SafeCoDeOptions _o;
        private readonly double _alpha;
        private readonly bool _unsafe;
        private readonly RefusalTokens _refusal;
        private readonly Tensor _refusalIds;
        private readonly long _lengthBefore;
        private readonly Tensor _firstLogits;

        public Guidance(DecodeContext c, DecodeSession s, SafeCoDeOptions o, double alpha, bool unsafePath)
        {
            (_c, _s, _o, _alpha, _unsafe) = (c, s, o, alpha, unsafePath);
            _refusal = c.Refusal(o.RefusalPhrases);
            // index tensors built once per request (a per-step upload would be a host sync on CUDA)
            _refusalIds = c.Own(LogitsOps.Index(_refusal.Union, c.Device)) ?? c.Own(empty(0, ScalarType.Int64, c.Device).DetachFromDisposeScope());
            _lengthBefore = s.Length;
            _firstLogits = c.Own(s.RealLogitsCopy());
        }

        /// <summary>The contrast's distribution over the vocabulary (placeholders banned): what the guided rules start from.</summary>
        private RuleChain Contrast() => new(new SafeCoDeContrast(_alpha), _c.Ban(), new Softmax());

        /// <summary>Unsafe, reference form: the contrast ranks the refusal phrases; the best one is forced, or the boost guides when none ranks.</summary>
        public DecodePhase RankPhrases(int maxSteps)
        {
            int chosen = -1;
            return new DecodePhase
            {
                Name = "rank-refusal-phrases", Chain = Contrast(), Budget = 1, Guided = true, Holds = true,
                Selector = new RankPhrases(_refusal, _o.TopK, _o.PreferredKeywords, pick => chosen = pick),
                Next = (s, _) =>
                {
                    if (chosen < 0) return Guide(maxSteps);
                    var ids = _refusal.PhraseIds[chosen].Take(maxSteps).ToArray();
                    s.ForcedPhrase = _refusal.Phrases[chosen];
                    s.DropNoised(); // the contrast chose the phrase; nothing more to contrast
                    return new DecodePhase { Name = "forced-phrase", Selector = new Forced(ids), Budget = ids.Length, Guided = true, Holds = true, Next = EndGuidance };
                },
            };
        }

        /// <summary>Guided steps: contrast, refusal suppression (safe) or boost (unsafe), greedy first token with the quote skip, early exit.</summary>
        public DecodePhase Guide(int maxSteps)
        {
            var scale = _c.Own(_unsafe ? RefusalScale.Boost(_refusalIds, _o.LambdaBoost, _refusal) : RefusalScale.Suppress(_refusalIds, _o.LambdaSupp, _refusal));
            var greedy = new TopTwo(_c.Codec, quoteSkip: !_unsafe && _o.QuoteSkip);
            return new DecodePhase
            {
                Name = "guided", Chain = Contrast().Then(scale), Budget = maxSteps, Guided = true, Holds = true, Next = EndGuidance,
                Selector = new FirstThen(greedy, _o.Greedy ? greedy
                    : new After(new TemperedDistribution(_unsafe ? _o.GuidedTemperatureUnsafe : _o.GuidedTemperatureSafe), new Multinomial(_s.Generator))),
                StopAfter = _o.EarlyExit ? (tokens, step) => step >= 1 && NaturalStart(_c.Codec.Decode(tokens)) : null,
            };
        }

        /// <summary>
        /// The end of guidance: the noised row is dropped, corrupt guided tokens rolled back (the cache back to the
        /// prompt, keeping a clean first token), the guided tokens streamed, the last one fed to the real row, and the
        /// continuation begins.
        /// </summary>
        private DecodePhase? EndGuidance(DecodeSession s, PhaseEnd end)
        {
            s.DropNoised();
            var tokens = end.Tokens.ToList();
            bool rolledBack = _o.CorruptionRollback && tokens.Count > 0 && Corrupt(_c.Family, tokens, _c.Codec);
            if (rolledBack)
            {
                int keep = _c.Codec.Decode([tokens[0]], skipSpecialTokens: true).Contains('|') ? 0 : 1;
                s.RollBack(_lengthBefore, _firstLogits);
                tokens.RemoveRange(keep, tokens.Count - keep);
            }
            s.RolledBack = rolledBack;
            s.GuidedTokens = tokens.Count;
            s.Append(tokens);
            if (tokens.Count > 0) s.Feed(tokens[^1]);
            bool unsafeSampling = _c.Verdict == Verdict.Unsafe;
            double temperature = _o.Greedy ? 0 : unsafeSampling ? _o.TemperatureUnsafe : _o.TemperatureSafe;
            return Continuation.Phase(_c, s, Math.Min(_c.Budget, _c.Cap - tokens.Count), temperature, unsafeSampling ? _o.TopPUnsafe : _o.TopPSafe, _o.TopKSampling);
        }
    }

    /// <summary>The reference's early exit: ≥ 2 words and a first word of ≥ 2 characters starting with an upper-case letter.</summary>
    public static bool NaturalStart(string prefix)
    {
        var words = prefix.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        return words.Length >= 2 && words[0].Length >= 2 && char.IsUpper(words[0][0]);
    }

    /// <summary>
    /// The reference's "corruption" test: for Qwen a guided token decoding exactly to "|", "$" or "MS"; for the other
    /// families the first guided token's text (special tokens skipped) containing one of them (its batch_decode
    /// over a flat id list only ever sees the first token).
    /// </summary>
    public static bool Corrupt(string family, IReadOnlyList<long> guided, ITokenCodec codec)
    {
        if (ModelFamilies.TryGet(family)?.RollbackChecksEveryToken == true)
            return guided.Any(t => codec.Decode([t]) is "|" or "$" or "MS");
        var first = codec.Decode([guided[0]], skipSpecialTokens: true).Trim();
        return first.Contains('|') || first.Contains('$') || first.Contains("MS");
    }
}
