namespace SafeCoDe.Torch.Processing.Tokenizers;

/// <summary>
/// Turns generated ids into text as they arrive. <see cref="Push(int)"/> returns only text that is complete: a character
/// split over several tokens (byte-level BPE, SentencePiece byte fallback: emoji, CJK) is held back until its last
/// byte arrives, so no chunk ever carries a broken UTF-8 sequence (U+FFFD) or half a surrogate pair.
/// Works with any <see cref="ITokenizer"/>: it decodes a short window of recent ids (the ids since the last emitted
/// chunk plus the one before, so decoders that look at neighbours, such as the leading-space strip of SentencePiece,
/// see the same context as a full decode) and emits what the window added. Not thread-safe.
/// </summary>
public sealed class StreamingDetokenizer
{
    private readonly ITokenizer _tokenizer;
    private readonly bool _skipSpecial;
    private readonly List<int> _ids = [];   // the ids that are decoded (without skipped special tokens)
    private readonly List<int> _all = [];
    private int _prefixOffset, _readOffset;
    private readonly System.Text.StringBuilder _text = new();

    /// <summary>A detokenizer for one generated sequence; special tokens are left out when <paramref name="skipSpecialTokens"/>.</summary>
    public StreamingDetokenizer(ITokenizer tokenizer, bool skipSpecialTokens = true)
    {
        _tokenizer = tokenizer;
        _skipSpecial = skipSpecialTokens;
    }

    /// <summary>Everything emitted so far.</summary>
    public string Text => _text.ToString();

    /// <summary>All ids pushed so far.</summary>
    public IReadOnlyList<int> Ids => _all;

    /// <summary>Adds one id; returns the newly completed text (often empty).</summary>
    public string Push(int id)
    {
        _all.Add(id);
        // a skipped special token must not sit at the start of a decode window: decoders that strip the first token's
        // leading space (Llama's Strip, Metaspace) would then strip the next token's space
        if (_skipSpecial && _tokenizer.IsSpecial(id)) return "";
        _ids.Add(id);
        var prefix = DecodeRange(_prefixOffset, _readOffset);
        var full = DecodeRange(_prefixOffset, _ids.Count);
        if (full.Length <= prefix.Length || EndsIncomplete(full) || !full.StartsWith(prefix, StringComparison.Ordinal)) return "";
        var delta = full[prefix.Length..];
        _prefixOffset = _readOffset;
        _readOffset = _ids.Count;
        _text.Append(delta);
        return delta;
    }

    /// <summary>Adds several ids; returns the newly completed text.</summary>
    public string Push(IEnumerable<int> ids)
    {
        var sb = new System.Text.StringBuilder();
        foreach (var id in ids) sb.Append(Push(id));
        return sb.ToString();
    }

    /// <summary>Ends the stream: returns what is still held back (which may now contain U+FFFD for bytes that never completed).</summary>
    public string Flush()
    {
        var prefix = DecodeRange(_prefixOffset, _readOffset);
        var full = DecodeRange(_prefixOffset, _ids.Count);
        _prefixOffset = _readOffset = _ids.Count;
        if (full.Length <= prefix.Length || !full.StartsWith(prefix, StringComparison.Ordinal)) return "";
        var delta = full[prefix.Length..];
        _text.Append(delta);
        return delta;
    }

    private string DecodeRange(int from, int to)
        => from >= to ? "" : _tokenizer.Decode(_ids.GetRange(from, to - from), _skipSpecial);

    private static bool EndsIncomplete(string s)
        => s.Length > 0 && (s[^1] == '\uFFFD' || char.IsHighSurrogate(s[^1]));
}
