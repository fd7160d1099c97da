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
    /// <summary>Verdicts currently held (loaded from the file plus those added since).</summary>
    public int Count => _entries.Count;

    /// <summary>One line of the cache file (snake_case JSON).</summary>
    /// <param name="ImageSha256">Lower-case hex SHA-256 of the image bytes ("none" without an image).</param>
    /// <param name="Query">The raw user query.</param>
    /// <param name="Verdict">"safe" or "unsafe".</param>
    /// <param name="Caption">The caption the judge reasoned from.</param>
    /// <param name="Raw">The judge's raw verdict reply.</param>
    /// <param name="Judge">Name of the judge that produced it.</param>
    /// <param name="LatencyMs">How long the original judgement took, in milliseconds.</param>
    public sealed record Entry(
        [property: JsonPropertyName("image_sha256")] string ImageSha256,
        [property: JsonPropertyName("query")] string Query,
        [property: JsonPropertyName("verdict")] string Verdict,
        [property: JsonPropertyName("caption")] string Caption,
        [property: JsonPropertyName("raw")] string Raw,
        [property: JsonPropertyName("judge")] string Judge,
        [property: JsonPropertyName("latency_ms")] double LatencyMs)
    {
        /// <summary>The guard format that judged (null: the project's own judge).</summary>
        [JsonPropertyName("format"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? Format { get; init; }
        /// <summary>The categories a guard named.</summary>
        [JsonPropertyName("categories"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public IReadOnlyList<string>? Categories { get; init; }
        /// <summary>A guard's stated reason.</summary>
        [JsonPropertyName("rationale"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? Rationale { get; init; }
        /// <summary>A guard's probability of "unsafe".</summary>
        [JsonPropertyName("score"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public double? Score { get; init; }
    }

    /// <summary>Loads <paramref name="path"/> if it exists (a missing file is an empty cache).</summary>
    /// <param name="path">The JSONL cache file; created (with its folder) on the first new verdict.</param>
    /// <param name="inner">Judge asked on a miss; null makes a miss a <see cref="JudgeException"/>.</param>
    public CachedJudge(string path, ISafetyJudge? inner = null)
    {
        _path = path;
        _inner = inner;
        if (!File.Exists(path)) return;
        int skipped = 0;
        var text = Runtime.BoundedFile.ReadAllText(path, Runtime.InputLimits.Current.MaxCacheFileBytes, "judge cache");
        foreach (var line in text.Split('\n'))
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

    /// <summary>"cache", or "cache+" and the inner judge's name.</summary>
    public string Name => _inner is null ? "cache" : "cache+" + _inner.Name;

    private static string Key(string hash, string query) => hash + "\n" + query;

    /// <summary>
    /// Answers from the cache (judge name prefixed "cache:", latency 0) or asks the inner judge and appends its verdict.
    /// Safe to call concurrently; two concurrent misses for the same key both ask the inner judge.
    /// </summary>
    /// <exception cref="JudgeException">A miss without an inner judge.</exception>
    public Task<JudgeResult> JudgeAsync(JudgeRequest request, CancellationToken cancel = default) => JudgeAsync(request, _inner, cancel);

    /// <summary>The judge asked on a miss (null: a miss is an error).</summary>
    internal ISafetyJudge? Inner => _inner;

    /// <summary>
    /// This cache asking <paramref name="inner"/> on a miss instead of its own inner judge, with the same entries and
    /// file (the engine hands it its in-request model judge).
    /// </summary>
    internal ISafetyJudge With(ISafetyJudge inner) => ReferenceEquals(inner, _inner) ? this : new Bound(this, inner);

    private sealed class Bound(CachedJudge cache, ISafetyJudge inner) : ISafetyJudge
    {
        public string Name => cache.Name;
        public Task<JudgeResult> JudgeAsync(JudgeRequest request, CancellationToken cancel = default) => cache.JudgeAsync(request, inner, cancel);
    }

    private async Task<JudgeResult> JudgeAsync(JudgeRequest request, ISafetyJudge? inner, CancellationToken cancel)
    {
        var key = Key(request.ImageHash, request.Query);
        await _gate.WaitAsync(cancel).ConfigureAwait(false);
        try
        {
            if (_entries.TryGetValue(key, out var hit))
                return new JudgeResult(hit.Verdict == "unsafe" ? Verdict.Unsafe : Verdict.Safe, hit.Caption, hit.Raw, true, "cache:" + hit.Judge, 0)
                {
                    Format = hit.Format ?? Guards.JudgeFormats.Default, Categories = hit.Categories ?? [], Rationale = hit.Rationale, Score = hit.Score,
                };
        }
        finally { _gate.Release(); }

        if (inner is null)
            throw new JudgeException($"{_path} has no verdict for image {request.ImageHash[..Math.Min(12, request.ImageHash.Length)]} and query {JudgePrompts.Quote(request.Query.Length > 80 ? request.Query[..80] + "…" : request.Query)}");
        var r = await inner.JudgeAsync(request, cancel).ConfigureAwait(false);
        bool guard = r.Format != Guards.JudgeFormats.Default;
        var entry = new Entry(request.ImageHash, request.Query, r.Verdict == Verdict.Unsafe ? "unsafe" : "safe", r.Caption, r.RawVerdictReply, r.Judge, r.LatencyMs)
        {
            Format = guard ? r.Format : null, Categories = guard ? r.Categories : null, Rationale = r.Rationale, Score = r.Score,
        };
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
