using System.IO.Compression;
using System.Text;

namespace SafeCoDe.Torch.Processing.Tokenizers;

/// <summary>
/// NFC / NFD / NFKC / NFKD on Unicode 15 data embedded in the assembly. The engine runs with InvariantGlobalization,
/// where <see cref="string.Normalize(NormalizationForm)"/> leaves non-ASCII text unchanged, so tokenizers that normalise
/// (Qwen2: NFC; BERT: NFD for accent stripping) need this. Table: tools/unicode/make_normalization_data.py.
/// </summary>
public static class UnicodeNormalization
{
    private const int SBase = 0xAC00, LBase = 0x1100, VBase = 0x1161, TBase = 0x11A7;
    private const int LCount = 19, VCount = 21, TCount = 28, NCount = VCount * TCount, SCount = LCount * NCount;

    private sealed class Tables
    {
        public readonly Dictionary<int, byte> Ccc = new();
        public readonly Dictionary<int, int[]> Canonical = new();
        public readonly Dictionary<int, int[]> Compatibility = new();
        public readonly Dictionary<long, int> Compose = new();
    }

    private static readonly Lazy<Tables> Data = new(LoadTables, LazyThreadSafetyMode.ExecutionAndPublication);

    private static Tables LoadTables()
    {
        var t = new Tables();
        var exclusions = new HashSet<int>();
        using var s = typeof(UnicodeNormalization).Assembly.GetManifestResourceStream("tokenizers.unicode-normalization.txt.gz")
            ?? throw new InvalidOperationException("embedded Unicode normalisation table is missing");
        using var gz = new GZipStream(s, CompressionMode.Decompress);
        using var reader = new StreamReader(gz, Encoding.ASCII);
        while (reader.ReadLine() is { } line)
        {
            if (line.Length == 0) continue;
            var parts = line.Split(' ');
            int cp = Convert.ToInt32(parts[0], 16);
            switch (parts[1])
            {
                case "c": t.Ccc[cp] = byte.Parse(parts[2]); break;
                case "d": t.Canonical[cp] = parts.Skip(2).Select(p => Convert.ToInt32(p, 16)).ToArray(); break;
                case "k": t.Compatibility[cp] = parts.Skip(2).Select(p => Convert.ToInt32(p, 16)).ToArray(); break;
                case "x": exclusions.Add(cp); break;
            }
        }
        foreach (var (cp, d) in t.Canonical)
            if (d.Length == 2 && !exclusions.Contains(cp)) t.Compose[((long)d[0] << 21) | (uint)d[1]] = cp;
        return t;
    }

    /// <summary>Normalises <paramref name="text"/> to <paramref name="form"/>; ASCII text is returned as is.</summary>
    public static string Normalize(string text, NormalizationForm form)
    {
        if (Ascii.IsValid(text)) return text;
        var t = Data.Value;
        bool compat = form is NormalizationForm.FormKC or NormalizationForm.FormKD;
        bool compose = form is NormalizationForm.FormC or NormalizationForm.FormKC;
        var cps = new List<int>(text.Length);
        foreach (var r in text.EnumerateRunes()) Decompose(t, r.Value, compat, cps);
        // canonical ordering: stable sort of each run of non-starters by combining class
        for (int i = 1; i < cps.Count; i++)
        {
            int cc = Ccc(t, cps[i]);
            if (cc == 0) continue;
            int j = i;
            while (j > 0 && Ccc(t, cps[j - 1]) > cc) { (cps[j - 1], cps[j]) = (cps[j], cps[j - 1]); j--; }
        }
        if (compose) cps = Compose(t, cps);
        var sb = new StringBuilder(cps.Count + 8);
        foreach (var cp in cps) sb.Append(char.ConvertFromUtf32(cp));
        return sb.ToString();
    }

    private static int Ccc(Tables t, int cp) => cp < 0x300 ? 0 : t.Ccc.TryGetValue(cp, out var c) ? c : 0;

    private static void Decompose(Tables t, int cp, bool compat, List<int> output)
    {
        if (cp < 0xA0) { output.Add(cp); return; }
        if (cp is >= SBase and < SBase + SCount)
        {
            int s = cp - SBase;
            output.Add(LBase + s / NCount);
            output.Add(VBase + s % NCount / TCount);
            if (s % TCount != 0) output.Add(TBase + s % TCount);
            return;
        }
        if (t.Canonical.TryGetValue(cp, out var d) || (compat && t.Compatibility.TryGetValue(cp, out d)))
        {
            foreach (var c in d) Decompose(t, c, compat, output);
            return;
        }
        output.Add(cp);
    }

    private static List<int> Compose(Tables t, List<int> cps)
    {
        var res = new List<int>(cps.Count);
        int starter = -1, prevCcc = 0;
        foreach (var c in cps)
        {
            int cc = Ccc(t, c);
            if (starter >= 0)
            {
                bool adjacent = res.Count - 1 == starter;
                if ((adjacent || (prevCcc != 0 && prevCcc < cc)) && TryCompose(t, res[starter], c, out var composed))
                {
                    res[starter] = composed;
                    continue;
                }
            }
            if (cc == 0) starter = res.Count;
            res.Add(c);
            prevCcc = cc;
        }
        return res;
    }

    private static bool TryCompose(Tables t, int a, int b, out int composed)
    {
        if (a is >= LBase and < LBase + LCount && b is >= VBase and < VBase + VCount)
        {
            composed = SBase + ((a - LBase) * VCount + (b - VBase)) * TCount;
            return true;
        }
        if (a is >= SBase and < SBase + SCount && (a - SBase) % TCount == 0 && b is > TBase and < TBase + TCount)
        {
            composed = a + (b - TBase);
            return true;
        }
        return t.Compose.TryGetValue(((long)a << 21) | (uint)b, out composed);
    }
}
