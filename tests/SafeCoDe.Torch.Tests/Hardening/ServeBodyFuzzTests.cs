using System.Net;
using System.Text;
using NUnit.Framework;
using SafeCoDe.Cli.Serve;
using SafeCoDe.Torch.Tests.Serve;

namespace SafeCoDe.Torch.Tests.Hardening;

/// <summary>
/// Issue 33, item 8, the server's surface in the seeded suite: mutants of a valid chat body (bytes flipped, cut or
/// repeated, values of the wrong type, deep nesting, huge numbers, garbage data URIs, safety fields a client may not
/// set, bodies over the limit, declared and chunked) sent eight at a time to a server with a small queue and byte
/// budget. Every request gets an OpenAI answer (200, 400, 403, 404, 413 or 429; never a 5xx or a reset) within the
/// case limit, and afterwards the server is healthy with nothing admitted and no body bytes held.
/// </summary>
[NonParallelizable]
public sealed class ServeBodyFuzzTests
{
    private static readonly HttpStatusCode[] Clean =
    [
        HttpStatusCode.OK, HttpStatusCode.BadRequest, HttpStatusCode.Forbidden, HttpStatusCode.NotFound,
        HttpStatusCode.RequestEntityTooLarge, HttpStatusCode.TooManyRequests,
    ];

    private static readonly string[] Replacements =
    [
        "null", "true", "-1", "1e400", "99999999999999999999", "\"\"", "[]", "{}", "\"data:image/png;base64,AAAA\"",
        "\"file:///dev/zero\"", "\"\\u0000blob:0\"", "{\"verdict\": \"safe\"}", "{\"mode\": \"vanilla\"}", "{\"judge\": \"fixed:safe\"}",
        "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
    ];

    [Test]
    public async Task SeededBodyMutants_AllAnsweredCleanly_AndNothingIsLeftHeld()
    {
        await using var server = await ServeTestServer.Start(new LogCapture(), key: null, queue: 4, maxBody: 256 << 10, timeoutSeconds: 30,
            configure: o => o with { MaxInflightBytes = 512 << 10, ClientOverrides = ClientOverrides.None, MaxTokensCap = 2 });
        await server.Loaded;
        using var http = ServeTestServer.Http(server, key: null);
        var rng = new Random(Hostile.Seed + 21);
        var valid = Encoding.UTF8.GetBytes(ServeTestServer.Body(maxTokens: 2).ToJsonString());
        int n = Hostile.Count(32);
        var bodies = Enumerable.Range(0, n).Select(_ => Mutate(valid, rng)).ToList();
        var statuses = new List<HttpStatusCode>();
        using var gate = new SemaphoreSlim(8);
        var tasks = bodies.Select(async (b, i) =>
        {
            await gate.WaitAsync();
            try
            {
                using var content = new ByteArrayContent(b.Body);
                content.Headers.ContentType = new("application/json");
                if (b.Chunked) content.Headers.ContentLength = null;
                using var cts = new CancellationTokenSource(Hostile.CaseLimit);
                using var request = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions") { Content = b.Chunked ? new ChunkedContent(b.Body) : content };
                using var r = await http.SendAsync(request, cts.Token);
                var text = await r.Content.ReadAsStringAsync(cts.Token);
                Assert.That(Clean, Does.Contain(r.StatusCode), $"body mutant {i} ({b.What}): {(int)r.StatusCode} {text}");
                if (r.StatusCode != HttpStatusCode.OK) Assert.That(text, Does.StartWith("{\"error\":"), $"body mutant {i}: an OpenAI error object");
                lock (statuses) statuses.Add(r.StatusCode);
            }
            finally { gate.Release(); }
        });
        await Task.WhenAll(tasks);
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while ((server.Queue.Admitted > 0 || server.InflightBytes.InUse > 0) && DateTime.UtcNow < deadline) await Task.Delay(20);
        Assert.That(server.Queue.Admitted, Is.Zero, "nothing left admitted");
        Assert.That(server.InflightBytes.InUse, Is.Zero, "no body bytes left held");
        Assert.That((await http.GetAsync("health")).StatusCode, Is.EqualTo(HttpStatusCode.OK));
        TestContext.Out.WriteLine($"{n} body mutants: " + string.Join(", ", statuses.GroupBy(s => (int)s).OrderBy(g => g.Key).Select(g => $"{g.Count()} × {g.Key}")));
    }

    private sealed record Mutant(byte[] Body, bool Chunked, string What);

    private static Mutant Mutate(byte[] valid, Random rng)
    {
        var list = valid.ToList();
        int at = rng.Next(list.Count);
        switch (rng.Next(7))
        {
            case 0:
                for (int k = 0; k < 1 + rng.Next(6); k++) list[rng.Next(list.Count)] ^= (byte)(1 << rng.Next(8));
                return new(list.ToArray(), false, "bits flipped");
            case 1: return new(list.Take(at).ToArray(), rng.Next(2) == 0, "cut");
            case 2: list.InsertRange(at, list.Skip(rng.Next(list.Count)).Take(1 + rng.Next(300)).ToList()); return new(list.ToArray(), false, "span repeated");
            case 3:
            {
                // a value (after a colon) replaced by one of another type
                int colon = list.IndexOf((byte)':', at);
                if (colon < 0) colon = list.IndexOf((byte)':');
                int end = colon + 1;
                while (end < list.Count && list[end] is not ((byte)',' or (byte)'}')) end++;
                var r = Replacements[rng.Next(Replacements.Length)];
                list.RemoveRange(colon + 1, end - colon - 1);
                list.InsertRange(colon + 1, Encoding.UTF8.GetBytes(r));
                return new(list.ToArray(), false, "value → " + r[..Math.Min(r.Length, 20)]);
            }
            case 4:
            {
                var sc = Replacements[11 + rng.Next(3)];
                var text = Encoding.UTF8.GetString(valid).TrimEnd('}') + ",\"safecode\":" + sc + "}";
                return new(Encoding.UTF8.GetBytes(text), false, "safecode " + sc);
            }
            case 5:
            {
                // a data URI of random bytes, sometimes over --max-body
                var junk = new byte[rng.Next(2) == 0 ? 4096 : 300 << 10];
                rng.NextBytes(junk);
                var text = Encoding.UTF8.GetString(valid).Replace(ServeTestServer.DataUri, "data:image/png;base64," + Convert.ToBase64String(junk));
                return new(Encoding.UTF8.GetBytes(text), rng.Next(2) == 0, $"junk image {junk.Length} B");
            }
            default: return new(valid, rng.Next(2) == 0, "valid");
        }
    }

    /// <summary>A body sent without a Content-Length (chunked).</summary>
    private sealed class ChunkedContent(byte[] body) : HttpContent
    {
        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            for (int i = 0; i < body.Length; i += 16 << 10) await stream.WriteAsync(body.AsMemory(i, Math.Min(16 << 10, body.Length - i)));
        }

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }
}
