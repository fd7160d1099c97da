using System.Buffers.Binary;
using System.Text;

namespace SafeCoDe.Torch.Processing.Tokenizers;

#pragma warning disable CS1591 // the members and values are ModelProto.SentencePiece.Type's
/// <summary>Piece types of a SentencePiece model (sentencepiece_model.proto).</summary>
public enum SentencePieceType { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 }
#pragma warning restore CS1591

/// <summary>
/// A SentencePiece <c>tokenizer.model</c> (ModelProto) read without a protobuf library, with sentencepiece's own
/// encoding: the normaliser (precompiled charsmap, dummy prefix, whitespace escaping/collapsing), BPE (highest-score
/// merge first, leftmost on ties) or unigram (Viterbi with float scores), byte fallback, and run-merging of unknowns.
/// Checked id-for-id against the sentencepiece library on trained BPE and unigram models (tests/.../Tokenizers).
/// </summary>
public sealed class SentencePieceModel
{
    /// <summary>Every piece in id order with its score and type.</summary>
    public IReadOnlyList<(string Piece, float Score, SentencePieceType Type)> Pieces { get; }
    /// <summary>True for a BPE model, false for unigram.</summary>
    public bool IsBpe { get; }
    /// <summary>Unknown characters become &lt;0xNN&gt; byte pieces instead of the unknown id.</summary>
    public bool ByteFallback { get; }
    /// <summary>Id of the unknown piece (trainer_spec.unk_id, 0 by default).</summary>
    public int UnkId { get; }
    /// <summary>Id of the BOS piece (trainer_spec.bos_id, 1 by default; −1 means none).</summary>
    public int BosId { get; }
    /// <summary>Id of the EOS piece (trainer_spec.eos_id, 2 by default; −1 means none).</summary>
    public int EosId { get; }
    /// <summary>Id of the padding piece (trainer_spec.pad_id); −1 when unset or outside the pieces.</summary>
    public int PadId { get; }
    /// <summary>A "▁" is put before the text (normalizer_spec.add_dummy_prefix).</summary>
    public bool AddDummyPrefix { get; }
    /// <summary>Leading, trailing and repeated spaces are collapsed (normalizer_spec.remove_extra_whitespaces).</summary>
    public bool RemoveExtraWhitespaces { get; }
    /// <summary>Spaces become "▁" (normalizer_spec.escape_whitespaces).</summary>
    public bool EscapeWhitespaces { get; }
    /// <summary>normalizer_spec.name, e.g. "identity" or "nmt_nfkc".</summary>
    public string NormalizerName { get; }
    /// <summary>Text the unknown piece decodes to (trainer_spec.unk_surface, " ⁇ " by default).</summary>
    public string UnkSurface { get; }

    private readonly Dictionary<string, int> _pieces = new(StringComparer.Ordinal);   // normal, user-defined, unused
    private readonly Dictionary<string, int> _reserved = new(StringComparer.Ordinal); // control, unknown, byte
    private readonly int[] _byteIds = Enumerable.Repeat(-1, 256).ToArray();
    private readonly string[] _userDefined;
    private readonly byte[][] _userDefinedUtf8;
    private readonly int _maxPieceChars;
    private readonly float _minScore, _maxScore;
    private readonly uint[]? _trie;
    private readonly byte[] _normalized = [];

    private const string Space = "\u2581";

