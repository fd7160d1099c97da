using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace SafeCoDe.Torch.Safety;

/// <summary>
/// Verdicts stored in a JSONL file keyed by (image SHA-256, query). With an inner judge it fills the cache (one
/// appended line per new verdict, written in a single call so a killed run leaves whole lines); without one it
/// answers only from the file and fails clearly on a miss. Malformed lines are skipped and counted.
/// </summary>
public sealed class CachedJudge : ISafetyJudge
{
    private readonly string _path;
    private readonly ISafetyJudge? _inner;
    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _gate = new(1, 1);

    /// <summary>Lines of the file that could not be read.</summary>
    public int SkippedLines { get; }
    public int Count => _entries.Count;

    public sealed record Entry(
        [property: JsonPropertyName("image_sha256")] string ImageSha256,
        [property: JsonPropertyName("query")] string Query,
        [property: JsonPropertyName("verdict")] string Verdict,
        [property: JsonPropertyName("caption")] string Caption,
        [property: JsonPropertyName("raw")] string Raw,
        [property: JsonPropertyName("judge")] string Judge,
        [property: JsonPropertyName("latency_ms")] double LatencyMs);

    public CachedJudge(string path, ISafetyJudge? inner = null)
    {
        _path = path;
        _inner = inner;
        if (!File.Exists(path)) return;
        int skipped = 0;
        foreach (var line in File.ReadLines(path))
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            try
            {
                var e = JsonSerializer.Deserialize<Entry>(line);
                if (e is null || e.ImageSha256 is null || e.Query is null || e.Verdict is not ("safe" or "unsafe")) { skipped++; continue; }
                _entries[Key(e.ImageSha256, e.Query)] = e;
            }
            catch (JsonException) { skipped++; }
        }
        SkippedLines = skipped;
    }

    public string Name => _inner is null ? "cache" : "cache+" + _inner.Name;

    private static string Key(string hash, string query) => hash + "\n" + query;

    public async Task<JudgeResult> JudgeAsync(JudgeRequest request, CancellationToken cancel = default)
    {
        var key = Key(request.ImageHash, request.Query);
        await _gate.WaitAsync(cancel).ConfigureAwait(false);
        try
        {
            if (_entries.TryGetValue(key, out var hit))
                return new JudgeResult(hit.Verdict == "unsafe" ? Verdict.Unsafe : Verdict.Safe, hit.Caption, hit.Raw, true, "cache:" + hit.Judge, 0);
        }
        finally { _gate.Release(); }

        if (_inner is null)
            throw new JudgeException($"{_path} has no verdict for image {request.ImageHash[..Math.Min(12, request.ImageHash.Length)]} and query \"{request.Query}\"");
        var r = await _inner.JudgeAsync(request, cancel).ConfigureAwait(false);
        var entry = new Entry(request.ImageHash, request.Query, r.Verdict == Verdict.Unsafe ? "unsafe" : "safe", r.Caption, r.RawVerdictReply, r.Judge, r.LatencyMs);
        await _gate.WaitAsync(cancel).ConfigureAwait(false);
        try
        {
            _entries[key] = entry;
            var bytes = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(entry) + "\n");
            var dir = Path.GetDirectoryName(Path.GetFullPath(_path));
            if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
            using var fs = new FileStream(_path, FileMode.Append, FileAccess.Write, FileShare.Read);
            fs.Write(bytes);
            fs.Flush(flushToDisk: true);
        }
        finally { _gate.Release(); }
        return r;
    }
}
