using System.Text.Json.Serialization;

namespace SafeCoDe.Torch.Decoding.Sessions;

/// <summary>
/// One answer token's log-probability under the distribution it was picked from — the method's final distribution at
/// that step, after its whole rule chain and its selector's own rules — and that distribution's most likely tokens.
/// </summary>
/// <param name="Id">The token.</param>
/// <param name="Logprob">
/// Natural log of its probability (−∞ when the distribution gave it none); null when no distribution was recorded for
/// it (a token a method's transition appended that no pick of the session made).
/// </param>
/// <param name="Top">The most likely tokens of that distribution, most likely first, only those with non-zero probability.</param>
public sealed record TokenLogprob(
    [property: JsonPropertyName("id")] long Id,
    [property: JsonPropertyName("logprob")] double? Logprob,
    [property: JsonPropertyName("top")] IReadOnlyList<TopLogprob> Top)
{
    /// <summary>The token's text, filled in by whoever decodes ids (null until then).</summary>
    [JsonPropertyName("text")] public string? Text { get; init; }

    /// <summary>A token no recorded distribution picked.</summary>
    public static TokenLogprob Unrecorded(long id) => new(id, null, []);

    /// <summary>
    /// A token a selector chose without reading scores (a forced phrase): the method's distribution at that step is all
    /// on that token, so its log-probability is 0 and it is the only likely token.
    /// </summary>
    public static TokenLogprob Certain(long id, int top) => new(id, 0, top > 0 ? [new TopLogprob(id, 0)] : []);
}

/// <summary>One of the most likely tokens at a step and its log-probability.</summary>
/// <param name="Id">The token.</param>
/// <param name="Logprob">Natural log of its probability.</param>
public sealed record TopLogprob([property: JsonPropertyName("id")] long Id, [property: JsonPropertyName("logprob")] double Logprob)
{
    /// <summary>The token's text, filled in by whoever decodes ids (null until then).</summary>
    [JsonPropertyName("text")] public string? Text { get; init; }
}
