using System.Text.Json.Nodes;

namespace SafeCoDe.Torch.Processing.Tokenizers;

/// <summary>
/// A Hugging Face <c>tokenizer.json</c> pipeline in managed code: added tokens → normalizer → pre-tokenizer → model
/// (BPE with byte fallback / byte-level, WordPiece) → post-processor, and decoders for the way back.
/// Why our own code and not a library: Microsoft.ML.Tokenizers 2.0.1 cannot read tokenizer.json at all, and
/// Tokenizers.DotNet 1.4.1 (HF's Rust code behind a native library) exposes only Encode-with-special-tokens and a
/// Decode that always drops special tokens, with no vocabulary or special-token access, and needs a native binary per
/// platform. This implementation follows the Rust semantics step by step and is checked id-for-id against HF-semantics
/// JS oracles on a 2,258-string corpus (tests/.../Tokenizers) and, by tools/testdata/HfRustCrossCheck, against HF's
/// Rust tokenizers themselves. Unsupported components (Unigram/WordLevel models, Precompiled normalizer, CTC decoder,
/// BPE dropout) fail loudly at load time. Offsets, pairs, truncation and padding are not implemented.
/// </summary>
public sealed class HfTokenizer : ITokenizer
{
    private readonly TokenModel _model;
    private readonly TextNormalizer? _normalizer;
    private readonly PreTokenizer? _preTokenizer;
    private readonly PostProcessor? _postProcessor;
    private readonly TokenDecoder? _decoder;
    private readonly AddedVocabulary _added;
    private readonly string[] _idToToken;
    private readonly bool _cleanUpSpaces;

    /// <inheritdoc/>
    public string Description { get; }
    /// <inheritdoc/>
    public int VocabSize => _idToToken.Length;
    /// <inheritdoc/>
    public AddedToken? Bos { get; }
    /// <inheritdoc/>
    public AddedToken? Eos { get; }
    /// <inheritdoc/>
    public AddedToken? Pad { get; }
    /// <inheritdoc/>
    public AddedToken? Unk { get; }
    /// <inheritdoc/>
    public IReadOnlyList<AddedToken> AddedTokens => _added.Tokens;

    /// <summary>Builds a tokenizer from the parsed tokenizer.json and the optional tokenizer_config.json.</summary>
    public HfTokenizer(JsonNode tokenizerJson, TokenizerConfig? config = null, string description = "tokenizer.json")
    {
        config ??= TokenizerConfig.Empty;
        _model = TokenModel.FromJson(tokenizerJson["model"] ?? throw new FormatException("tokenizer.json has no model"));
        _normalizer = TextNormalizer.FromJson(tokenizerJson["normalizer"]);
        _preTokenizer = PreTokenizer.FromJson(tokenizerJson["pre_tokenizer"]);
        _decoder = TokenDecoder.FromJson(tokenizerJson["decoder"]);

        var added = new List<AddedToken>();
        if (tokenizerJson["added_tokens"] is JsonArray arr)
            foreach (var t in arr)
                added.Add(new AddedToken(Json.Str(t ?? throw new FormatException("added_tokens holds null"), "content"),
                    TokenizerLoader.CheckId(t["id"] is JsonValue iv && iv.TryGetValue<int>(out var aid) ? aid : throw new FormatException("an added token has no integer id"), "added_tokens"), Json.Bool(t, "special", false),
                    Json.Bool(t, "single_word", false), Json.Bool(t, "lstrip", false), Json.Bool(t, "rstrip", false), Json.Bool(t, "normalized", true)));
        // tokens that only tokenizer_config.json / added_tokens.json know about (rare when tokenizer.json exists)
        foreach (var t in config.AddedTokens)
            if (!added.Any(a => a.Id == t.Id || a.Content == t.Content)) added.Add(t);
        _added = new AddedVocabulary(added);

        int max = -1;
        foreach (var id in _model.Vocab.Values) max = Math.Max(max, TokenizerLoader.CheckId(id, "model.vocab"));
        foreach (var t in added) max = Math.Max(max, t.Id);
        _idToToken = new string[max + 1];
        foreach (var (tok, id) in _model.Vocab) _idToToken[id] = tok;
        foreach (var t in added) _idToToken[t.Id] = t.Content;

        _postProcessor = PostProcessor.FromJson(tokenizerJson["post_processor"], name => TokenToId(name) ?? throw new FormatException($"post_processor token '{name}' is unknown"));
        _cleanUpSpaces = config.CleanUpTokenizationSpaces ?? false;

        Bos = Resolve(config.BosToken);
        Eos = Resolve(config.EosToken);
        Pad = Resolve(config.PadToken);
        Unk = Resolve(config.UnkToken ?? (tokenizerJson["model"]?["unk_token"] is JsonValue u && u.TryGetValue<string>(out var us) ? us : null));
        Description = $"{description} ({_model.TypeName}, {VocabSize} ids, {added.Count} added tokens)";
    }

