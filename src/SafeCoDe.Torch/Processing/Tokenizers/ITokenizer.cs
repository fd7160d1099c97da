namespace SafeCoDe.Torch.Processing.Tokenizers;

/// <summary>A token that is matched in the input text before the model runs (special tokens, <c>&lt;image&gt;</c>, ...).</summary>
/// <param name="Content">The text of the token.</param>
/// <param name="Id">Its id.</param>
/// <param name="Special">Special tokens are dropped by <see cref="ITokenizer.Decode"/> with <c>skipSpecialTokens</c>.</param>
/// <param name="SingleWord">Only matched when not inside a word.</param>
/// <param name="LStrip">Swallows the whitespace on its left.</param>
/// <param name="RStrip">Swallows the whitespace on its right.</param>
/// <param name="Normalized">Matched in the normalised text (true) or in the raw input (false).</param>
public sealed record AddedToken(string Content, int Id, bool Special, bool SingleWord = false, bool LStrip = false, bool RStrip = false, bool Normalized = false);

/// <summary>
/// A text tokenizer loaded from a Hugging Face checkpoint folder (see <see cref="TokenizerLoader.Load"/>).
/// Semantics follow Hugging Face: text of an added/special token in the input maps to its id; BOS/EOS and other template
/// tokens are added only with <c>addSpecialTokens</c>. Implementations are immutable and thread-safe.
/// </summary>
public interface ITokenizer
{
    /// <summary>Which implementation and file this came from, e.g. "tokenizer.json (BPE)".</summary>
    string Description { get; }

    /// <summary>Number of ids the tokenizer can produce: one more than the largest id of the vocabulary and added tokens.</summary>
    int VocabSize { get; }

    /// <summary>Beginning-of-sequence token, or null when the tokenizer has none.</summary>
    AddedToken? Bos { get; }
    /// <summary>End-of-sequence token, or null.</summary>
    AddedToken? Eos { get; }
    /// <summary>Padding token, or null.</summary>
    AddedToken? Pad { get; }
    /// <summary>Unknown-token, or null.</summary>
    AddedToken? Unk { get; }

    /// <summary>Tokens matched in the input before the model runs, in id order.</summary>
    IReadOnlyList<AddedToken> AddedTokens { get; }

    /// <summary>The id of a token (added token or vocabulary entry, e.g. "&lt;image&gt;", "&lt;|image_pad|&gt;"), or null.</summary>
    int? TokenToId(string token);

    /// <summary>The vocabulary string of an id (byte-level or "▁" form, not decoded), or null when out of range.</summary>
    string? IdToToken(int id);

    /// <summary>True for ids of special tokens (those <see cref="Decode"/> drops with skipSpecialTokens).</summary>
    bool IsSpecial(int id);

    /// <summary>Encodes text to ids. With <paramref name="addSpecialTokens"/> the post-processor's template (BOS, ...) is applied.</summary>
    int[] Encode(string text, bool addSpecialTokens);

    /// <summary>
    /// Encodes text in which the character ranges <paramref name="plainText"/> are user data: special tokens are not
    /// matched inside them (their text is encoded as ordinary characters), so a user cannot write control tokens
    /// such as <c>&lt;/s&gt;</c> or <c>&lt;|im_start|&gt;</c>. Outside the ranges this is <see cref="Encode(string, bool)"/>;
    /// text without special-token strings encodes identically either way.
    /// </summary>
    int[] Encode(string text, bool addSpecialTokens, IReadOnlyList<Range> plainText);

    /// <summary>Decodes ids to text; ids outside the vocabulary are skipped (as Hugging Face does).</summary>
    string Decode(IReadOnlyList<int> ids, bool skipSpecialTokens);
}

/// <summary>Convenience members for every <see cref="ITokenizer"/>.</summary>
public static class TokenizerExtensions
{
    /// <summary>A streaming detokenizer for generated ids (see <see cref="StreamingDetokenizer"/>).</summary>
    public static StreamingDetokenizer CreateStreamingDetokenizer(this ITokenizer tokenizer, bool skipSpecialTokens = true)
        => new(tokenizer, skipSpecialTokens);

    /// <summary>The id of <paramref name="token"/>; throws when the tokenizer does not know it.</summary>
    public static int RequireTokenId(this ITokenizer tokenizer, string token)
        => tokenizer.TokenToId(token) ?? throw new KeyNotFoundException($"the tokenizer has no token '{token}'");
}
