using System.Text.Json;
using SafeCoDe.Torch.Runtime;

namespace SafeCoDe.Eval.Runs;

/// <summary>
/// How records.jsonl and problems.jsonl are read back. Lines are read one at a time within
/// <see cref="InputLimits.MaxJsonlLineBytes"/> (a huge line costs no memory). Only the last line may be torn (a
/// process killed mid-write leaves it without its newline): <see cref="Repair"/> saves its bytes in a
/// <c>FILE.torn-TIME</c> copy and then cuts it; every other line must be a valid record, else the file is left as it
/// is and the error names the line.
/// </summary>
internal static class RunFileRepair
{
    /// <summary>
    /// Checks every complete line and repairs the tail; returns the bytes cut. <paramref name="ids"/> gets every id
    /// (a repeated id stays in the file: readers keep its first record).
    /// </summary>
    /// <exception cref="RunStoreException">A complete line is not a valid record, or the file is not a regular file.</exception>
    public static long Repair(string path, Func<string, string?> id, List<string> repairs, out HashSet<string> ids)
    {
        ids = new HashSet<string>(StringComparer.Ordinal);
        if (!File.Exists(path)) return 0;
        BoundedLine? tail = null;
        string? tailId = null;
        using (var s = Open(path))
            foreach (var line in BoundedLines.Read(s, InputLimits.Current.MaxJsonlLineBytes))
            {
                if (!line.Terminated)
                {
                    tail = line;
                    tailId = line.Text is { } t && !string.IsNullOrWhiteSpace(t) ? TryId(t, id, out _) : null;
                    break;
                }
                if (line.Problem is { } problem) throw Invalid(path, line.Number, problem);
                if (string.IsNullOrWhiteSpace(line.Text)) continue;
                ids.Add(TryId(line.Text, id, out var why) ?? throw Invalid(path, line.Number, why!));
            }
        if (tail is not { } last) return 0;
        var name = Path.GetFileName(path);
        if (tailId is not null || string.IsNullOrWhiteSpace(last.Text) && last.Problem is null)
        {
            // a whole record (or blanks) without its newline: completing the line loses nothing
            File.AppendAllText(path, "\n");
            if (tailId is not null) ids.Add(tailId);
            repairs.Add($"{name}: line {last.Number} had no newline at the end; one was added");
            return 0;
        }
        var backup = SaveTail(path, last);
        using (var f = new FileStream(path, FileMode.Open, FileAccess.Write)) f.SetLength(last.Offset);
        repairs.Add($"{name}: cut the torn last line {last.Number} ({last.Bytes} bytes, a write the process did not finish); its bytes are saved in {Path.GetFileName(backup)}");
        return last.Bytes;
    }

    /// <summary>
    /// Each complete line with its record, in file order; a torn last line is skipped (or returned, when it holds a
    /// whole record). Any other line that is not a record throws.
    /// </summary>
    /// <exception cref="RunStoreException">A complete line is not a valid record, or the file is not a regular file.</exception>
    public static IEnumerable<(BoundedLine Line, T? Item)> Lines<T>(string path)
    {
        using var s = Open(path);
        foreach (var line in BoundedLines.Read(s, InputLimits.Current.MaxJsonlLineBytes))
        {
            if (!line.Terminated)
            {
                if (line.Text is { } t && !string.IsNullOrWhiteSpace(t) && TryParse<T>(t, out var whole, out _)) yield return (line, whole);
                yield break;
            }
            if (line.Problem is { } problem) throw Invalid(path, line.Number, problem);
            if (string.IsNullOrWhiteSpace(line.Text)) continue;
            if (!TryParse<T>(line.Text, out var item, out var why)) throw Invalid(path, line.Number, why!);
            yield return (line, item);
        }
    }

    private static Stream Open(string path)
    {
        try { return BoundedFile.OpenRead(path, "run file"); }
        catch (InputFileException e) { throw new RunStoreException(e.Message); }
    }

    private static bool TryParse<T>(string text, out T? item, out string? why)
    {
        why = null;
        try { item = JsonSerializer.Deserialize<T>(text, EvalJson.Line); }
        catch (JsonException e) { item = default; why = Why(e); return false; }
        if (item is null) why = "it holds null, not a record";
        return item is not null;
    }

    private static string? TryId(string text, Func<string, string?> id, out string? why)
    {
        why = null;
        string? key;
        try { key = id(text); }
        catch (JsonException e) { why = Why(e); return null; }
        if (string.IsNullOrEmpty(key)) why = "it has no id";
        return string.IsNullOrEmpty(key) ? null : key;
    }

    /// <summary>What is wrong with a line, without .NET type names.</summary>
    private static string Why(JsonException e) =>
        e.Message.Contains("could not be converted", StringComparison.Ordinal) ? $"the value at {e.Path ?? "$"} has the wrong type"
        : e.Message.Contains("missing required properties", StringComparison.Ordinal) ? "a required field (id, benchmark, outputs, …) is missing"
        : $"not valid JSON at {e.Path ?? "$"} (byte {e.BytePositionInLine ?? 0})";

    private static RunStoreException Invalid(string path, int line, string why) =>
        new($"{path} line {line}: not a valid record ({why}). The run is not resumed and the file is left as it is: fix or remove that line " +
            "(only a torn last line is repaired)");

    private static string SaveTail(string path, BoundedLine tail)
    {
        var backup = $"{path}.torn-{DateTime.UtcNow:yyyyMMddTHHmmssfffZ}";
        using var src = new FileStream(path, FileMode.Open, FileAccess.Read);
        src.Seek(tail.Offset, SeekOrigin.Begin);
        using var dst = new FileStream(backup, FileMode.CreateNew, FileAccess.Write);
        src.CopyTo(dst);
        dst.Flush(flushToDisk: true);
        return backup;
    }
}