    /// <summary>Parses a serialized ModelProto.</summary>
    /// <exception cref="FormatException">Malformed protobuf, no pieces, or a bad precompiled charsmap.</exception>
    /// <exception cref="NotSupportedException">A model type other than unigram/BPE, or treat_whitespace_as_suffix.</exception>
    public SentencePieceModel(byte[] modelProto)
    {
        var pieces = new List<(string, float, SentencePieceType)>();
        int modelType = 1;
        bool byteFallback = false, addDummy = true, removeExtra = true, escape = true, suffix = false;
        int unkId = 0, bosId = 1, eosId = 2, padId = -1;
        string? unkPiece = null, bosPiece = null, eosPiece = null, padPiece = null;
        string name = "", unkSurface = " \u2047 ";
        byte[]? charsmap = null;
        foreach (var (field, wire, value, bytes) in Proto.Fields(modelProto))
        {
            if (field == 1 && wire == 2)
            {
                string piece = ""; float score = 0; var type = SentencePieceType.Normal;
                foreach (var (f, w, v, b) in Proto.Fields(bytes))
                {
                    if (f == 1 && w == 2) piece = Encoding.UTF8.GetString(b);
                    else if (f == 2 && w == 5) score = BitConverter.Int32BitsToSingle((int)v);
                    else if (f == 3 && w == 0) type = (SentencePieceType)(int)v;
                }
                pieces.Add((piece, score, type));
            }
            else if (field == 2 && wire == 2)
            {
                foreach (var (f, w, v, b) in Proto.Fields(bytes))
                {
                    switch (f)
                    {
                        case 3: modelType = (int)v; break;
                        case 24: suffix = v != 0; break;
                        case 35: byteFallback = v != 0; break;
                        case 40: unkId = (int)v; break;
                        case 41: bosId = (int)v; break;
                        case 42: eosId = (int)v; break;
                        case 43: padId = (int)v; break;
                        case 44: unkSurface = Encoding.UTF8.GetString(b); break;
                        case 45: unkPiece = Encoding.UTF8.GetString(b); break;
                        case 46: bosPiece = Encoding.UTF8.GetString(b); break;
                        case 47: eosPiece = Encoding.UTF8.GetString(b); break;
                        case 48: padPiece = Encoding.UTF8.GetString(b); break;
                    }
                }
            }
            else if (field == 3 && wire == 2)
            {
                foreach (var (f, w, v, b) in Proto.Fields(bytes))
                {
                    switch (f)
                    {
                        case 1: name = Encoding.UTF8.GetString(b); break;
                        case 2: charsmap = b; break;
                        case 3: addDummy = v != 0; break;
                        case 4: removeExtra = v != 0; break;
                        case 5: escape = v != 0; break;
                    }
                }
            }
        }
        if (pieces.Count == 0) throw new FormatException("tokenizer.model has no pieces (not a SentencePiece model?)");
        if (modelType is not (1 or 2)) throw new NotSupportedException($"SentencePiece model type {modelType} is not supported (unigram and BPE are)");
        if (suffix) throw new NotSupportedException("SentencePiece treat_whitespace_as_suffix is not supported");
        if (padId >= pieces.Count) padId = -1;
        Pieces = pieces;
        IsBpe = modelType == 2;
        ByteFallback = byteFallback;
        AddDummyPrefix = addDummy;
        RemoveExtraWhitespaces = removeExtra;
        EscapeWhitespaces = escape;
        NormalizerName = name;
        UnkSurface = unkSurface;

        var userDefined = new List<string>();
        _minScore = float.MaxValue; _maxScore = float.MinValue;
        for (int i = 0; i < pieces.Count; i++)
        {
            var (p, score, type) = pieces[i];
            if (type is SentencePieceType.Normal or SentencePieceType.UserDefined or SentencePieceType.Unused) _pieces.TryAdd(p, i);
            else _reserved.TryAdd(p, i);
            if (type == SentencePieceType.UserDefined) userDefined.Add(p);
            if (type == SentencePieceType.Byte && p.Length == 6 && p.StartsWith("<0x") && p[5] == '>') _byteIds[Convert.ToInt32(p[3..5], 16)] = i;
            if (type == SentencePieceType.Normal) { _minScore = Math.Min(_minScore, score); _maxScore = Math.Max(_maxScore, score); }
            _maxPieceChars = Math.Max(_maxPieceChars, p.Length);
        }
        _userDefined = userDefined.OrderByDescending(s => s.Length).ToArray();
        _userDefinedUtf8 = _userDefined.Select(Encoding.UTF8.GetBytes).OrderByDescending(b => b.Length).ToArray();
        int Find(string? piece, int dflt) => piece is not null && (_reserved.TryGetValue(piece, out var id) || _pieces.TryGetValue(piece, out id)) ? id : dflt;
        UnkId = pieces.FindIndex(p => p.Item3 == SentencePieceType.Unknown) is var u and >= 0 ? u : unkId;
        BosId = Find(bosPiece, bosId >= 0 && bosId < pieces.Count ? bosId : -1);
        EosId = Find(eosPiece, eosId >= 0 && eosId < pieces.Count ? eosId : -1);
        PadId = Find(padPiece, padId);

        if (charsmap is { Length: > 4 })
        {
            int trieSize = (int)BinaryPrimitives.ReadUInt32LittleEndian(charsmap);
            if (trieSize % 4 != 0 || 4 + trieSize > charsmap.Length) throw new FormatException("tokenizer.model: malformed precompiled_charsmap");
            _trie = new uint[trieSize / 4];
            for (int i = 0; i < _trie.Length; i++) _trie[i] = BinaryPrimitives.ReadUInt32LittleEndian(charsmap.AsSpan(4 + 4 * i));
            _normalized = charsmap[(4 + trieSize)..];
        }
    }

