using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace SafeCoDe.Torch.Processing.Tokenizers;

/// <summary>One piece of text during pre-tokenization; <see cref="AtStart"/> marks a piece that begins the original input.</summary>
internal readonly record struct Piece(string Text, bool AtStart);

/// <summary>How a split keeps the delimiter (HF SplitDelimiterBehavior).</summary>
internal enum SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous }

/// <summary>A tokenizer.json "pre_tokenizer": splits each piece into smaller pieces (and may rewrite them).</summary>
internal abstract class PreTokenizer
{
    public abstract void Apply(List<Piece> pieces);

    public static PreTokenizer? FromJson(JsonNode? node)
    {
        if (node is null) return null;
        var type = Json.Str(node, "type");
        return type switch
        {
            "Sequence" => new SequencePreTokenizer(Json.Parts(node, "pretokenizers", "pre_tokenizer").Select(n => FromJson(n)!).ToArray()),
            "ByteLevel" => new ByteLevelPreTokenizer(Json.Bool(node, "add_prefix_space", true), Json.Bool(node, "use_regex", true)),
            "Split" => new SplitPreTokenizer(Pattern.FromJson(node["pattern"]!), ParseBehavior(Json.Str(node, "behavior")), Json.Bool(node, "invert", false)),
            "Metaspace" => new MetaspacePreTokenizer(Json.Str(node, "replacement"), MetaspacePreTokenizer.Scheme(node), Json.Bool(node, "split", true)),
            "Whitespace" => new SplitPreTokenizer(Pattern.FromJson(new JsonObject { ["Regex"] = @"\w+|[^\w\s]+" }), SplitBehavior.Removed, true),
            "WhitespaceSplit" => new FuncPreTokenizer(t => SplitBy(t, c => Rune.IsWhiteSpace(c), SplitBehavior.Removed)),
            "BertPreTokenizer" => new FuncPreTokenizer(t => SplitBy(t, c => Rune.IsWhiteSpace(c), SplitBehavior.Removed)
                .SelectMany(p => SplitBy(p, IsBertPunctuation, SplitBehavior.Isolated)).ToList()),
            "Punctuation" => new FuncPreTokenizer(t => SplitBy(t, IsBertPunctuation, ParseBehavior(Json.OptStr(node, "behavior") ?? "Isolated"))),
            "Digits" => Json.Bool(node, "individual_digits", false)
                ? new FuncPreTokenizer(t => SplitBy(t, r => Rune.IsNumber(r), SplitBehavior.Isolated))
                : new FuncPreTokenizer(t => SplitBy(t, r => Rune.IsNumber(r), SplitBehavior.Contiguous)),
            _ => throw new NotSupportedException($"tokenizer.json pre_tokenizer '{type}' is not supported"),
        };
    }

    internal static SplitBehavior ParseBehavior(string s) => s switch
    {
        "Removed" => SplitBehavior.Removed,
        "Isolated" => SplitBehavior.Isolated,
        "MergedWithPrevious" => SplitBehavior.MergedWithPrevious,
        "MergedWithNext" => SplitBehavior.MergedWithNext,
        "Contiguous" => SplitBehavior.Contiguous,
        _ => throw new NotSupportedException($"split behavior '{s}' is not supported"),
    };

    /// <summary>HF's is_bert_punc: ASCII punctuation/symbols or any Unicode punctuation (P*).</summary>
    internal static bool IsBertPunctuation(Rune r)
    {
        int c = r.Value;
        if (c is (>= 33 and <= 47) or (>= 58 and <= 64) or (>= 91 and <= 96) or (>= 123 and <= 126)) return true;
        return Rune.GetUnicodeCategory(r) is UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation
            or UnicodeCategory.OpenPunctuation or UnicodeCategory.ClosePunctuation or UnicodeCategory.InitialQuotePunctuation
            or UnicodeCategory.FinalQuotePunctuation or UnicodeCategory.OtherPunctuation;
    }

    /// <summary>Splits on spans matched by <paramref name="matches"/> with HF's delimiter behaviours.</summary>
    internal static List<string> SplitSpans(string text, IEnumerable<(int Start, int Length)> matches, SplitBehavior behavior)
    {
        // (start, end, isMatch) for the whole text
        var parts = new List<(int S, int E, bool M)>();
        int pos = 0;
        foreach (var (s, l) in matches)
        {
            if (l == 0) continue;
            if (s > pos) parts.Add((pos, s, false));
            parts.Add((s, s + l, true));
            pos = s + l;
        }
        if (pos < text.Length) parts.Add((pos, text.Length, false));
        var res = new List<string>();
        switch (behavior)
        {
            case SplitBehavior.Removed:
                foreach (var p in parts) if (!p.M) res.Add(text[p.S..p.E]);
                break;
            case SplitBehavior.Isolated:
                foreach (var p in parts) res.Add(text[p.S..p.E]);
                break;
            case SplitBehavior.Contiguous:
                {
                    var merged = new List<(int S, int E, bool M)>();
                    foreach (var p in parts)
                        if (p.M && merged.Count > 0 && merged[^1].M && merged[^1].E == p.S) merged[^1] = (merged[^1].S, p.E, true);
                        else merged.Add(p);
                    foreach (var p in merged) res.Add(text[p.S..p.E]);
                    break;
                }
            case SplitBehavior.MergedWithPrevious:
                {
                    int start = 0;
                    foreach (var p in parts)
                        if (p.M) { res.Add(text[start..p.E]); start = p.E; }
                    if (start < text.Length) res.Add(text[start..]);
                    break;
                }
            case SplitBehavior.MergedWithNext:
                {
                    int start = 0;
                    foreach (var p in parts)
                        if (p.M && p.S > start) { res.Add(text[start..p.S]); start = p.S; }
                    if (start < text.Length) res.Add(text[start..]);
                    break;
                }
        }
        res.RemoveAll(s => s.Length == 0);
        return res;
    }

