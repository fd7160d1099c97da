using System.Collections;
using System.Globalization;
using Parquet;
using Parquet.Serialization;

namespace SafeCoDe.Eval.Benchmarks;

/// <summary>One parquet row as column name → value (a struct column is a nested dictionary; null values may be absent).</summary>
internal readonly record struct ParquetRow(string File, long Index, IReadOnlyDictionary<string, object>? Values, string? Problem)
{
    /// <summary>The row's position id: <c>&lt;file name&gt;#&lt;0-based row in the file&gt;</c>.</summary>
    public string Position => $"{File}#{Index}";

    /// <summary>A cell; null when the column is absent or the value is null.</summary>
    public object? this[string column] => Values is not null && Values.TryGetValue(column, out var v) ? v : null;

    /// <summary>Whether the file has the column at all (to tell "null" from "no such column" in messages).</summary>
    public bool Has(string column) => Values?.ContainsKey(column) == true;
}

/// <summary>Streams parquet files (Hugging Face dataset shards) one row group at a time.</summary>
internal static class ParquetRows
{
    /// <summary>
    /// The rows of <paramref name="path"/> in file order. A file or row group that cannot be read yields one row with
    /// <see cref="ParquetRow.Problem"/> set (its index is the first row it would have held) and reading goes on.
    /// </summary>
    public static IEnumerable<ParquetRow> Read(string path)
    {
        var name = Path.GetFileName(path);
        long[] counts = [];
        string? problem = null;
        try
        {
            using var s = SafeCoDe.Torch.Runtime.BoundedFile.OpenRead(path, "parquet file");
            var reader = ParquetReader.CreateAsync(s).GetAwaiter().GetResult();
            try
            {
                counts = new long[reader.RowGroupCount];
                for (int g = 0; g < counts.Length; g++)
                    using (var rg = reader.OpenRowGroupReader(g)) counts[g] = rg.RowCount;
            }
            finally { reader.DisposeAsync().AsTask().GetAwaiter().GetResult(); }
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            problem = $"'{name}' is not a readable parquet file: {ex.Message}";
        }
        if (problem is not null) { yield return new ParquetRow(name, 0, null, problem); yield break; }

        long index = 0;
        for (int g = 0; g < counts.Length; g++)
        {
            List<Dictionary<string, object>>? rows = null;
            try
            {
                using var s = SafeCoDe.Torch.Runtime.BoundedFile.OpenRead(path, "parquet file");
                rows = ParquetSerializer.DeserializeUntypedAsync(s, null, g).GetAwaiter().GetResult().Data.ToList();
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                problem = $"'{name}' row group {g} (rows {index}–{index + counts[g] - 1}) cannot be read: {ex.Message}";
            }
            if (rows is null) { yield return new ParquetRow(name, index, null, problem); index += counts[g]; continue; }
            // the row index stays the file's row number even if a group held fewer rows than its metadata says
            long next = index + counts[g];
            foreach (var r in rows) yield return new ParquetRow(name, index++, r, null);
            index = Math.Max(index, next);
        }
    }

    /// <summary>A text cell; a reason when it is missing, null, empty or not text (integers are accepted as their decimal text).</summary>
    public static string? Text(ParquetRow row, string column, out string? problem, bool allowEmpty = false)
    {
        problem = null;
        var v = row[column];
        string? s = v switch
        {
            null => null,
            string t => t,
            ReadOnlyMemory<char> m => m.ToString(),
            long or int or short or sbyte or byte or ushort or uint or ulong => Convert.ToString(v, CultureInfo.InvariantCulture),
            _ => null,
        };
        if (s is null)
        {
            problem = v is null ? $"field '{column}' is {(row.Has(column) ? "null" : "missing or null")}" : $"field '{column}' is {v.GetType().Name}, expected a string";
            return null;
        }
        if (!allowEmpty && string.IsNullOrWhiteSpace(s)) { problem = $"field '{column}' is empty"; return null; }
        return s;
    }

    /// <summary>An optional text cell (null when absent, null or not scalar).</summary>
    public static string? Optional(ParquetRow row, string column) => Text(row, column, out _, allowEmpty: true);

    /// <summary>
    /// A cell the metrics group by: its text, or null when the column is absent or the value null or empty; a reason
    /// when it holds anything but text (the record would otherwise drop out of the per-group rates unnoticed).
    /// </summary>
    public static string? Group(ParquetRow row, string column, out string? problem)
    {
        problem = null;
        switch (row[column])
        {
            case null: return null;
            case string t: return string.IsNullOrWhiteSpace(t) ? null : t;
            case ReadOnlyMemory<char> m: return m.Span.IsWhiteSpace() ? null : m.ToString();
            case var v: problem = $"field '{column}' is {Shown(v)}, expected a string (the metrics group by it)"; return null;
        }
    }

