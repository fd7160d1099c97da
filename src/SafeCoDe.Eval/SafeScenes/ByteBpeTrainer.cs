using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace SafeCoDe.Eval.SafeScenes;

/// <summary>
/// Trains a small byte-level BPE (GPT-2 style: regex pre-split, bytes mapped to printable characters, merges of the
/// most frequent adjacent pair) on a corpus, and writes it as tokenizer.json + tokenizer_config.json, which
/// <see cref="SafeCoDe.Torch.Processing.Tokenizers.TokenizerLoader"/> (and HF's tokenizers) read. Deterministic:
/// ties between pairs are broken by ordinal order.
/// </summary>
public static class ByteBpeTrainer
{
    /// <summary>The special tokens, at ids 0–4.</summary>
    public static readonly IReadOnlyList<string> Specials = ["<unk>", "<s>", "</s>", "<pad>", "<image>"];
    /// <summary>Id of &lt;s&gt;.</summary>
    public const int BosId = 1;
    /// <summary>Id of &lt;/s&gt;.</summary>
    public const int EosId = 2;
    /// <summary>Id of &lt;pad&gt;.</summary>
    public const int PadId = 3;
    /// <summary>Id of the &lt;image&gt; placeholder.</summary>
    public const int ImageId = 4;

    private static readonly Regex Split = new(@"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+", RegexOptions.CultureInvariant);

    /// <summary>GPT-2's byte → printable character table.</summary>
    private static readonly char[] ByteToChar = BuildTable();

    private static char[] BuildTable()
    {
        var map = new char[256];
        int n = 0;
        for (int b = 0; b < 256; b++)
        {
            bool direct = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            map[b] = direct ? (char)b : (char)(256 + n++);
        }
        return map;
    }

    /// <summary>Learns merges until the vocabulary has <paramref name="vocabSize"/> entries or no pair occurs twice.</summary>
    /// <returns>The vocabulary (token → id) and the merges in rank order.</returns>
    public static (Dictionary<string, int> Vocab, List<(string A, string B)> Merges) Train(IEnumerable<string> corpus, int vocabSize)
    {
        if (vocabSize < Specials.Count + 256) throw new ArgumentOutOfRangeException(nameof(vocabSize), "the vocabulary must hold the specials and 256 bytes");
        var counts = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var text in corpus)
            foreach (Match m in Split.Matches(text))
            {
                var w = string.Concat(Encoding.UTF8.GetBytes(m.Value).Select(b => ByteToChar[b]));
                counts[w] = counts.GetValueOrDefault(w) + 1;
            }
        var words = counts.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => (Symbols: kv.Key.Select(c => c.ToString()).ToList(), Count: kv.Value)).ToList();

        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var s in Specials) vocab[s] = vocab.Count;
        foreach (var c in ByteToChar) vocab[c.ToString()] = vocab.Count;
        var merges = new List<(string, string)>();
        while (vocab.Count < vocabSize)
        {
            var pairs = new Dictionary<(string, string), long>();
            foreach (var (sym, n) in words)
                for (int i = 0; i + 1 < sym.Count; i++)
                {
                    var p = (sym[i], sym[i + 1]);
                    pairs[p] = pairs.GetValueOrDefault(p) + n;
                }
            (string A, string B) best = default;
            long bestN = 1;
            foreach (var (p, n) in pairs)
            {
                if (vocab.ContainsKey(p.Item1 + p.Item2)) continue;
                int cmp = n.CompareTo(bestN);
                if (cmp > 0 || (cmp == 0 && best.A is not null && ComparePair(p, best) < 0)) { best = p; bestN = n; }
            }
            if (best.A is null) break;
            merges.Add(best);
            var merged = best.A + best.B;
            vocab[merged] = vocab.Count;
            foreach (var (sym, _) in words)
                for (int i = 0; i + 1 < sym.Count; i++)
                    if (sym[i] == best.A && sym[i + 1] == best.B) { sym[i] = merged; sym.RemoveAt(i + 1); }
        }
        return (vocab, merges);
    }

    private static int ComparePair((string, string) x, (string, string) y)
    {
        int c = string.CompareOrdinal(x.Item1, y.Item1);
        return c != 0 ? c : string.CompareOrdinal(x.Item2, y.Item2);
    }

    /// <summary>Trains on <paramref name="corpus"/> and writes tokenizer.json and tokenizer_config.json into <paramref name="dir"/>; returns the vocabulary size.</summary>
    public static int TrainAndSave(IEnumerable<string> corpus, int vocabSize, string dir)
    {
        var (vocab, merges) = Train(corpus, vocabSize);
        Directory.CreateDirectory(dir);
        var vocabJson = new JsonObject();
        foreach (var (t, id) in vocab.OrderBy(kv => kv.Value)) vocabJson[t] = id;
        var added = new JsonArray();
        for (int i = 0; i < Specials.Count; i++)
            added.Add(new JsonObject
            {
                ["id"] = i, ["content"] = Specials[i], ["single_word"] = false, ["lstrip"] = false, ["rstrip"] = false,
                ["normalized"] = false, ["special"] = true,
            });
        JsonObject ByteLevel(bool regex) => new() { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = false, ["use_regex"] = regex };
        var json = new JsonObject
        {
            ["version"] = "1.0",
            ["truncation"] = null,
            ["padding"] = null,
            ["added_tokens"] = added,
            ["normalizer"] = null,
            ["pre_tokenizer"] = ByteLevel(true),
            ["post_processor"] = new JsonObject
            {
                ["type"] = "TemplateProcessing",
                ["single"] = new JsonArray(
                    new JsonObject { ["SpecialToken"] = new JsonObject { ["id"] = "<s>", ["type_id"] = 0 } },
                    new JsonObject { ["Sequence"] = new JsonObject { ["id"] = "A", ["type_id"] = 0 } }),
                ["pair"] = new JsonArray(
                    new JsonObject { ["SpecialToken"] = new JsonObject { ["id"] = "<s>", ["type_id"] = 0 } },
                    new JsonObject { ["Sequence"] = new JsonObject { ["id"] = "A", ["type_id"] = 0 } },
                    new JsonObject { ["Sequence"] = new JsonObject { ["id"] = "B", ["type_id"] = 1 } }),
                ["special_tokens"] = new JsonObject { ["<s>"] = new JsonObject { ["id"] = "<s>", ["ids"] = new JsonArray(BosId), ["tokens"] = new JsonArray("<s>") } },
            },
            ["decoder"] = ByteLevel(true),
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = null, ["continuing_subword_prefix"] = null, ["end_of_word_suffix"] = null,
                ["fuse_unk"] = false, ["byte_fallback"] = false, ["ignore_merges"] = false,
                ["vocab"] = vocabJson,
                ["merges"] = new JsonArray(merges.Select(m => (JsonNode)JsonValue.Create($"{m.A} {m.B}")!).ToArray()),
            },
        };
        var o = new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), json.ToJsonString(o));
        var config = new JsonObject
        {
            ["tokenizer_class"] = "PreTrainedTokenizerFast",
            ["bos_token"] = "<s>", ["eos_token"] = "</s>", ["unk_token"] = "<unk>", ["pad_token"] = "<pad>",
            ["add_bos_token"] = true, ["add_eos_token"] = false, ["clean_up_tokenization_spaces"] = false,
            ["model_max_length"] = 2048,
        };
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), config.ToJsonString(o));
        return vocab.Count;
    }
}