    /// <summary>Reads and parses a tokenizer.model file.</summary>
    public static SentencePieceModel FromFile(string path)
        => new(SafeCoDe.Torch.Runtime.BoundedFile.ReadAllBytes(path, SafeCoDe.Torch.Runtime.InputLimits.Current.MaxTokenizerFileBytes, "tokenizer.model"));

    /// <summary>The id of a piece (including control/byte pieces), or null.</summary>
    public int? PieceToId(string piece) => _reserved.TryGetValue(piece, out var id) || _pieces.TryGetValue(piece, out id) ? id : null;

    /// <summary>sentencepiece's <c>EncodeAsIds</c>: no BOS/EOS, control-token text is plain text.</summary>
    public List<int> Encode(string text)
    {
        var normalized = Normalize(text);
        var result = new List<int>();
        if (normalized.Length == 0) return result;
        var raw = IsBpe ? EncodeBpe(normalized) : EncodeUnigram(normalized);
        bool prevUnk = false;
        foreach (var (piece, id) in raw)
        {
            bool unk = id == UnkId;
            if (unk && ByteFallback)
            {
                foreach (var b in Encoding.UTF8.GetBytes(piece)) result.Add(_byteIds[b] >= 0 ? _byteIds[b] : UnkId);
                prevUnk = false;
                continue;
            }
            if (!(unk && prevUnk)) result.Add(id); // a run of unknown pieces is one <unk>
            prevUnk = unk;
        }
        return result;
    }

    // ------------------------------------------------------------------ normaliser
    /// <summary>sentencepiece's normaliser: charsmap rules, then dummy prefix and whitespace handling.</summary>
    public string Normalize(string text)
    {
        var input = Encoding.UTF8.GetBytes(text);
        var output = new List<byte>(input.Length * 2);
        var spaceSym = EscapeWhitespaces ? Encoding.UTF8.GetBytes(Space) : [(byte)' '];
        int pos = 0;
        if (RemoveExtraWhitespaces)
            while (pos < input.Length)
            {
                var (rep, len) = NormalizePrefix(input, pos);
                if (!(rep.Length == 1 && rep[0] == ' ')) break;
                pos += len;
            }
        if (pos >= input.Length) return "";
        if (AddDummyPrefix) output.AddRange(spaceSym);
        bool prevSpace = RemoveExtraWhitespaces;
        while (pos < input.Length)
        {
            var (rep, len) = NormalizePrefix(input, pos);
            int k = 0;
            if (prevSpace) while (k < rep.Length && rep[k] == ' ') k++;
            if (k < rep.Length)
            {
                for (; k < rep.Length; k++)
                    if (EscapeWhitespaces && rep[k] == ' ') output.AddRange(spaceSym); else output.Add(rep[k]);
                prevSpace = rep[^1] == ' ';
            }
            pos += len;
            if (!RemoveExtraWhitespaces) prevSpace = false;
        }
        if (RemoveExtraWhitespaces)
            while (output.Count >= spaceSym.Length && output.Skip(output.Count - spaceSym.Length).SequenceEqual(spaceSym))
                output.RemoveRange(output.Count - spaceSym.Length, spaceSym.Length);
        return Encoding.UTF8.GetString(output.ToArray());
    }

    private static readonly byte[] Replacement = [0xEF, 0xBF, 0xBD];

    private (byte[] Replacement, int Consumed) NormalizePrefix(byte[] input, int pos)
    {
        foreach (var ub in _userDefinedUtf8) // user-defined symbols are never normalised (longest first)
            if (input.AsSpan(pos).StartsWith(ub)) return (ub, ub.Length);
        if (_trie is not null)
        {
            int longest = 0, value = 0;
            uint nodePos = 0;
            uint unit = _trie[0];
            nodePos ^= Offset(unit);
            for (int i = pos; i < input.Length; i++)
            {
                nodePos ^= input[i];
                if (nodePos >= _trie.Length) break;
                unit = _trie[nodePos];
                if (Label(unit) != input[i]) break;
                nodePos ^= Offset(unit);
                if (((unit >> 8) & 1) != 0 && nodePos < _trie.Length) { longest = i + 1 - pos; value = (int)(_trie[nodePos] & 0x7FFFFFFF); }
            }
            if (longest > 0)
            {
                int end = Array.IndexOf(_normalized, (byte)0, value);
                return (_normalized[value..(end < 0 ? _normalized.Length : end)], longest);
            }
        }
        int n = Utf8Length(input, pos);
        return n == 0 ? (Replacement, 1) : (input[pos..(pos + n)], n);
    }

    private static uint Offset(uint unit) => (unit >> 10) << (int)((unit & (1u << 9)) >> 6);
    private static uint Label(uint unit) => unit & ((1u << 31) | 0xFF);

