using System.Collections.Concurrent;
using System.Globalization;
using System.Text;

namespace SafeCoDe.Cli.Serve;

/// <summary>Counters, gauges and histograms of the server, written in the Prometheus text format (<c>/metrics</c>).</summary>
public sealed class ServerMetrics
{
    private static readonly double[] LatencyBuckets = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
    private readonly ConcurrentDictionary<(string Path, int Status), long> _requests = new();
    private long _promptTokens, _completionTokens, _rejected, _cancelled;
    private readonly Histogram _latency = new(LatencyBuckets);
    private readonly Histogram _firstToken = new(LatencyBuckets);
    private double _lastTokensPerSecond;
    private readonly object _lock = new();

    /// <summary>Counts a finished HTTP request.</summary>
    public void Request(string path, int status, double seconds)
    {
        _requests.AddOrUpdate((path, status), 1, (_, n) => n + 1);
        if (path == "/v1/chat/completions") lock (_lock) _latency.Observe(seconds);
    }

    /// <summary>Counts a finished generation.</summary>
    public void Generated(int promptTokens, int completionTokens, double decodeSeconds)
    {
        Interlocked.Add(ref _promptTokens, promptTokens);
        Interlocked.Add(ref _completionTokens, completionTokens);
        if (decodeSeconds > 0) lock (_lock) _lastTokensPerSecond = completionTokens / decodeSeconds;
    }

    /// <summary>Records the time to the first streamed token.</summary>
    public void FirstToken(double seconds) { lock (_lock) _firstToken.Observe(seconds); }
    /// <summary>Counts a request refused because the queue was full.</summary>
    public void Rejected() => Interlocked.Increment(ref _rejected);
    /// <summary>Counts a generation cancelled (client gone, timeout, shutdown).</summary>
    public void Cancelled() => Interlocked.Increment(ref _cancelled);

    /// <summary>The Prometheus text exposition (version 0.0.4).</summary>
    public string Render(RequestQueue queue, bool ready, ByteBudget? inflight = null)
    {
        var s = new StringBuilder();
        static string F(double v) => v.ToString("R", CultureInfo.InvariantCulture);
        // one metric of one sample: its HELP and TYPE lines, then its value
        void One(string name, string type, string help, object value) =>
            s.Append($"# HELP {name} {help}\n# TYPE {name} {type}\n{name} {Convert.ToString(value, CultureInfo.InvariantCulture)}\n");
        s.Append("# HELP safecode_requests_total HTTP requests by path and status.\n# TYPE safecode_requests_total counter\n");
        foreach (var ((path, status), n) in _requests.OrderBy(k => k.Key.Path, StringComparer.Ordinal).ThenBy(k => k.Key.Status))
            s.Append($"safecode_requests_total{{path=\"{path}\",status=\"{status}\"}} {n}\n");
        One("safecode_rejected_total", "counter", "Requests answered 429 because the queue was full.", Interlocked.Read(ref _rejected));
        One("safecode_cancelled_total", "counter", "Generations cancelled (client gone, timeout, shutdown).", Interlocked.Read(ref _cancelled));
        One("safecode_prompt_tokens_total", "counter", "Prompt tokens processed.", Interlocked.Read(ref _promptTokens));
        One("safecode_completion_tokens_total", "counter", "Tokens generated.", Interlocked.Read(ref _completionTokens));
        One("safecode_queue_depth", "gauge", "Requests waiting for a decoding slot.", queue.Waiting);
        One("safecode_requests_in_flight", "gauge", "Requests decoding now.", queue.Running);
        One("safecode_queue_capacity", "gauge", "Requests admitted at most (waiting + running).", queue.Capacity);
        if (inflight is not null) One("safecode_inflight_bytes", "gauge", "Request body bytes admitted now (--max-inflight-bytes).", inflight.InUse);
        One("safecode_gc_heap_bytes", "gauge", "Managed heap in use after the last garbage collection.", GC.GetGCMemoryInfo().HeapSizeBytes);
        One("safecode_resident_bytes", "gauge", "Resident memory of the process.", Environment.WorkingSet);
        One("safecode_model_ready", "gauge", "1 once the model is loaded.", ready ? 1 : 0);
        lock (_lock)
        {
            One("safecode_tokens_per_second", "gauge", "Decoding speed of the last finished generation.", F(_lastTokensPerSecond));
            _latency.Write(s, "safecode_request_duration_seconds", "Latency of /v1/chat/completions, queue wait included.");
            _firstToken.Write(s, "safecode_time_to_first_token_seconds", "Time from the request to its first streamed token.");
        }
        return s.ToString();
    }

    private sealed class Histogram(double[] bounds)
    {
        private readonly long[] _counts = new long[bounds.Length];
        private long _count;
        private double _sum;

        public void Observe(double v)
        {
            for (int i = 0; i < bounds.Length; i++) if (v <= bounds[i]) _counts[i]++;
            _count++;
            _sum += v;
        }

        public void Write(StringBuilder s, string name, string help)
        {
            s.Append($"# HELP {name} {help}\n# TYPE {name} histogram\n");
            for (int i = 0; i < bounds.Length; i++)
                s.Append($"{name}_bucket{{le=\"{bounds[i].ToString(CultureInfo.InvariantCulture)}\"}} {_counts[i]}\n");
            s.Append($"{name}_bucket{{le=\"+Inf\"}} {_count}\n");
            s.Append($"{name}_sum {_sum.ToString("R", CultureInfo.InvariantCulture)}\n{name}_count {_count}\n");
        }
    }
}
