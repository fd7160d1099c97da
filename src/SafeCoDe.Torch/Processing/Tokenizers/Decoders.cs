using System.Text;
using System.Text.Json.Nodes;

namespace SafeCoDe.Torch.Processing.Tokenizers;

/// <summary>A tokenizer.json "decoder": turns the list of token strings back into text, step by step.</summary>
internal abstract class TokenDecoder
{
    public abstract List<string> DecodeChain(List<string> tokens);

    public static TokenDecoder? FromJson(JsonNode? node)
    {
        if (node is null) return null;
        var type = Json.Str(node, "type");
        return type switch
        {
            "Sequence" => new SequenceDecoder(Json.Parts(node, "decoders", "decoder").Select(n => FromJson(n)!).ToArray()),
            "ByteLevel" => new ByteLevelDecoder(),
            "Replace" => new ReplaceDecoder(Pattern.FromJson(node["pattern"]!), Json.Str(node, "content")),
            "ByteFallback" => new ByteFallbackDecoder(),
            "Fuse" => new FuseDecoder(),
            "Strip" => new StripDecoder(Json.Str(node, "content"), Json.Int(node, "start", 0), Json.Int(node, "stop", 0)),
            "Metaspace" => new MetaspaceDecoder(Json.Str(node, "replacement"), MetaspacePreTokenizer.Scheme(node) != MetaspacePreTokenizer.Prepend.Never),
            "WordPiece" => new WordPieceDecoder(Json.OptStr(node, "prefix") ?? "##", Json.Bool(node, "cleanup", true)),
            "BPEDecoder" => new BpeSuffixDecoder(Json.OptStr(node, "suffix") ?? "</w>"),
            _ => throw new NotSupportedException($"tokenizer.json decoder '{type}' is not supported"),
        };
    }

    /// <summary>transformers' clean_up_tokenization: removes the space before punctuation and English contractions.</summary>
    internal static string CleanUpTokenization(string s) => s.Replace(" .", ".").Replace(" ?", "?").Replace(" !", "!").Replace(" ,", ",")
        .Replace(" ' ", "'").Replace(" n't", "n't").Replace(" 'm", "'m").Replace(" 's", "'s").Replace(" 've", "'ve").Replace(" 're", "'re");
}

internal sealed class SequenceDecoder(TokenDecoder[] parts) : TokenDecoder
{
    public override List<string> DecodeChain(List<string> tokens) { foreach (var p in parts) tokens = p.DecodeChain(tokens); return tokens; }
}

/// <summary>Maps byte-level characters back to bytes and decodes UTF-8 (invalid sequences become U+FFFD).</summary>
internal sealed class ByteLevelDecoder : TokenDecoder
{
    public override List<string> DecodeChain(List<string> tokens)
    {
        var bytes = new List<byte>();
        foreach (var t in tokens)
        {
            bool all = true;
            foreach (var c in t) if (!ByteLevel.CharToByte.ContainsKey(c)) { all = false; break; }
            if (all) foreach (var c in t) bytes.Add(ByteLevel.CharToByte[c]);
            else bytes.AddRange(Encoding.UTF8.GetBytes(t)); // e.g. an added token with characters outside the byte alphabet
        }
        return [Encoding.UTF8.GetString(bytes.ToArray())];
    }
}

internal sealed class ReplaceDecoder(Pattern pattern, string content) : TokenDecoder
{
    public override List<string> DecodeChain(List<string> tokens) => tokens.Select(t => pattern.ReplaceAll(t, content)).ToList();
}

/// <summary>Runs of &lt;0xNN&gt; tokens become the UTF-8 text they spell; an invalid run becomes one U+FFFD per byte (as HF).</summary>
internal sealed class ByteFallbackDecoder : TokenDecoder
{
    private static readonly UTF8Encoding Strict = new(false, true);

    public override List<string> DecodeChain(List<string> tokens)
    {
        var res = new List<string>(tokens.Count);
        var pending = new List<byte>();
        void Flush()
        {
            if (pending.Count == 0) return;
            try { res.Add(Strict.GetString(pending.ToArray())); }
            catch (DecoderFallbackException) { for (int i = 0; i < pending.Count; i++) res.Add("\uFFFD"); }
            pending.Clear();
        }
        foreach (var t in tokens)
        {
            if (t.Length == 6 && t.StartsWith("<0x", StringComparison.Ordinal) && t[5] == '>' &&
                byte.TryParse(t.AsSpan(3, 2), System.Globalization.NumberStyles.HexNumber, null, out var b))
            {
                pending.Add(b);
                continue;
            }
            Flush();
            res.Add(t);
        }
        Flush();
        return res;
    }
}

internal sealed class FuseDecoder : TokenDecoder
{
    public override List<string> DecodeChain(List<string> tokens) => [string.Concat(tokens)];
}

internal sealed class StripDecoder(string content, int start, int stop) : TokenDecoder
{
    public override List<string> DecodeChain(List<string> tokens) => tokens.Select(t =>
    {
        var chars = t.EnumerateRunes().Select(r => r.ToString()).ToList();
        int a = 0, b = chars.Count;
        for (int i = 0; i < start && a < b && chars[a] == content; i++) a++;
        for (int i = 0; i < stop && b > a && chars[b - 1] == content; i++) b--;
        return string.Concat(chars.Skip(a).Take(b - a));
    }).ToList();
}

internal sealed class MetaspaceDecoder(string replacement, bool stripFirst) : TokenDecoder
{
    public override List<string> DecodeChain(List<string> tokens) => tokens.Select((t, i) =>
    {
        var s = t.Replace(replacement, " ", StringComparison.Ordinal);
        return i == 0 && stripFirst && s.StartsWith(' ') ? s[1..] : s;
    }).ToList();
}

internal sealed class WordPieceDecoder(string prefix, bool cleanup) : TokenDecoder
{
    public override List<string> DecodeChain(List<string> tokens) => tokens.Select((t, i) =>
    {
        if (i != 0) t = t.StartsWith(prefix, StringComparison.Ordinal) ? t[prefix.Length..] : " " + t;
        return cleanup ? CleanUpTokenization(t).Replace(" do not", " don't") : t;
    }).ToList();
}

internal sealed class BpeSuffixDecoder(string suffix) : TokenDecoder
{
    public override List<string> DecodeChain(List<string> tokens)
        => tokens.Select((t, i) => t.Replace(suffix, i == tokens.Count - 1 ? "" : " ", StringComparison.Ordinal)).ToList();
}