    /// <summary>Length of the valid UTF-8 character at pos, or 0 when malformed.</summary>
    private static int Utf8Length(byte[] s, int pos)
        => Rune.DecodeFromUtf8(s.AsSpan(pos), out _, out int len) == System.Buffers.OperationStatus.Done ? len : 0;

    // ------------------------------------------------------------------ BPE
    private List<(string Piece, int Id)> EncodeBpe(string normalized)
    {
        // symbols: code points, user-defined symbols whole (frozen)
        var syms = new List<(string Piece, bool Freeze)>();
        int i = 0;
        while (i < normalized.Length)
        {
            string? ud = null;
            foreach (var u in _userDefined) if (string.CompareOrdinal(normalized, i, u, 0, u.Length) == 0) { ud = u; break; }
            if (ud is not null) { syms.Add((ud, true)); i += ud.Length; continue; }
            int len = char.IsHighSurrogate(normalized[i]) && i + 1 < normalized.Length && char.IsLowSurrogate(normalized[i + 1]) ? 2 : 1;
            syms.Add((normalized.Substring(i, len), false));
            i += len;
        }
        int n = syms.Count;
        var piece = syms.Select(s => s.Piece).ToArray();
        var freeze = syms.Select(s => s.Freeze).ToArray();
        var prev = Enumerable.Range(-1, n).ToArray();
        var next = Enumerable.Range(1, n).Select(x => x == n ? -1 : x).ToArray();
        // max score first; ties: smaller left index first
        var agenda = new PriorityQueue<(int Left, int Right, int Size), (float Score, int Left)>(
            Comparer<(float Score, int Left)>.Create((a, b) => a.Score != b.Score ? b.Score.CompareTo(a.Score) : a.Left.CompareTo(b.Left)));
        void TryAdd(int l, int r)
        {
            if (l < 0 || r < 0 || freeze[l] || freeze[r]) return;
            var merged = piece[l] + piece[r];
            if (!_pieces.TryGetValue(merged, out var id)) return;
            agenda.Enqueue((l, r, merged.Length), (Pieces[id].Score, l));
        }
        for (int k = 1; k < n; k++) TryAdd(k - 1, k);
        while (agenda.TryDequeue(out var top, out _))
        {
            if (piece[top.Left].Length == 0 || piece[top.Right].Length == 0 || piece[top.Left].Length + piece[top.Right].Length != top.Size) continue;
            if (next[top.Left] != top.Right) continue;
            piece[top.Left] += piece[top.Right];
            next[top.Left] = next[top.Right];
            if (next[top.Right] >= 0) prev[next[top.Right]] = top.Left;
            piece[top.Right] = "";
            TryAdd(prev[top.Left], top.Left);
            TryAdd(top.Left, next[top.Left]);
        }
        var res = new List<(string, int)>();
        for (int k = 0; k >= 0 && k < n; k = next[k])
            Resegment(piece[k], res);
        return res;
    }

    private void Resegment(string w, List<(string, int)> output)
    {
        int id = PieceToId(w) ?? UnkId;
        if (Pieces[id].Type != SentencePieceType.Unused) { output.Add((w, id)); return; }
        // an unused piece: split it back the way it was merged (rare; sentencepiece keeps a reverse-merge table)
        for (int cut = w.Length - 1; cut > 0; cut--)
        {
            var (a, b) = (w[..cut], w[cut..]);
            if (PieceToId(a) is { } ia && PieceToId(b) is { } ib) { Resegment(a, output); Resegment(b, output); return; }
        }
        output.Add((w, id));
    }