    /// <summary>Loads tokenizer.json (and tokenizer_config.json etc. beside it).</summary>
    public static HfTokenizer FromFile(string tokenizerJsonPath, TokenizerConfig? config = null)
    {
        var node = JsonNode.Parse(TokenizerLoader.ReadText(tokenizerJsonPath), documentOptions: new System.Text.Json.JsonDocumentOptions { MaxDepth = 256 })
            ?? throw new FormatException($"{tokenizerJsonPath} is empty");
        return new HfTokenizer(node, config, Path.GetFileName(tokenizerJsonPath));
    }

    private AddedToken? Resolve(string? content)
    {
        if (content is null) return null;
        var a = _added.Tokens.FirstOrDefault(t => t.Content == content);
        if (a is not null) return a;
        return _model.Vocab.TryGetValue(content, out var id) ? new AddedToken(content, id, true) : null;
    }

    /// <inheritdoc/>
    public int? TokenToId(string token)
    {
        if (_added.ByContent.TryGetValue(token, out var a)) return a.Id;
        return _model.Vocab.TryGetValue(token, out var id) ? id : null;
    }

    /// <inheritdoc/>
    public string? IdToToken(int id) => id >= 0 && id < _idToToken.Length ? _idToToken[id] : null;

    /// <inheritdoc/>
    public bool IsSpecial(int id) => _added.ById.TryGetValue(id, out var a) && a.Special;

    /// <inheritdoc/>
    public int[] Encode(string text, bool addSpecialTokens) => Encode(text, addSpecialTokens, []);

    /// <inheritdoc/>
    public int[] Encode(string text, bool addSpecialTokens, IReadOnlyList<Range> plainText)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>();
        var plain = PlainSpans.Of(text.Length, plainText);
        // 1. tokens matched on the raw text; 2. normalise the rest; 3. tokens matched on normalised text; 4. model.
        foreach (var (seg, tok, atStart, offset) in _added.SplitAt(text, normalized: false, startsAtZero: true, plain))
        {
            if (tok is not null) { ids.Add(tok.Id); continue; }
            var norm = _normalizer?.Normalize(seg) ?? seg;
            // normalising moves offsets: a segment that holds user text matches no special token after normalising
            var plain2 = plain.Overlaps(offset, seg.Length) ? PlainSpans.All : PlainSpans.None;
            foreach (var (seg2, tok2, atStart2, _) in _added.SplitAt(norm, normalized: true, startsAtZero: atStart, plain2))
            {
                if (tok2 is not null) { ids.Add(tok2.Id); continue; }
                var pieces = new List<Piece> { new(seg2, atStart2) };
                _preTokenizer?.Apply(pieces);
                foreach (var p in pieces) _model.Tokenize(p.Text, ids);
            }
        }
        var result = ids.ToArray();
        return addSpecialTokens && _postProcessor is not null ? _postProcessor.Apply(result) : result;
    }

    /// <inheritdoc/>
    public string Decode(IReadOnlyList<int> ids, bool skipSpecialTokens)
    {
        var tokens = new List<string>(ids.Count);
        foreach (var id in ids)
        {
            if (id < 0 || id >= _idToToken.Length || _idToToken[id] is not { } tok) continue;
            if (skipSpecialTokens && IsSpecial(id)) continue;
            tokens.Add(tok);
        }
        var text = _decoder is null ? string.Join(' ', tokens) : string.Concat(_decoder.DecodeChain(tokens));
        return _cleanUpSpaces ? TokenDecoder.CleanUpTokenization(text) : text;
    }
}

/// <summary>Finds added tokens in text: leftmost-longest match, with HF's single_word / lstrip / rstrip rules.</summary>
internal sealed class AddedVocabulary
{
    public IReadOnlyList<AddedToken> Tokens { get; }
    public Dictionary<string, AddedToken> ByContent { get; } = new(StringComparer.Ordinal);
    public Dictionary<int, AddedToken> ById { get; } = new();
    private readonly Dictionary<char, AddedToken[]> _raw = new(), _norm = new();

