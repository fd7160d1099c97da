using System.Security.Cryptography;
using System.Text;

namespace SafeCoDe.Eval.Benchmarks.Helpfulness;

/// <summary>
/// VLMEvalKit's data files (<c>$LMUData/&lt;dataset&gt;.tsv</c>): a header row, then one row per sample, tab-separated
/// as pandas writes them (a field holding a tab, a newline or a quote is quoted with <c>"</c>, a quote doubled). The
/// <c>image</c> column holds a base64 image, a Python list of base64 images, or (64 characters or fewer) the
/// <c>index</c> of another row whose image is reused; a row without an image is dropped as VLMEvalKit drops it.
/// </summary>
internal sealed class VlmEvalTsv
{
    private readonly Dictionary<string, int> _columns;
    private readonly Dictionary<string, string> _imageByIndex = new(StringComparer.Ordinal);

    private VlmEvalTsv(string path, string[] header, List<(int Line, string[] Cells)> rows)
    {
        Path = path;
        _columns = header.Select((h, i) => (h, i)).GroupBy(x => x.h).ToDictionary(g => g.Key, g => g.First().i, StringComparer.Ordinal);
        Rows = rows;
        if (_columns.TryGetValue("index", out var ix) && _columns.TryGetValue("image", out var im))
            foreach (var (_, cells) in rows)
                if (ix < cells.Length && im < cells.Length && cells[im].Length > 64) _imageByIndex.TryAdd(cells[ix], cells[im]);
    }

    /// <summary>The file.</summary>
    public string Path { get; }

    /// <summary>The data rows with their line numbers (1-based, the header is line 1).</summary>
    public IReadOnlyList<(int Line, string[] Cells)> Rows { get; }

    /// <summary>Whether the header has a column.</summary>
    public bool Has(string column) => _columns.ContainsKey(column);

    /// <summary>A row's cell ("" when the row is short or the column absent; pandas writes NaN as "").</summary>
    public string Cell(string[] row, string column) => _columns.TryGetValue(column, out var i) && i < row.Length ? row[i] : "";

    /// <summary>Reads a TSV file; throws <see cref="BenchmarkLayoutException"/> naming the columns that are missing.</summary>
    public static VlmEvalTsv Read(string path, IReadOnlyList<string> required)
    {
        var records = Split(File.ReadAllText(path, Encoding.UTF8));
        if (records.Count == 0) throw new BenchmarkLayoutException($"{path} is empty (expected VLMEvalKit's TSV with a header row)");
        var header = records[0].Cells;
        var missing = required.Where(c => !header.Contains(c)).ToList();
        if (missing.Count > 0)
            throw new BenchmarkLayoutException($"{path} lacks the column(s) {string.Join(", ", missing)} (it has {string.Join(", ", header)})");
        return new VlmEvalTsv(path, header, records.Skip(1).Where(r => r.Cells.Any(c => c.Length > 0)).ToList());
    }

    /// <summary>The MD5 of a file as lower-case hex (VLMEvalKit checks its TSVs this way).</summary>
    public static string Md5(string path)
    {
        using var s = File.OpenRead(path);
        return Convert.ToHexStringLower(MD5.HashData(s));
    }

    /// <summary>
    /// The images of a row as bytes (one, or several for a list cell), or null with why not; an index reference is
    /// followed once. An empty cell gives an empty list (VLMEvalKit drops such rows).
    /// </summary>
    public IReadOnlyList<byte[]>? Images(string[] row, out string? problem)
    {
        problem = null;
        var cell = Cell(row, "image").Trim();
        if (cell.Length == 0) return [];
        if (cell.Length <= 64)
        {
            if (!_imageByIndex.TryGetValue(cell, out var target)) { problem = $"field 'image' refers to row index '{cell}', which no row with an image has"; return null; }
            cell = target.Trim();
        }
        IReadOnlyList<string?> parts = [cell];
        if (cell.StartsWith('['))
        {
            var list = PythonLiteral.List(cell, out var why);
            if (list is null) { problem = $"field 'image' {why}"; return null; }
            parts = list;
        }
        var images = new List<byte[]>();
        foreach (var (p, k) in parts.Select((p, k) => (p, k)))
        {
            try { images.Add(Convert.FromBase64String(p ?? "")); }
            catch (FormatException) { problem = $"field 'image'{(parts.Count > 1 ? $" item {k + 1}" : "")} is not base64"; return null; }
        }
        return images;
    }

    /// <summary>Splits pandas' tab-separated text into records, honouring quoted fields (which may hold tabs and newlines).</summary>
    internal static List<(int Line, string[] Cells)> Split(string text)
    {
        var records = new List<(int, string[])>();
        var cells = new List<string>();
        var cell = new StringBuilder();
        int line = 1, start = 1;
        bool quoted = false, any = false;
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (quoted)
            {
                if (c == '"' && i + 1 < text.Length && text[i + 1] == '"') { cell.Append('"'); i++; }
                else if (c == '"') quoted = false;
                else { if (c == '\n') line++; cell.Append(c); }
                continue;
            }
            switch (c)
            {
                case '"' when cell.Length == 0: quoted = true; any = true; break;
                case '\t': cells.Add(cell.ToString()); cell.Clear(); any = true; break;
                case '\r' when i + 1 < text.Length && text[i + 1] == '\n': break;
                case '\n':
                    cells.Add(cell.ToString()); cell.Clear();
                    records.Add((start, cells.ToArray())); cells.Clear();
                    line++; start = line; any = false;
                    break;
                default: cell.Append(c); any = true; break;
            }
        }
        if (any || cell.Length > 0) { cells.Add(cell.ToString()); records.Add((start, cells.ToArray())); }
        if (records.Count > 0 && records[0].Item2.Length > 0 && records[0].Item2[0].StartsWith('\uFEFF'))
            records[0].Item2[0] = records[0].Item2[0][1..];
        return records;
    }
}
