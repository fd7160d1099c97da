using System.Buffers;
using Microsoft.AspNetCore.Http;

namespace SafeCoDe.Cli.Serve;

/// <summary>
/// The bytes of request bodies the server holds at once (<c>--max-inflight-bytes</c>). A request takes its share
/// before its body is read (its Content-Length, or chunk by chunk for a chunked body) and gives it back when it
/// ends, so memory is bounded by what was admitted, not by how many clients send at once.
/// </summary>
public sealed class ByteBudget(long capacity)
{
    private long _used;

    /// <summary>The budget.</summary>
    public long Capacity { get; } = capacity > 0 ? capacity : throw new ArgumentOutOfRangeException(nameof(capacity), "the budget must be positive");
    /// <summary>Bytes held now.</summary>
    public long InUse => Volatile.Read(ref _used);

    /// <summary>A share of zero bytes, to grow with <see cref="Share.TryGrow"/>.</summary>
    public Share Open() => new(this);

    private bool TryTake(long n, long mine)
    {
        while (true)
        {
            long used = Volatile.Read(ref _used);
            // one request alone is always admitted (it is within --max-body), so a budget below one body cannot starve the server
            if (used > mine && used + n > Capacity) return false;
            if (Interlocked.CompareExchange(ref _used, used + n, used) == used) return true;
        }
    }

    /// <summary>The bytes one request holds; disposing gives them back.</summary>
    public sealed class Share : IDisposable
    {
        private readonly ByteBudget _budget;
        private long _held;

        internal Share(ByteBudget budget) => _budget = budget;

        /// <summary>Bytes this request holds.</summary>
        public long Held => _held;

        /// <summary>Takes <paramref name="n"/> more bytes; false when the budget has no room.</summary>
        public bool TryGrow(long n)
        {
            if (n <= 0) return true;
            if (!_budget.TryTake(n, _held)) return false;
            _held += n;
            return true;
        }

        /// <summary>Gives the bytes back.</summary>
        public void Dispose()
        {
            Interlocked.Add(ref _budget._used, -_held);
            _held = 0;
        }
    }
}

/// <summary>Reads and discards request bodies within their limits.</summary>
internal static class RequestBodies
{
    /// <summary>
    /// The whole body, its bytes taken from <paramref name="share"/> as they arrive (Content-Length up front); null
    /// when the budget ran out (the caller answers 429 and drains the rest).
    /// </summary>
    public static async Task<(byte[] Body, int Length)?> ReadAsync(HttpRequest request, ByteBudget.Share share, long maxBytes, CancellationToken cancel)
    {
        if (request.ContentLength is { } declared)
        {
            if (!share.TryGrow(declared)) return null;
            var exact = new byte[declared];
            int read = 0, n;
            while (read < exact.Length && (n = await request.Body.ReadAsync(exact.AsMemory(read), cancel).ConfigureAwait(false)) > 0) read += n;
            return (exact, read);
        }
        var ms = new MemoryStream();
        var buffer = ArrayPool<byte>.Shared.Rent(1 << 16);
        try
        {
            int n;
            while ((n = await request.Body.ReadAsync(buffer, cancel).ConfigureAwait(false)) > 0)
            {
                if (ms.Length + n > maxBytes || !share.TryGrow(n)) return ms.Length + n > maxBytes ? throw TooLarge(maxBytes) : null;
                ms.Write(buffer, 0, n);
            }
        }
        finally { ArrayPool<byte>.Shared.Return(buffer); }
        return (ms.GetBuffer(), (int)ms.Length);
    }

    /// <summary>
    /// Reads what is left of a refused request's body into a small buffer and drops it, so the client (which is
    /// still sending) gets the answer instead of a reset connection. Not for a client that waits for
    /// <c>100 Continue</c>: it sends nothing more. Gives up after <paramref name="limit"/>.
    /// </summary>
    public static async Task DrainAsync(HttpRequest request, TimeSpan limit, CancellationToken cancel)
    {
        if (request.Headers.Expect.ToString().Contains("100-continue", StringComparison.OrdinalIgnoreCase)) return;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        stop.CancelAfter(limit);
        var buffer = ArrayPool<byte>.Shared.Rent(1 << 16);
        try { while (await request.Body.ReadAsync(buffer, stop.Token).ConfigureAwait(false) > 0) { } }
        catch (Exception e) when (e is OperationCanceledException or IOException or BadHttpRequestException) { } // the answer goes out regardless
        finally { ArrayPool<byte>.Shared.Return(buffer); }
    }

    private static ApiException TooLarge(long max) => new(413, "invalid_request_error", $"the request body is over the {max}-byte limit", null, "request_too_large");
}

/// <summary>
/// Takes the large data URIs out of a request body before it is parsed. <see cref="System.Text.Json.JsonDocument"/>
/// (and <c>JsonElement.ParseValue</c>) rent a buffer as large as the body from the shared array pool, which keeps such
/// buffers per thread after the request: a burst of 26 MB bodies left over 200 MB resident behind. Parsed without its
/// image strings, a body needs a few kilobytes; the images are decoded from their place in the body.
/// </summary>
public static class BodyBlobs
{
    /// <summary>Strings at least this long that start with <c>data:</c> are lifted.</summary>
    public const int MinBytes = 64 << 10;
    private const string Prefix = "\u0000blob:";

    /// <summary>
    /// The body with each long unescaped <c>"data:…"</c> string replaced by <c>"\u0000blob:N"</c>, and the strings'
    /// contents (without quotes, slices of <paramref name="body"/>). A body without such strings comes back as it is.
    /// </summary>
    /// <exception cref="System.Text.Json.JsonException">The body is not valid JSON.</exception>
    public static (ReadOnlyMemory<byte> Json, List<ReadOnlyMemory<byte>> Blobs) Lift(byte[] body, int length)
    {
        var blobs = new List<ReadOnlyMemory<byte>>();
        var spans = new List<(int Start, int Length)>();
        var reader = new System.Text.Json.Utf8JsonReader(body.AsSpan(0, length), new System.Text.Json.JsonReaderOptions { MaxDepth = 64 });
        while (reader.Read())
        {
            if (reader.TokenType != System.Text.Json.JsonTokenType.String || reader.ValueIsEscaped || reader.HasValueSequence) continue;
            var v = reader.ValueSpan;
            if (v.Length < MinBytes || !v.StartsWith("data:"u8)) continue;
            int start = (int)reader.TokenStartIndex; // the opening quote
            spans.Add((start, v.Length + 2));
            blobs.Add(body.AsMemory(start + 1, v.Length));
        }
        if (blobs.Count == 0) return (body.AsMemory(0, length), blobs);
        var compact = new MemoryStream();
        int at = 0;
        for (int i = 0; i < spans.Count; i++)
        {
            compact.Write(body, at, spans[i].Start - at);
            compact.Write(System.Text.Encoding.UTF8.GetBytes($"\"{Prefix.Replace("\u0000", "\\u0000")}{i}\""));
            at = spans[i].Start + spans[i].Length;
        }
        compact.Write(body, at, length - at);
        return (compact.ToArray(), blobs);
    }

    /// <summary>The blob a placeholder string names, or null when <paramref name="value"/> is not one.</summary>
    public static int? Index(string value, int count) =>
        value.StartsWith(Prefix, StringComparison.Ordinal) && int.TryParse(value.AsSpan(Prefix.Length), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var i) && i < count ? i : null;
}