    public AddedVocabulary(IEnumerable<AddedToken> tokens)
    {
        Tokens = tokens.OrderBy(t => t.Id).ToList();
        foreach (var t in Tokens) { ByContent[t.Content] = t; ById[t.Id] = t; }
        foreach (var g in Tokens.Where(t => t.Content.Length > 0 && !t.Normalized).GroupBy(t => t.Content[0]))
            _raw[g.Key] = g.OrderByDescending(t => t.Content.Length).ToArray();
        foreach (var g in Tokens.Where(t => t.Content.Length > 0 && t.Normalized).GroupBy(t => t.Content[0]))
            _norm[g.Key] = g.OrderByDescending(t => t.Content.Length).ToArray();
    }

    /// <summary>Splits text into plain segments (Token null) and added tokens; AtStart marks a segment at offset 0 of the input.</summary>
    public List<(string Text, AddedToken? Token, bool AtStart)> Split(string text, bool normalized, bool startsAtZero)
        => SplitAt(text, normalized, startsAtZero, PlainSpans.None).Select(s => (s.Text, s.Token, s.AtStart)).ToList();

    /// <summary>
    /// <see cref="Split"/> with each segment's offset in <paramref name="text"/>; special tokens whose text overlaps a
    /// span of <paramref name="plain"/> (user data) are not matched there.
    /// </summary>
    public List<(string Text, AddedToken? Token, bool AtStart, int Offset)> SplitAt(string text, bool normalized, bool startsAtZero, PlainSpans plain)
    {
        var table = normalized ? _norm : _raw;
        var res = new List<(string, AddedToken?, bool, int)>();
        if (table.Count == 0) { if (text.Length > 0) res.Add((text, null, startsAtZero, 0)); return res; }
        int segStart = 0, i = 0;
        while (i < text.Length)
        {
            if (table.TryGetValue(text[i], out var cands))
            {
                AddedToken? hit = null;
                foreach (var c in cands)
                    if (string.CompareOrdinal(text, i, c.Content, 0, c.Content.Length) == 0 && (!c.SingleWord || IsSingleWord(text, i, c.Content.Length))
                        && !(c.Special && plain.Overlaps(i, c.Content.Length)))
                    { hit = c; break; }
                if (hit is not null)
                {
                    int mStart = i, mEnd = i + hit.Content.Length;
                    if (hit.LStrip) while (mStart > segStart && char.IsWhiteSpace(text[mStart - 1])) mStart--;
                    if (hit.RStrip) while (mEnd < text.Length && char.IsWhiteSpace(text[mEnd])) mEnd++;
                    if (mStart > segStart) res.Add((text[segStart..mStart], null, startsAtZero && segStart == 0, segStart));
                    res.Add((hit.Content, hit, false, mStart));
                    segStart = i = mEnd;
                    continue;
                }
            }
            i++;
        }
        if (segStart < text.Length) res.Add((text[segStart..], null, startsAtZero && segStart == 0, segStart));
        return res;
    }

    private static bool IsSingleWord(string text, int start, int len)
    {
        static bool IsWordChar(string s, int idx) => idx >= 0 && idx < s.Length && (char.IsLetterOrDigit(s, idx) || s[idx] == '_');
        return !IsWordChar(text, start - 1) && !IsWordChar(text, start + len);
    }
}

/// <summary>Character ranges of a text that hold user data (no special-token matching there), sorted and merged.</summary>
internal sealed class PlainSpans
{
    private readonly (int Start, int End)[] _spans;
    private readonly bool _all;
    private PlainSpans((int, int)[] spans, bool all) { _spans = spans; _all = all; }

    /// <summary>No user data: every special token matches.</summary>
    public static PlainSpans None { get; } = new([], false);
    /// <summary>All of the text is user data.</summary>
    public static PlainSpans All { get; } = new([], true);

    /// <summary>The ranges of a text of <paramref name="length"/> characters.</summary>
    public static PlainSpans Of(int length, IReadOnlyList<Range> ranges)
    {
        if (ranges.Count == 0) return None;
        var list = new List<(int, int)>(ranges.Count);
        foreach (var r in ranges)
        {
            var (off, len) = r.GetOffsetAndLength(length);
            if (len > 0) list.Add((off, off + len));
        }
        list.Sort();
        return new PlainSpans(list.ToArray(), false);
    }

    /// <summary>True when [start, start+length) shares a character with a span.</summary>
    public bool Overlaps(int start, int length)
    {
        if (_all) return true;
        int end = start + length;
        foreach (var (s, e) in _spans)
        {
            if (s >= end) break;
            if (e > start) return true;
        }
        return false;
    }
}