    /// <summary>An integer cell (integral numbers and decimal text); a reason otherwise.</summary>
    public static long? Integer(ParquetRow row, string column, out string? problem)
    {
        problem = null;
        var v = row[column];
        switch (v)
        {
            case long or int or short or sbyte or byte or ushort or uint: return Convert.ToInt64(v, CultureInfo.InvariantCulture);
            case double d when d == Math.Floor(d) && Math.Abs(d) < 1e15: return (long)d;
            case float f when f == MathF.Floor(f) && MathF.Abs(f) < 1e7f: return (long)f;
            case string t when long.TryParse(t.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var n): return n;
            case null: problem = $"field '{column}' is {(row.Has(column) ? "null" : "missing or null")}"; return null;
            default: problem = $"field '{column}' is {Shown(v)}, expected an integer"; return null;
        }
    }

    /// <summary>
    /// An image cell: the Hugging Face <c>Image</c> struct {bytes, path} (bytes win; a path alone is taken relative to
    /// the parquet file), or plain binary. A reason when it holds neither.
    /// </summary>
    public static ImageRef? Image(ParquetRow row, string column, string parquetDir, out string? problem)
    {
        problem = null;
        var v = row[column];
        byte[]? bytes = null;
        string? path = null;
        switch (v)
        {
            case null: problem = $"field '{column}' is {(row.Has(column) ? "null" : "missing or null")}"; return null;
            case byte[] b: bytes = b; break;
            case ReadOnlyMemory<byte> m: bytes = m.ToArray(); break;
            case IDictionary d:
                bytes = d.Contains("bytes") ? d["bytes"] switch { byte[] b => b, ReadOnlyMemory<byte> m => m.ToArray(), _ => null } : null;
                path = d.Contains("path") ? d["path"] as string : null;
                break;
            default: problem = $"field '{column}' is {Shown(v)}, expected an image struct {{bytes, path}}"; return null;
        }
        var origin = $"{row.Position} field '{column}'";
        if (bytes is { Length: > 0 }) return new ImageRef.Embedded(bytes, origin);
        if (!string.IsNullOrWhiteSpace(path))
        {
            string? full = null;
            try { full = Path.GetFullPath(Path.Combine(parquetDir, path)); }
            catch (ArgumentException) { } // characters no path may hold
            if (full is not null && DataFiles.Check(parquetDir, full, path) is { } refused)
            {
                problem = $"field '{column}' has no image bytes and its path {refused}";
                return null;
            }
            if (full is not null) return new ImageRef.File(full);
            problem = $"field '{column}' has no image bytes and its path '{path}' is not a file next to the parquet file";
            return null;
        }
        problem = $"field '{column}' has no image bytes";
        return null;
    }

    /// <summary>Null when the image decodes; otherwise why not, naming <paramref name="column"/>.</summary>
    public static string? Check(ImageRef image, string column) => image switch
    {
        ImageRef.Embedded e => ImageCheck.Bytes(e.Bytes, $"field '{column}'"),
        ImageRef.File f => ImageCheck.File(f.Path, $"{f.Path} (field '{column}')", Path.GetDirectoryName(f.Path)!), // Image() checked it against the parquet folder
        _ => null,
    };

    private static string Shown(object v) => v is IDictionary ? "a struct" : v is IList ? "a list" : v.GetType().Name;

    /// <summary>
    /// The parquet files of a snapshot: <paramref name="root"/> itself when it is a parquet file, else those under
    /// <c>data/</c>, else directly in <paramref name="root"/>, else anywhere below it (hidden folders such as .cache
    /// and linked folders skipped, within <see cref="SafeCoDe.Torch.Runtime.SafeFiles.Walk"/>'s limits); ordinal path order. Null when there are none.
    /// </summary>
    public static (string Dir, string[] Files)? Find(string root)
    {
        var full = Path.GetFullPath(root);
        if (File.Exists(full) && full.EndsWith(".parquet", StringComparison.OrdinalIgnoreCase)) return (Path.GetDirectoryName(full)!, [full]);
        if (!Directory.Exists(full)) return null;
        foreach (var dir in new[] { Path.Combine(full, "data"), full })
        {
            if (!Directory.Exists(dir)) continue;
            var files = Directory.GetFiles(dir, "*.parquet").OrderBy(f => Path.GetFileName(f), StringComparer.Ordinal).ToArray();
            if (files.Length > 0) return (dir, files);
        }
        var deep = SafeCoDe.Torch.Runtime.SafeFiles.Walk(full, "*.parquet") // bounded, never into linked folders
            .OrderBy(f => Path.GetRelativePath(full, f).Replace('\\', '/'), StringComparer.Ordinal).ToArray();
        return deep.Length > 0 ? (full, deep) : null;
    }
}
