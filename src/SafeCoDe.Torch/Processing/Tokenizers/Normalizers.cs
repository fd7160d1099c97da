using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace SafeCoDe.Torch.Processing.Tokenizers;

/// <summary>A tokenizer.json "normalizer": rewrites text before pre-tokenization (offsets are not tracked).</summary>
internal abstract class TextNormalizer
{
    public abstract string Normalize(string text);

    public static TextNormalizer? FromJson(JsonNode? node)
    {
        if (node is null) return null;
        var type = Json.Str(node, "type");
        return type switch
        {
            "Sequence" => new SequenceNormalizer(Json.Parts(node, "normalizers", "normalizer").Select(n => FromJson(n)!).ToArray()),
            "NFC" => new FormNormalizer(NormalizationForm.FormC),
            "NFD" => new FormNormalizer(NormalizationForm.FormD),
            "NFKC" => new FormNormalizer(NormalizationForm.FormKC),
            "NFKD" => new FormNormalizer(NormalizationForm.FormKD),
            "Lowercase" => new LambdaNormalizer(s => s.ToLowerInvariant()),
            "Prepend" => new PrependNormalizer(Json.Str(node, "prepend")),
            "Replace" => new ReplaceNormalizer(Pattern.FromJson(node["pattern"]!), Json.Str(node, "content")),
            "Strip" => new StripNormalizer(Json.Bool(node, "strip_left", true), Json.Bool(node, "strip_right", true)),
            "StripAccents" => new LambdaNormalizer(StripMarks),
            "BertNormalizer" => new BertNormalizer(Json.Bool(node, "clean_text", true), Json.Bool(node, "handle_chinese_chars", true),
                Json.OptBool(node, "strip_accents"), Json.Bool(node, "lowercase", true)),
            _ => throw new NotSupportedException($"tokenizer.json normalizer '{type}' is not supported"),
        };
    }

    /// <summary>Removes non-spacing marks (Mn), as HF's StripAccents (which expects NFD input).</summary>
    internal static string StripMarks(string s)
    {
        var sb = new StringBuilder(s.Length);
        foreach (var r in s.EnumerateRunes())
            if (Rune.GetUnicodeCategory(r) != UnicodeCategory.NonSpacingMark) sb.Append(r.ToString());
        return sb.ToString();
    }
}

internal sealed class SequenceNormalizer(TextNormalizer[] parts) : TextNormalizer
{
    public override string Normalize(string text) { foreach (var p in parts) text = p.Normalize(text); return text; }
}

internal sealed class FormNormalizer(NormalizationForm form) : TextNormalizer
{
    public override string Normalize(string text) => UnicodeNormalization.Normalize(text, form);
}

internal sealed class LambdaNormalizer(Func<string, string> f) : TextNormalizer
{
    public override string Normalize(string text) => f(text);
}

internal sealed class PrependNormalizer(string prefix) : TextNormalizer
{
    public override string Normalize(string text) => text.Length == 0 ? text : prefix + text;
}

internal sealed class ReplaceNormalizer(Pattern pattern, string content) : TextNormalizer
{
    public override string Normalize(string text) => pattern.ReplaceAll(text, content);
}

internal sealed class StripNormalizer(bool left, bool right) : TextNormalizer
{
    public override string Normalize(string text)
    {
        int a = 0, b = text.Length;
        if (left) while (a < b && char.IsWhiteSpace(text[a])) a++;
        if (right) while (b > a && char.IsWhiteSpace(text[b - 1])) b--;
        return text[a..b];
    }
}

/// <summary>HF's BertNormalizer: clean control characters, space out CJK ideographs, strip accents, lowercase.</summary>
internal sealed class BertNormalizer(bool cleanText, bool handleChinese, bool? stripAccents, bool lowercase) : TextNormalizer
{
    public override string Normalize(string text)
    {
        var sb = new StringBuilder(text.Length);
        foreach (var r in text.EnumerateRunes())
        {
            int c = r.Value;
            if (cleanText)
            {
                if (c == 0 || c == 0xFFFD || IsControl(r)) continue;
                if (IsWhitespace(r)) { sb.Append(' '); continue; }
            }
            if (handleChinese && IsChinese(c)) { sb.Append(' ').Append(r.ToString()).Append(' '); continue; }
            sb.Append(r.ToString());
        }
        var s = sb.ToString();
        if (stripAccents ?? lowercase) s = StripMarks(UnicodeNormalization.Normalize(s, NormalizationForm.FormD));
        if (lowercase) s = s.ToLowerInvariant();
        return s;
    }

