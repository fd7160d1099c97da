using System.Collections.Concurrent;

namespace SafeCoDe.Torch.Decoding.Methods.Baselines;

/// <summary>
/// BPE with merge dropout over a subword-nmt merge table (Provilkov et al.'s BPE-dropout, in the form SafeDecoding's
/// retokenization baseline calls it: no begin sentinel, <c>&lt;/w&gt;</c> at the end of a word, a space after every
/// sub-piece but the last). Hand-written here because no .NET library implements BPE-dropout on a subword-nmt table.
/// </summary>
public static class BpeDropout
{
    private static readonly ConcurrentDictionary<string, IReadOnlyDictionary<(string, string), int>> Tables = new();

    /// <summary>The merge table (<c>builtin</c>, or a file in subword-nmt format): each pair's priority, 1 = merged first.</summary>
    public static IReadOnlyDictionary<(string, string), int> Table(string source) => Tables.GetOrAdd(source, s =>
    {
        using var stream = s == "builtin"
            ? typeof(BpeDropout).Assembly.GetManifestResourceStream("baselines.subword_nmt.voc") ?? throw new InvalidOperationException("the built-in merge table is missing")
            : Runtime.BoundedFile.OpenRead(s, "--merge-table");
        return Read(new StreamReader(stream), s);
    });

    /// <summary>Reads merges, one "a b" pair per line in priority order (a <c>#version</c> line skipped).</summary>
    public static IReadOnlyDictionary<(string, string), int> Read(TextReader reader, string name)
    {
        var table = new Dictionary<(string, string), int>();
        int priority = 1, line = 0;
        for (string? l; (l = reader.ReadLine()) is not null;)
        {
            line++;
            if (l.StartsWith("#version", StringComparison.Ordinal)) continue;
            var parts = l.Split(' ');
            if (parts.Length != 2) throw new InvalidDataException($"{name}:{line}: expected a merge 'a b', got '{l}'");
            table.TryAdd((parts[0], parts[1]), priority++);
        }
        return table;
    }

    /// <summary>The text's words (split on single spaces, empty pieces dropped) each split with dropout, joined with spaces.</summary>
    public static string SplitText(IReadOnlyDictionary<(string, string), int> table, string text, double dropout, Random rng) =>
        string.Join(' ', text.Split(' ').Where(w => w.Length > 0).Select(w => string.Join(' ', SplitWord(table, w, dropout, rng))));

    /// <summary>
    /// One word: its characters, the last one with <c>&lt;/w&gt;</c>, merged best pair first (ties: leftmost); each
    /// merge is skipped with probability <paramref name="dropout"/> — a skipped merge may be taken again after the next
    /// merge that happens. Every piece but the last gets a trailing space.
    /// </summary>
    public static List<string> SplitWord(IReadOnlyDictionary<(string, string), int> table, string word, double dropout, Random rng)
    {
        var t = word.EnumerateRunes().Select(r => r.ToString()).ToList(); // code points, as Python's list(word)
        t[^1] += "</w>";
        var skipped = new HashSet<(int Priority, int Position)>();
        while (true)
        {
            (int Priority, int Position)? best = null;
            for (int i = 0; i + 1 < t.Count; i++)
                if (table.TryGetValue((t[i], t[i + 1]), out int p) && !skipped.Contains((p, i)) && (best is null || (p, i).CompareTo(best.Value) < 0))
                    best = (p, i);
            if (best is not { } b) break;
            if (rng.NextDouble() < dropout) { skipped.Add(b); continue; }
            t[b.Position] += t[b.Position + 1];
            t.RemoveAt(b.Position + 1);
            skipped.Clear();
        }
        t[^1] = t[^1].Replace("</w>", "");
        for (int i = 0; i + 1 < t.Count; i++) t[i] += " ";
        if (t[^1].Length == 0 && t.Count > 1) { t.RemoveAt(t.Count - 1); t[^1] = t[^1].TrimEnd(' '); }
        return t;
    }
}
