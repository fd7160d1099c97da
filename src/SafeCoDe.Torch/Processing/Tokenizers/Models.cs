using System.Text;
using System.Text.Json.Nodes;

namespace SafeCoDe.Torch.Processing.Tokenizers;

/// <summary>A tokenizer.json "model": turns one pre-tokenized piece into ids.</summary>
internal abstract class TokenModel
{
    /// <summary>Vocabulary (without added tokens).</summary>
    public abstract IReadOnlyDictionary<string, int> Vocab { get; }
    public abstract string TypeName { get; }
    public abstract void Tokenize(string piece, List<int> output);

    public static TokenModel FromJson(JsonNode node)
    {
        var type = Json.OptStr(node, "type") ?? (node["merges"] is not null ? "BPE" : node["continuing_subword_prefix"] is not null ? "WordPiece" : "?");
        return type switch
        {
            "BPE" => BpeModel.Parse(node),
            "WordPiece" => new WordPieceModel(ReadVocab(node["vocab"]!), Json.Str(node, "unk_token"),
                Json.OptStr(node, "continuing_subword_prefix") ?? "##", Json.Int(node, "max_input_chars_per_word", 100)),
            _ => throw new NotSupportedException($"tokenizer.json model '{type}' is not supported (BPE and WordPiece are)"),
        };
    }

    internal static Dictionary<string, int> ReadVocab(JsonNode node)
    {
        var obj = node.AsObject();
        var d = new Dictionary<string, int>(obj.Count, StringComparer.Ordinal);
        foreach (var (k, v) in obj)
            d[k] = TokenizerLoader.CheckId(v is JsonValue jv && jv.TryGetValue<int>(out var id) ? id : throw new FormatException($"vocabulary entry '{(k.Length > 40 ? k[..40] + "…" : k)}' has no integer id"), "vocab");
        return d;
    }
}

/// <summary>
/// Byte-pair encoding as HF tokenizers does it: start from characters (or byte-fallback tokens, or the unknown token),
/// then repeatedly apply the merge with the lowest rank, leftmost first.
/// </summary>
internal sealed class BpeModel : TokenModel
{
    private readonly Dictionary<string, int> _vocab;
    private readonly Dictionary<long, (int Rank, int NewId)> _merges;
    private readonly int? _unkId;
    private readonly bool _fuseUnk, _byteFallback, _ignoreMerges;
    private readonly string _prefix, _suffix;
    private readonly int[] _byteIds;

    public override IReadOnlyDictionary<string, int> Vocab => _vocab;
    public override string TypeName => "BPE";

    public BpeModel(Dictionary<string, int> vocab, IEnumerable<(string A, string B)> merges, string? unkToken, bool fuseUnk, bool byteFallback,
        bool ignoreMerges, string? continuingSubwordPrefix, string? endOfWordSuffix)
    {
        _vocab = vocab;
        _prefix = continuingSubwordPrefix ?? "";
        _suffix = endOfWordSuffix ?? "";
        _fuseUnk = fuseUnk;
        _byteFallback = byteFallback;
        _ignoreMerges = ignoreMerges;
        if (unkToken is not null)
            _unkId = vocab.TryGetValue(unkToken, out var u) ? u : throw new FormatException($"BPE unk_token '{unkToken}' is not in the vocabulary");
        _merges = new Dictionary<long, (int, int)>();
        int rank = 0;
        foreach (var (a, b) in merges)
        {
            if (!vocab.TryGetValue(a, out var ia) || !vocab.TryGetValue(b, out var ib))
                throw new FormatException($"BPE merge '{a} {b}' uses a token that is not in the vocabulary");
            var merged = a + (_prefix.Length > 0 && b.StartsWith(_prefix, StringComparison.Ordinal) ? b[_prefix.Length..] : b);
            if (!vocab.TryGetValue(merged, out var id)) throw new FormatException($"BPE merge result '{merged}' is not in the vocabulary");
            _merges[Key(ia, ib)] = (rank, id); // a repeated pair keeps its last rank, as HF does
            rank++;
        }
        _byteIds = new int[256];
        for (int b = 0; b < 256; b++) _byteIds[b] = vocab.TryGetValue($"<0x{b:X2}>", out var id) ? id : -1;
    }

    public static BpeModel Parse(JsonNode node)
    {
        if (node["dropout"] is JsonValue dv && dv.TryGetValue<double>(out var d) && d > 0)
            throw new NotSupportedException("BPE dropout is not supported (it makes encoding random)");
        var merges = new List<(string, string)>();
        foreach (var m in node["merges"] as JsonArray ?? throw new FormatException("BPE model has no merges array"))
        {
            if (m is JsonArray pair) merges.Add((pair[0]!.GetValue<string>(), pair[1]!.GetValue<string>()));
            else
            {
                var s = m!.GetValue<string>();
                int sp = s.IndexOf(' ', 1);
                if (sp < 0) throw new FormatException($"BPE merge '{s}' is not 'a b'");
                merges.Add((s[..sp], s[(sp + 1)..]));
            }
        }
        return new BpeModel(ReadVocab(node["vocab"]!), merges, Json.OptStr(node, "unk_token"), Json.Bool(node, "fuse_unk", false),
            Json.Bool(node, "byte_fallback", false), Json.Bool(node, "ignore_merges", false),
            Json.OptStr(node, "continuing_subword_prefix"), Json.OptStr(node, "end_of_word_suffix"));
    }