    internal static bool IsWhitespace(Rune r) => r.Value is ' ' or '\t' or '\n' or '\r' || Rune.IsWhiteSpace(r);

    private static bool IsControl(Rune r)
    {
        if (r.Value is '\t' or '\n' or '\r') return false;
        var cat = Rune.GetUnicodeCategory(r);
        return cat is UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.PrivateUse or UnicodeCategory.Surrogate
            or UnicodeCategory.OtherNotAssigned;
    }

    internal static bool IsChinese(int c) =>
        c is (>= 0x4E00 and <= 0x9FFF) or (>= 0x3400 and <= 0x4DBF) or (>= 0x20000 and <= 0x2A6DF) or (>= 0x2A700 and <= 0x2B73F)
            or (>= 0x2B740 and <= 0x2B81F) or (>= 0x2B820 and <= 0x2CEAF) or (>= 0xF900 and <= 0xFAFF) or (>= 0x2F800 and <= 0x2FA1F);
}

/// <summary>A tokenizer.json pattern: {"String": literal} or {"Regex": Oniguruma-style regex}.</summary>
internal sealed class Pattern
{
    public string? Literal { get; }
    public CodepointRegex? Regex { get; }

    private Pattern(string? literal, CodepointRegex? regex) { Literal = literal; Regex = regex; }

    public static Pattern FromJson(JsonNode node)
    {
        if (node["String"] is { } s) return new Pattern(s.GetValue<string>(), null);
        if (node["Regex"] is { } r) return new Pattern(null, new CodepointRegex(r.GetValue<string>()));
        throw new NotSupportedException($"tokenizer.json pattern {node.ToJsonString()} is not supported");
    }

    public static Pattern FromLiteral(string s) => new(s, null);

    public string ReplaceAll(string text, string content)
        => Literal is not null ? (Literal.Length == 0 ? text : text.Replace(Literal, content, StringComparison.Ordinal)) : Regex!.Replace(text, content);

    /// <summary>Spans (start, length) of all non-overlapping matches, left to right.</summary>
    public IEnumerable<(int Start, int Length)> Matches(string text)
    {
        if (Literal is not null)
        {
            if (Literal.Length == 0) yield break;
            int i = 0;
            while ((i = text.IndexOf(Literal, i, StringComparison.Ordinal)) >= 0) { yield return (i, Literal.Length); i += Literal.Length; }
            yield break;
        }
        foreach (var m in Regex!.Matches(text)) yield return m;
    }
}

/// <summary>
/// A .NET regex that matches on code points like Oniguruma/Rust do: .NET matches UTF-16 units, so a supplementary-plane
/// letter (𠮷, 𝐀) would not match \p{L}. Each surrogate pair is replaced by one BMP stand-in character of the same
/// Unicode category (one that the pattern does not mention), the regex runs on that shadow string, and spans are mapped back.
/// </summary>
internal sealed class CodepointRegex
{
    private readonly Regex _regex;
    private readonly Dictionary<UnicodeCategory, char> _standIn = new();

    public CodepointRegex(string pattern)
    {
        // patterns come from files: every match has a time limit (InputLimits.RegexTimeout)
        try { _regex = new Regex(pattern, RegexOptions.CultureInvariant | RegexOptions.Compiled, SafeCoDe.Torch.Runtime.InputLimits.Current.RegexTimeout); }
        catch (ArgumentException e) { throw new FormatException($"invalid regular expression in the tokenizer file: {e.Message}", e); }
        for (int c = 0x100; c < 0xD800 && _standIn.Count < 30; c++)
        {
            var ch = (char)c;
            var cat = char.GetUnicodeCategory(ch);
            if (_standIn.ContainsKey(cat) || pattern.Contains(ch) || pattern.Contains(char.ToUpperInvariant(ch)) || pattern.Contains(char.ToLowerInvariant(ch))) continue;
            if (char.ToUpperInvariant(ch) != ch && char.ToUpperInvariant(ch) < 0x100) continue;
            if (char.ToLowerInvariant(ch) != ch && char.ToLowerInvariant(ch) < 0x100) continue;
            _standIn[cat] = ch;
        }
    }