    /// <summary>Splits on single code points that satisfy <paramref name="isDelimiter"/>.</summary>
    internal static List<string> SplitBy(string text, Func<Rune, bool> isDelimiter, SplitBehavior behavior)
    {
        var spans = new List<(int, int)>();
        int i = 0;
        foreach (var r in text.EnumerateRunes())
        {
            if (isDelimiter(r)) spans.Add((i, r.Utf16SequenceLength));
            i += r.Utf16SequenceLength;
        }
        return SplitSpans(text, spans, behavior);
    }

    protected static void MapPieces(List<Piece> pieces, Func<Piece, IEnumerable<string>> f)
    {
        var result = new List<Piece>(pieces.Count);
        foreach (var p in pieces)
        {
            bool first = true;
            foreach (var s in f(p)) { result.Add(new Piece(s, p.AtStart && first)); first = false; }
        }
        pieces.Clear();
        pieces.AddRange(result);
    }
}

internal sealed class SequencePreTokenizer(PreTokenizer[] parts) : PreTokenizer
{
    public override void Apply(List<Piece> pieces) { foreach (var p in parts) p.Apply(pieces); }
}

internal sealed class FuncPreTokenizer(Func<string, List<string>> split) : PreTokenizer
{
    public override void Apply(List<Piece> pieces) => MapPieces(pieces, p => split(p.Text));
}

internal sealed class SplitPreTokenizer(Pattern pattern, SplitBehavior behavior, bool invert) : PreTokenizer
{
    public override void Apply(List<Piece> pieces) => MapPieces(pieces, p =>
    {
        if (!invert) return SplitSpans(p.Text, pattern.Matches(p.Text), behavior);
        // inverted: the matches are the pieces we keep, the gaps are the delimiters
        var gaps = new List<(int, int)>();
        int pos = 0;
        foreach (var (s, l) in pattern.Matches(p.Text)) { if (s > pos) gaps.Add((pos, s - pos)); pos = s + l; }
        if (pos < p.Text.Length) gaps.Add((pos, p.Text.Length - pos));
        return SplitSpans(p.Text, gaps, behavior);
    });
}

/// <summary>GPT-2 byte-level: optional GPT-2 regex split, then every UTF-8 byte mapped to a printable character.</summary>
internal sealed class ByteLevelPreTokenizer(bool addPrefixSpace, bool useRegex) : PreTokenizer
{
    internal const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
    private static readonly Lazy<CodepointRegex> Gpt2 = new(() => new CodepointRegex(Gpt2Pattern));

    public override void Apply(List<Piece> pieces) => MapPieces(pieces, p =>
    {
        var text = p.Text;
        if (addPrefixSpace && !text.StartsWith(' ')) text = " " + text;
        var parts = useRegex ? SplitSpans(text, Gpt2.Value.Matches(text), SplitBehavior.Isolated) : [text];
        return parts.Select(ByteLevel.Encode);
    });
}

internal sealed class MetaspacePreTokenizer(string replacement, MetaspacePreTokenizer.Prepend scheme, bool split) : PreTokenizer
{
    internal enum Prepend { Always, First, Never }

    internal static Prepend Scheme(JsonNode node)
    {
        var s = Json.OptStr(node, "prepend_scheme");
        if (s is null) return Json.Bool(node, "add_prefix_space", true) ? Prepend.Always : Prepend.Never;
        return s switch { "always" => Prepend.Always, "first" => Prepend.First, "never" => Prepend.Never, _ => throw new NotSupportedException($"prepend_scheme '{s}'") };
    }

    public override void Apply(List<Piece> pieces) => MapPieces(pieces, p =>
    {
        var text = p.Text.Replace(" ", replacement, StringComparison.Ordinal);
        bool prepend = scheme == Prepend.Always || (scheme == Prepend.First && p.AtStart);
        if (prepend && !text.StartsWith(replacement, StringComparison.Ordinal)) text = replacement + text;
        return split ? SplitSpans(text, Pattern.FromLiteral(replacement).Matches(text), SplitBehavior.MergedWithNext) : [text];
    });
}

/// <summary>GPT-2's reversible byte ↔ printable-character table.</summary>
internal static class ByteLevel
{
    public static readonly char[] ByteToChar = Build();
    public static readonly Dictionary<char, byte> CharToByte = ByteToChar.Select((c, b) => (c, (byte)b)).ToDictionary(x => x.c, x => x.Item2);

    private static char[] Build()
    {
        var map = new char[256];
        var direct = new bool[256];
        for (int b = '!'; b <= '~'; b++) direct[b] = true;
        for (int b = 0xA1; b <= 0xAC; b++) direct[b] = true;
        for (int b = 0xAE; b <= 0xFF; b++) direct[b] = true;
        int n = 0;
        for (int b = 0; b < 256; b++) map[b] = direct[b] ? (char)b : (char)(256 + n++);
        return map;
    }

    public static string Encode(string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        var chars = new char[bytes.Length];
        for (int i = 0; i < bytes.Length; i++) chars[i] = ByteToChar[bytes[i]];
        return new string(chars);
    }
}
