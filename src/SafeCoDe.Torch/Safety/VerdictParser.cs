using System.Text.RegularExpressions;

namespace SafeCoDe.Torch.Safety;

/// <summary>What a judge's reply says, before the unknown-verdict policy is applied.</summary>
public enum VerdictReading
{
    /// <summary>A clear "safe".</summary>
    Safe,
    /// <summary>A clear "unsafe", or any sign of it ("not safe", "un-safe", "probably unsafe", "safe … unsafe").</summary>
    Unsafe,
    /// <summary>No verdict word, a hedged "safe" ("probably safe", "safe, but…"), or a double negation ("not unsafe").</summary>
    Unknown,
}

/// <summary>What a reply that is not a clear verdict becomes.</summary>
[System.Text.Json.Serialization.JsonConverter(typeof(System.Text.Json.Serialization.JsonStringEnumConverter<UnknownVerdictPolicy>))]
public enum UnknownVerdictPolicy
{
    /// <summary>Treated as unsafe: the answer is steered towards a refusal (the default; fails closed).</summary>
    Unsafe,
    /// <summary>Treated as safe (what the reference code's local judge does).</summary>
    Safe,
    /// <summary>The request fails with a <see cref="JudgeException"/>.</summary>
    Error,
}

/// <summary>
/// Reads a judge's free-text reply. Caution wins: any mention that reads as unsafe ("unsafe", "un-safe", "not safe",
/// "isn't safe", "NOT SAFE") makes the reply unsafe; "safe" counts only when it is neither negated nor hedged; anything
/// else — no verdict word, "not unsafe", "probably safe", "safe, but…", "I can't tell" — is unknown.
/// </summary>
public static class VerdictParser
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(1);
    private static readonly Regex Words = new(@"[\p{L}\p{N}']+", RegexOptions.CultureInvariant, Timeout);
    private static readonly Regex UnHyphen = new(@"\bun[\s\-_‐‑–—]+safe", RegexOptions.CultureInvariant | RegexOptions.IgnoreCase, Timeout);
    private static readonly HashSet<string> Negators = new(StringComparer.Ordinal)
        { "not", "no", "never", "neither", "nor", "hardly", "barely", "isn't", "isnt", "aren't", "wasn't", "won't", "wouldn't", "cannot", "can't", "cant", "nothing", "without", "non", "far" };
    private static readonly HashSet<string> Hedges = new(StringComparer.Ordinal)
        { "maybe", "perhaps", "possibly", "probably", "likely", "unlikely", "might", "may", "could", "unsure", "uncertain", "unclear",
          "depends", "depending", "but", "however", "although", "though", "except", "unless", "if", "partially", "partly", "somewhat",
          "mostly", "borderline", "ambiguous", "either", "or", "tell", "unknown", "seems", "seem", "appears", "relatively", "fairly" };

    /// <summary>Longest reply that is read (a verdict is one word; longer text is cut before reading).</summary>
    public const int MaxReplyChars = 4000;

    /// <summary>Reads a reply (null or blank: unknown).</summary>
    public static VerdictReading Read(string? reply)
    {
        if (string.IsNullOrWhiteSpace(reply)) return VerdictReading.Unknown;
        if (reply.Length > MaxReplyChars) reply = reply[..MaxReplyChars];
        var text = UnHyphen.Replace(reply.ToLowerInvariant().Replace('’', '\''), "unsafe");
        var words = Words.Matches(text).Select(m => m.Value).ToList();
        bool sawSafe = false, sawUnknown = false, hedged = false;
        for (int i = 0; i < words.Count; i++)
        {
            var w = words[i];
            if (Hedges.Contains(w)) hedged = true;
            bool isSafe = w is "safe" or "safely", isUnsafe = w is "unsafe" or "dangerous" or "harmful";
            if (!isSafe && !isUnsafe) continue;
            bool negated = false;
            for (int k = Math.Max(0, i - 3); k < i; k++)
                if (Negators.Contains(words[k]) || words[k].EndsWith("n't", StringComparison.Ordinal)) negated = true;
            if (isUnsafe && !negated) return VerdictReading.Unsafe;
            if (isSafe && negated) return VerdictReading.Unsafe;
            if (isUnsafe && negated) sawUnknown = true; // "not unsafe": a double negation is not a clear verdict
            if (isSafe && !negated && w == "safe") sawSafe = true;
        }
        if (sawSafe && !sawUnknown && !hedged) return VerdictReading.Safe;
        return VerdictReading.Unknown;
    }

    /// <summary>
    /// The verdict under the default policy (unknown → unsafe) and whether the reply was a clear verdict.
    /// </summary>
    public static (Verdict verdict, bool parsed) Parse(string? reply) => Read(reply) switch
    {
        VerdictReading.Safe => (Verdict.Safe, true),
        VerdictReading.Unsafe => (Verdict.Unsafe, true),
        _ => (Verdict.Unsafe, false),
    };
}
