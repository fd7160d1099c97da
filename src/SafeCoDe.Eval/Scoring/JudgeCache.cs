using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace SafeCoDe.Eval.Scoring;

/// <summary>
/// Judge replies by request (JSONL, one <c>{"key","judge","reply"}</c> per line), so scoring a run again — or
/// resuming one — never asks the judge twice for the same prompt. Appends are flushed one at a time; a torn last
/// line is ignored.
/// </summary>
public sealed class JudgeCache : IDisposable
{
    private sealed record Entry(string Key, string Judge, string Reply);

    private readonly Dictionary<string, string> _replies = new(StringComparer.Ordinal);
    private readonly FileStream? _file;
    private readonly object _lock = new();

    /// <summary>Cached replies.</summary>
    public int Count { get { lock (_lock) return _replies.Count; } }

    /// <summary>Opens (or creates) the cache file; null path keeps the cache in memory only.</summary>
    public JudgeCache(string? path)
    {
        if (path is null) return;
        if (Path.GetDirectoryName(Path.GetFullPath(path)) is { } d) Directory.CreateDirectory(d);
        if (File.Exists(path))
        {
            var text = File.ReadAllText(path, Encoding.UTF8);
            int end = text.LastIndexOf('\n');
            foreach (var line in (end < 0 ? "" : text[..end]).Split('\n'))
            {
                if (line.Length == 0) continue;
                try { if (JsonSerializer.Deserialize<Entry>(line, EvalJson.Line) is { } e) _replies[e.Key] = e.Reply; } catch (JsonException) { }
            }
            if (end + 1 < text.Length) // cut a torn tail so the next append starts on a fresh line
            {
                using var f = new FileStream(path, FileMode.Open, FileAccess.Write);
                f.SetLength(Encoding.UTF8.GetByteCount(text[..(end + 1)]));
            }
        }
        _file = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read);
    }

    /// <summary>The cache key of a judge request: judge name, messages and the image's hash.</summary>
    public static string Key(string judge, string? system, string user, byte[]? image)
    {
        var imageHash = image is null ? "none" : Convert.ToHexString(SHA256.HashData(image));
        return Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes($"{judge}\u0000{system}\u0000{user}\u0000{imageHash}"))).ToLowerInvariant();
    }

    /// <summary>A cached reply, or null.</summary>
    public string? Get(string key) { lock (_lock) return _replies.TryGetValue(key, out var r) ? r : null; }

    /// <summary>Stores a reply (and appends it to the file).</summary>
    public void Put(string key, string judge, string reply)
    {
        lock (_lock)
        {
            if (_replies.TryGetValue(key, out var old) && old == reply) return;
            _replies[key] = reply;
            if (_file is null) return;
            _file.Write(Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new Entry(key, judge, reply), EvalJson.Line) + "\n"));
            _file.Flush();
        }
    }

    /// <summary>Closes the file.</summary>
    public void Dispose() => _file?.Dispose();
}