    public IEnumerable<(int Start, int Length)> Matches(string text)
    {
        var res = new List<(int, int)>();
        try
        {
            if (!HasSurrogates(text))
            {
                foreach (Match m in _regex.Matches(text)) res.Add((m.Index, m.Length));
                return res;
            }
            var (shadow, map) = Shadow(text);
            foreach (Match m in _regex.Matches(shadow))
            {
                int start = map[m.Index], end = map[m.Index + m.Length];
                res.Add((start, end - start));
            }
            return res;
        }
        catch (RegexMatchTimeoutException)
        {
            throw new SafeCoDe.Torch.Runtime.InputLimitException(
                $"a regular expression from the tokenizer file ran longer than {_regex.MatchTimeout.TotalSeconds:0.##} s on a {text.Length}-character input (InputLimits.RegexTimeout)");
        }
    }

    public string Replace(string text, string content)
    {
        var sb = new StringBuilder(text.Length);
        int pos = 0;
        foreach (var (s, l) in Matches(text)) { sb.Append(text, pos, s - pos).Append(content); pos = s + l; }
        return sb.Append(text, pos, text.Length - pos).ToString();
    }

    private static bool HasSurrogates(string s)
    {
        foreach (var c in s) if (char.IsSurrogate(c)) return true;
        return false;
    }

    private (string, int[]) Shadow(string text)
    {
        var sb = new StringBuilder(text.Length);
        var map = new List<int>(text.Length + 1);
        for (int i = 0; i < text.Length; i++)
        {
            map.Add(i);
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                var cat = CharUnicodeInfo.GetUnicodeCategory(char.ConvertToUtf32(text[i], text[i + 1]));
                sb.Append(_standIn.TryGetValue(cat, out var ch) ? ch : '\uE000');
                i++;
            }
            else sb.Append(text[i]);
        }
        map.Add(text.Length);
        return (sb.ToString(), map.ToArray());
    }
}

/// <summary>Small helpers for reading tokenizer.json nodes.</summary>
internal static class Json
{
    public static string Str(JsonNode node, string key)
        => node[key]?.GetValue<string>() ?? throw new FormatException($"missing string '{key}' in {Trim(node.ToJsonString())}");
    public static string? OptStr(JsonNode node, string key) => node[key] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
    public static bool Bool(JsonNode node, string key, bool dflt) => node[key] is JsonValue v && v.TryGetValue<bool>(out var b) ? b : dflt;
    public static bool? OptBool(JsonNode node, string key) => node[key] is JsonValue v && v.TryGetValue<bool>(out var b) ? b : null;
    public static int Int(JsonNode node, string key, int dflt) => node[key] is JsonValue v && v.TryGetValue<int>(out var i) ? i : dflt;
    private static string Trim(string s) => s.Length > 200 ? s[..200] + "..." : s;

    /// <summary>The parts of a "Sequence" (a list of objects); a missing list or a null or non-object part is a format error naming it.</summary>
    public static List<JsonNode> Parts(JsonNode node, string key, string what)
    {
        if (node[key] is not JsonArray a) throw new TokenizerFormatException($"tokenizer.json {what} Sequence: '{key}' must be a list of objects");
        var parts = new List<JsonNode>(a.Count);
        for (int i = 0; i < a.Count; i++)
            parts.Add(a[i] as JsonObject ?? throw new TokenizerFormatException($"tokenizer.json {what} Sequence: {key}[{i}] is {(a[i] is null ? "null" : "not an object")}"));
        return parts;
    }
}