    private static long Key(int a, int b) => ((long)a << 32) | (uint)b;

    private struct Symbol { public int Id, Prev, Next, Len; }

    public override void Tokenize(string piece, List<int> output)
    {
        if (piece.Length == 0) return;
        if (_ignoreMerges && _vocab.TryGetValue(piece, out var whole)) { output.Add(whole); return; }

        var symbols = new List<Symbol>(piece.Length);
        var runes = piece.EnumerateRunes().ToArray();
        bool lastWasUnk = false;
        Span<byte> buf = stackalloc byte[4];
        for (int i = 0; i < runes.Length; i++)
        {
            var s = runes[i].ToString();
            if (i > 0 && _prefix.Length > 0) s = _prefix + s;
            if (i == runes.Length - 1 && _suffix.Length > 0) s += _suffix;
            if (_vocab.TryGetValue(s, out var id)) { Add(symbols, id); lastWasUnk = false; continue; }
            if (_byteFallback)
            {
                int n = runes[i].EncodeToUtf8(buf);
                bool all = true;
                for (int k = 0; k < n; k++) all &= _byteIds[buf[k]] >= 0;
                if (all)
                {
                    for (int k = 0; k < n; k++) Add(symbols, _byteIds[buf[k]]);
                    lastWasUnk = false;
                    continue;
                }
            }
            if (_unkId is { } unk)
            {
                if (_fuseUnk && lastWasUnk) continue; // fused into the previous unknown token
                Add(symbols, unk);
                lastWasUnk = true;
            }
        }

        var arr = symbols.ToArray();
        var queue = new PriorityQueue<(int Pos, int Rank, int NewId), (int Rank, int Pos)>();
        for (int i = 0; i + 1 < arr.Length; i++) Enqueue(queue, arr, i);
        while (queue.TryDequeue(out var top, out _))
        {
            ref var left = ref arr[top.Pos];
            if (left.Len == 0 || left.Next < 0) continue;
            var right = arr[left.Next];
            if (!_merges.TryGetValue(Key(left.Id, right.Id), out var m) || m.NewId != top.NewId || m.Rank != top.Rank) continue;
            left.Id = m.NewId;
            left.Len += right.Len;
            arr[left.Next].Len = 0;
            left.Next = right.Next;
            if (right.Next >= 0) arr[right.Next].Prev = top.Pos;
            if (left.Prev >= 0) Enqueue(queue, arr, left.Prev);
            Enqueue(queue, arr, top.Pos);
        }
        for (int i = 0; i >= 0 && i < arr.Length; i = arr[i].Next) output.Add(arr[i].Id);
    }

    private static void Add(List<Symbol> symbols, int id)
    {
        int n = symbols.Count;
        if (n > 0) { var p = symbols[n - 1]; p.Next = n; symbols[n - 1] = p; }
        symbols.Add(new Symbol { Id = id, Prev = n - 1, Next = -1, Len = 1 });
    }

    private void Enqueue(PriorityQueue<(int, int, int), (int, int)> q, Symbol[] arr, int pos)
    {
        int next = arr[pos].Next;
        if (next < 0) return;
        if (_merges.TryGetValue(Key(arr[pos].Id, arr[next].Id), out var m)) q.Enqueue((pos, m.Rank, m.NewId), (m.Rank, pos));
    }
}

/// <summary>BERT's WordPiece: greedy longest-match-first inside each word, "##" marks a continuation.</summary>
internal sealed class WordPieceModel(Dictionary<string, int> vocab, string unkToken, string prefix, int maxChars) : TokenModel
{
    private readonly int _unkId = vocab.TryGetValue(unkToken, out var u) ? u : throw new FormatException($"WordPiece unk_token '{unkToken}' is not in the vocabulary");

    public override IReadOnlyDictionary<string, int> Vocab => vocab;
    public override string TypeName => "WordPiece";

    public override void Tokenize(string piece, List<int> output)
    {
        var runes = piece.EnumerateRunes().ToArray();
        if (runes.Length > maxChars) { output.Add(_unkId); return; }
        var ids = new List<int>();
        // char offsets of each rune in the UTF-16 string
        var offsets = new int[runes.Length + 1];
        for (int i = 0; i < runes.Length; i++) offsets[i + 1] = offsets[i] + runes[i].Utf16SequenceLength;
        int start = 0;
        while (start < runes.Length)
        {
            int end = runes.Length, found = -1;
            while (start < end)
            {
                var sub = piece[offsets[start]..offsets[end]];
                if (start > 0) sub = prefix + sub;
                if (vocab.TryGetValue(sub, out var id)) { found = id; break; }
                end--;
            }
            if (found < 0) { output.Add(_unkId); return; }
            ids.Add(found);
            start = end;
        }
        output.AddRange(ids);
    }
}