    // ------------------------------------------------------------------ unigram
    private List<(string Piece, int Id)> EncodeUnigram(string normalized)
    {
        int size = normalized.Length;
        float unkScore = _minScore - 10.0f;
        var bestScore = new float[size + 1];
        var startsAt = new int[size + 1];
        var bestId = new int[size + 1];
        Array.Fill(startsAt, -1);
        int pos = 0;
        while (pos < size)
        {
            float till = bestScore[pos];
            int charLen = char.IsHighSurrogate(normalized[pos]) && pos + 1 < size && char.IsLowSurrogate(normalized[pos + 1]) ? 2 : 1;
            bool hasSingle = false;
            int maxLen = Math.Min(_maxPieceChars, size - pos);
            for (int len = 1; len <= maxLen; len++)
            {
                if (!_pieces.TryGetValue(normalized.Substring(pos, len), out var id)) continue;
                var type = Pieces[id].Type;
                if (type == SentencePieceType.Unused) continue;
                int end = pos + len;
                // as sentencepiece: the piece score is a double (the ternary with the user-defined bonus makes it one), the
                // candidate is summed in double and compared with the float stored on the node; ties keep the earlier one
                double score = type == SentencePieceType.UserDefined ? Utf8Bytes(normalized, pos, len) * _maxScore - 0.1 : Pieces[id].Score;
                double cand = score + till;
                if (startsAt[end] == -1 || cand > bestScore[end]) { bestScore[end] = (float)cand; startsAt[end] = pos; bestId[end] = id; }
                if (len == charLen) hasSingle = true;
            }
            if (!hasSingle)
            {
                int end = pos + charLen;
                float cand = unkScore + till;
                if (startsAt[end] == -1 || cand > bestScore[end]) { bestScore[end] = cand; startsAt[end] = pos; bestId[end] = UnkId; }
            }
            pos += charLen;
        }
        var res = new List<(string, int)>();
        for (int end = size; end > 0; end = startsAt[end]) res.Add((normalized[startsAt[end]..end], bestId[end]));
        res.Reverse();
        return res;
    }

    private static int Utf8Bytes(string s, int start, int len) => Encoding.UTF8.GetByteCount(s.AsSpan(start, len));

    // ------------------------------------------------------------------ decode
    /// <summary>sentencepiece's <c>DecodeIds</c> for a run of ids (control ids produce nothing).</summary>
    public string Decode(IEnumerable<int> ids, bool stripLeadingSpace = true)
    {
        var sb = new StringBuilder();
        var bytes = new List<byte>();
        bool atStart = stripLeadingSpace && AddDummyPrefix;
        void FlushBytes()
        {
            if (bytes.Count == 0) return;
            sb.Append(DecodeBytes(bytes));
            bytes.Clear();
            atStart = false;
        }
        foreach (var id in ids)
        {
            if (id < 0 || id >= Pieces.Count) continue;
            var (p, _, type) = Pieces[id];
            if (type == SentencePieceType.Byte) { bytes.Add(Convert.ToByte(p[3..5], 16)); continue; }
            FlushBytes();
            if (type == SentencePieceType.Control) continue;
            if (type == SentencePieceType.Unknown) { sb.Append(UnkSurface); atStart = false; continue; }
            // only the first piece loses its dummy-prefix space ("▁", "▁world" decodes as " world")
            if (atStart && p.StartsWith(Space, StringComparison.Ordinal)) p = p[Space.Length..];
            atStart = false;
            sb.Append(p.Replace(Space, " ", StringComparison.Ordinal));
        }
        FlushBytes();
        return sb.ToString();
    }

    /// <summary>UTF-8 bytes to text; each byte of an invalid sequence becomes U+FFFD (as sentencepiece does).</summary>
    internal static string DecodeBytes(List<byte> bytes)
    {
        var arr = bytes.ToArray();
        var sb = new StringBuilder();
        int i = 0;
        while (i < arr.Length)
        {
            if (Rune.DecodeFromUtf8(arr.AsSpan(i), out var r, out int len) == System.Buffers.OperationStatus.Done) { sb.Append(r.ToString()); i += len; }
            else { sb.Append('\uFFFD'); i++; }
        }
        return sb.ToString();
    }
}

/// <summary>Just enough protobuf wire format to read a ModelProto.</summary>
internal static class Proto
{
    public static IEnumerable<(int Field, int Wire, ulong Value, byte[] Bytes)> Fields(byte[] data)
    {
        int pos = 0;
        while (pos < data.Length)
        {
            ulong key = Varint(data, ref pos);
            int field = (int)(key >> 3), wire = (int)(key & 7);
            switch (wire)
            {
                case 0: yield return (field, wire, Varint(data, ref pos), []); break;
                case 1: yield return (field, wire, BinaryPrimitives.ReadUInt64LittleEndian(data.AsSpan(pos, 8)), []); pos += 8; break;
                case 5: yield return (field, wire, BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(pos, 4)), []); pos += 4; break;
                case 2:
                    {
                        int len = checked((int)Varint(data, ref pos));
                        if (len < 0 || pos + len > data.Length) throw new FormatException("protobuf: length past the end");
                        yield return (field, wire, 0, data[pos..(pos + len)]);
                        pos += len;
                        break;
                    }
                default: throw new FormatException($"protobuf: unsupported wire type {wire}");
            }
        }
    }

    private static ulong Varint(byte[] data, ref int pos)
    {
        ulong result = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            if (pos >= data.Length) throw new FormatException("protobuf: truncated varint");
            byte b = data[pos++];
            result |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0) return result;
        }
        throw new FormatException("protobuf: varint too long");
    }
}
