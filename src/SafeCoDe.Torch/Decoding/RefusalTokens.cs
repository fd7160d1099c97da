namespace SafeCoDe.Torch.Decoding;

/// <summary>What decoding needs from a tokenizer: text ↔ ids without special tokens added.</summary>
public interface ITokenCodec
{
    /// <summary>Ids of <paramref name="text"/>, no BOS/EOS added (HF's add_special_tokens=False).</summary>
    long[] Encode(string text);

    /// <summary>Text of <paramref name="ids"/>.</summary>
    string Decode(IReadOnlyList<long> ids, bool skipSpecialTokens = false);
}

/// <summary>The refusal token space: phrases, their token ids per tokenizer, and their union.</summary>
public sealed class RefusalTokens
{
    /// <summary>The reference code's refusal prefix list (29 entries, duplicates and the literal "&lt;/s&gt;" included), used as data.</summary>
    public static readonly IReadOnlyList<string> ReferencePhrases =
    [
        "I'm sorry", "I am sorry", "I'm an", "I'm just", "Sorry",
        "I apologize", "As an", "As an AI", "As a language model",
        "As an Assistant", "I cannot", "I do not", "It is not</s>",
        "It is not appropriate", "I'm unable to", "I am unable to",
        "I am not allowed to", "I am an AI language model", "It is not</s>",
        "I\u2019m unable to", "I am unable to", "I am not allowed to", "I am an AI language model", "Hello",
        "I", "Sorry", "cannot", "apologize", "inappropriate",
    ];

    /// <summary>The reference's preference keywords (its mixed-case "As an AI" never matches the lower-cased phrase; kept as is).</summary>
    public static readonly IReadOnlyList<string> ReferenceKeywords =
        ["sorry", "apologize", "unable", "cannot", "can't", "not allowed", "As an AI", "not able to"];

    /// <summary>The phrases, in the order given (duplicates kept).</summary>
    public IReadOnlyList<string> Phrases { get; }
    /// <summary>Token ids of each phrase (same order as <see cref="Phrases"/>; may be empty).</summary>
    public IReadOnlyList<long[]> PhraseIds { get; }
    /// <summary>Union of all phrase token ids inside the vocabulary, sorted.</summary>
    public long[] Union { get; }

    /// <summary>Encodes every phrase with <paramref name="codec"/> (no special tokens); ids outside [0, <paramref name="vocabSize"/>) are left out of <see cref="Union"/>.</summary>
    public RefusalTokens(IReadOnlyList<string> phrases, ITokenCodec codec, long vocabSize)
    {
        Phrases = phrases;
        PhraseIds = phrases.Select(codec.Encode).ToList();
        Union = PhraseIds.SelectMany(x => x).Where(id => id >= 0 && id < vocabSize).Distinct().Order().ToArray();
    }

    /// <summary>
    /// Ranks phrases by the summed probability of their ids (ids outside the vocabulary skipped, empty phrases
    /// dropped), keeps the best <paramref name="topK"/> (stable for ties, as Python's sort), then prefers phrases
    /// containing a keyword. Returns the chosen phrase index, or −1 if none could be ranked.
    /// </summary>
    public int ChoosePhrase(IReadOnlyList<float> probs, int topK, IReadOnlyList<string> keywords)
    {
        var ranked = Enumerable.Range(0, Phrases.Count)
            .Where(i => PhraseIds[i].Length > 0)
            .Select(i => (i, score: PhraseIds[i].Where(id => id >= 0 && id < probs.Count).Sum(id => (double)probs[(int)id])))
            .OrderByDescending(x => x.score) // stable
            .Take(topK)
            .ToList();
        if (ranked.Count == 0) return -1;
        foreach (var (i, _) in ranked)
        {
            var lower = Phrases[i].ToLowerInvariant();
            if (keywords.Any(k => lower.Contains(k, StringComparison.Ordinal))) return i;
        }
        return ranked[0].i;
    }
}
