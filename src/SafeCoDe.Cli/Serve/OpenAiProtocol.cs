using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.AI;
using SafeCoDe.Torch.Decoding.Methods;
using SafeCoDe.Torch.Decoding.Sessions;

namespace SafeCoDe.Cli.Serve;

/// <summary>An error the server answers with an OpenAI-style error object: <c>{"error": {message, type, param, code}}</c>.</summary>
/// <param name="status">HTTP status.</param>
/// <param name="type">invalid_request_error, authentication_error, not_found_error, rate_limit_error, server_error, …</param>
/// <param name="message">What went wrong, for the client (never a stack trace).</param>
/// <param name="param">The request field at fault, or null.</param>
/// <param name="code">A short machine-readable code, or null.</param>
public sealed class ApiException(int status, string type, string message, string? param = null, string? code = null) : Exception(message)
{
    /// <summary>HTTP status.</summary>
    public int Status { get; } = status;
    /// <summary>The error type.</summary>
    public string Type { get; } = type;
    /// <summary>The field at fault.</summary>
    public string? Param { get; } = param;
    /// <summary>The error code.</summary>
    public string? Code { get; } = code;

    /// <summary>A 400 invalid_request_error.</summary>
    public static ApiException Invalid(string message, string? param = null, string? code = null) => new(400, "invalid_request_error", message, param, code);

    /// <summary>The JSON body.</summary>
    public string ToJson() => OpenAiProtocol.ErrorJson(Message, Type, Param, Code);
}

/// <summary>SafeCoDe settings a request may set in its <c>safecode</c> field.</summary>
/// <param name="Options">Decode settings (the server's, with the request's overrides).</param>
/// <param name="Verdict">"safe"/"unsafe" to skip the judge, or null.</param>
/// <param name="Judge">"self" to use the model as the judge for this request, or null for the server's judge.</param>
public sealed record SafeCoDeExtension(DecodingOptions Options, string? Verdict, string? Judge)
{
    /// <summary>The fields the request set (with a value), in request order: what <see cref="ClientOverridePolicy"/> checks.</summary>
    public IReadOnlyList<string> Given { get; init; } = [];
    /// <summary>The <c>judge</c> field as written (server, self, fixed:safe, fixed:unsafe), or null.</summary>
    public string? JudgeField { get; init; }
}

/// <summary>A parsed <c>POST /v1/chat/completions</c> body.</summary>
/// <param name="Logprobs">Null: no log-probabilities (<c>logprobs</c> absent or false); k: <c>logprobs: true</c> with <c>top_logprobs: k</c> (0 when not given).</param>
public sealed record ChatCompletionRequest(
    string? Model, List<ChatMessage> Messages, bool Stream, bool IncludeUsage, int? MaxTokens, double? Temperature, double? TopP, long? Seed,
    SafeCoDeExtension SafeCoDe, int? Logprobs = null);

/// <summary>Reads OpenAI chat-completion requests (strictly: a wrong type names its field) and writes the response objects.</summary>
public static class OpenAiProtocol
{
    /// <summary>
    /// OpenAI's <c>logprobs</c> object of a choice: <c>{"content": [{token, logprob, bytes, top_logprobs}], "refusal": null}</c>.
    /// A log-probability of −∞ (no probability under the method's distribution) is written as −9999, OpenAI's value for
    /// "very unlikely"; a token no distribution was recorded for has <c>logprob: null</c>. <c>bytes</c> are the UTF-8
    /// bytes of the token's decoded text.
    /// </summary>
    public static JsonObject LogprobsJson(IEnumerable<TokenLogprob> tokens)
    {
        var content = new JsonArray();
        foreach (var t in tokens)
        {
            var top = new JsonArray();
            foreach (var a in t.Top) top.Add(new JsonObject { ["token"] = a.Text, ["logprob"] = Finite(a.Logprob), ["bytes"] = Bytes(a.Text) });
            content.Add(new JsonObject
            {
                ["token"] = t.Text, ["logprob"] = t.Logprob is { } l ? Finite(l) : null, ["bytes"] = Bytes(t.Text), ["top_logprobs"] = top,
            });
        }
        return new JsonObject { ["content"] = content, ["refusal"] = null };
    }

    /// <summary>What OpenAI writes for a token of zero probability.</summary>
    public const double ZeroProbabilityLogprob = -9999.0;

    private static double Finite(double logprob) => double.IsNegativeInfinity(logprob) ? ZeroProbabilityLogprob : logprob;

    private static JsonArray Bytes(string? text) => new([.. System.Text.Encoding.UTF8.GetBytes(text ?? "").Select(b => (JsonNode?)JsonValue.Create((int)b))]);

    /// <summary>The OpenAI error object.</summary>
    public static string ErrorJson(string message, string type, string? param, string? code) =>
        new JsonObject { ["error"] = new JsonObject { ["message"] = message, ["type"] = type, ["param"] = param, ["code"] = code } }.ToJsonString();

    /// <summary>Most <c>top_logprobs</c> a request may ask for (OpenAI's limit).</summary>
    public const int MaxTopLogprobs = 20;

    private static readonly HashSet<string> Ignored = ["user", "metadata", "store", "logit_bias", "service_tier", "parallel_tool_calls", "modalities", "prediction"];

    /// <summary>
    /// Parses the body; <paramref name="defaults"/> are the server's decode settings. <paramref name="blobs"/> are the
    /// large data URIs <see cref="BodyBlobs.Lift"/> took out of the body (their place holds <c>"\u0000blob:N"</c>).
    /// </summary>
    /// <exception cref="ApiException">400 with the field at fault.</exception>
    public static ChatCompletionRequest Parse(JsonElement root, DecodingOptions defaults, int maxTokensCap, bool allowFileUrls, bool allowHttpUrls,
        IReadOnlyList<ReadOnlyMemory<byte>>? blobs = null)
    {
        blobs ??= [];
        if (root.ValueKind != JsonValueKind.Object) throw ApiException.Invalid("the request body must be a JSON object");
        string? model = null; List<ChatMessage>? messages = null; bool stream = false, includeUsage = false;
        int? maxTokens = null, topLogprobs = null; double? temperature = null, topP = null; long? seed = null;
        bool logprobs = false;
        var ext = new SafeCoDeExtension(defaults, null, null);
        foreach (var p in root.EnumerateObject())
        {
            var v = p.Value;
            switch (p.Name)
            {
                case "model": model = Str(v, "model"); break;
                case "messages": messages = Messages(v, allowFileUrls, allowHttpUrls, blobs); break;
                case "stream": stream = v.ValueKind == JsonValueKind.Null ? false : Bool(v, "stream"); break;
                case "stream_options":
                    if (v.ValueKind == JsonValueKind.Null) break;
                    if (v.ValueKind != JsonValueKind.Object) throw ApiException.Invalid("stream_options must be an object", "stream_options");
                    if (v.TryGetProperty("include_usage", out var iu) && iu.ValueKind != JsonValueKind.Null) includeUsage = Bool(iu, "stream_options.include_usage");
                    break;
                case "max_tokens" or "max_completion_tokens":
                    if (v.ValueKind == JsonValueKind.Null) break;
                    int n = Int(v, p.Name);
                    if (n < 1) throw ApiException.Invalid($"{p.Name} must be at least 1", p.Name);
                    maxTokens = Math.Min(n, maxTokensCap);
                    break;
                case "temperature":
                    if (v.ValueKind == JsonValueKind.Null) break;
                    temperature = Num(v, "temperature");
                    if (temperature is < 0 or > 2) throw ApiException.Invalid("temperature must be between 0 and 2", "temperature");
                    break;
                case "top_p":
                    if (v.ValueKind == JsonValueKind.Null) break;
                    topP = Num(v, "top_p");
                    if (topP is <= 0 or > 1) throw ApiException.Invalid("top_p must be in (0, 1]", "top_p");
                    break;
                case "seed": if (v.ValueKind != JsonValueKind.Null) seed = Long(v, "seed"); break;
                case "n": if (v.ValueKind != JsonValueKind.Null && Int(v, "n") != 1) throw ApiException.Invalid("only n = 1 is supported", "n", "unsupported_value"); break;
                case "frequency_penalty" or "presence_penalty":
                    if (v.ValueKind != JsonValueKind.Null && Num(v, p.Name) != 0) throw ApiException.Invalid($"{p.Name} is not supported (only 0)", p.Name, "unsupported_value");
                    break;
                case "stop":
                    if (v.ValueKind is JsonValueKind.Null) break;
                    if (v.ValueKind == JsonValueKind.Array && v.GetArrayLength() == 0) break;
                    throw ApiException.Invalid("stop sequences are not supported", "stop", "unsupported_parameter");
                case "tools" or "functions":
                    if (v.ValueKind is JsonValueKind.Null || (v.ValueKind == JsonValueKind.Array && v.GetArrayLength() == 0)) break;
                    throw ApiException.Invalid("tools are not supported", p.Name, "unsupported_parameter");
                case "tool_choice" or "function_call":
                    if (v.ValueKind is JsonValueKind.Null || (v.ValueKind == JsonValueKind.String && v.GetString() is "none" or "auto")) break;
                    throw ApiException.Invalid("tools are not supported", p.Name, "unsupported_parameter");
                case "response_format":
                    if (v.ValueKind is JsonValueKind.Null) break;
                    if (v.ValueKind == JsonValueKind.Object && v.TryGetProperty("type", out var rt) && rt.ValueKind == JsonValueKind.String && rt.GetString() == "text") break;
                    throw ApiException.Invalid("only response_format {\"type\": \"text\"} is supported", "response_format");
                case "logprobs": logprobs = v.ValueKind != JsonValueKind.Null && Bool(v, "logprobs"); break;
                case "top_logprobs":
                    if (v.ValueKind == JsonValueKind.Null) break;
                    topLogprobs = Int(v, "top_logprobs");
                    if (topLogprobs < 0) throw ApiException.Invalid($"top_logprobs must be at least 0, not {topLogprobs}", "top_logprobs", "integer_below_min_value");
                    if (topLogprobs > MaxTopLogprobs) throw ApiException.Invalid($"top_logprobs must be at most {MaxTopLogprobs}, not {topLogprobs}", "top_logprobs", "integer_above_max_value");
                    break;
                case "safecode": ext = Extension(v, defaults); break;
                default:
                    if (Ignored.Contains(p.Name)) break;
                    throw ApiException.Invalid($"unknown field '{p.Name}'", p.Name, "unknown_parameter");
            }
        }
        if (messages is null) throw ApiException.Invalid("messages is required", "messages");
        if (topLogprobs is not null && !logprobs) throw ApiException.Invalid("top_logprobs needs logprobs: true", "top_logprobs", "invalid_value");
        if (logprobs && DecodingMethods.Of(ext.Options) is var method && method.After(ext.Options) is { Count: > 0 } after)
            throw ApiException.Invalid($"logprobs are not available with mode {ext.Options.Method}: its step{(after.Count == 1 ? "" : "s")} after decoding " +
                $"({string.Join(", ", after.Select(a => a.Name))}) may replace the answer with text no distribution produced", "logprobs", "logprobs_unsupported");
        return new ChatCompletionRequest(model, messages, stream, includeUsage, maxTokens, temperature, topP, seed, ext, logprobs ? topLogprobs ?? 0 : null);
    }

    private static List<ChatMessage> Messages(JsonElement v, bool allowFiles, bool allowHttp, IReadOnlyList<ReadOnlyMemory<byte>> blobs)
    {
        if (v.ValueKind != JsonValueKind.Array) throw ApiException.Invalid("messages must be an array", "messages");
        if (v.GetArrayLength() == 0) throw ApiException.Invalid("messages must not be empty", "messages");
        var list = new List<ChatMessage>();
        int i = 0;
        foreach (var m in v.EnumerateArray())
        {
            string at = $"messages[{i++}]";
            if (m.ValueKind != JsonValueKind.Object) throw ApiException.Invalid($"{at} must be an object", at);
            if (!m.TryGetProperty("role", out var r)) throw ApiException.Invalid($"{at}.role is required", $"{at}.role");
            var role = Str(r, $"{at}.role") switch
            {
                "system" or "developer" => ChatRole.System, "user" => ChatRole.User, "assistant" => ChatRole.Assistant,
                var x => throw ApiException.Invalid($"{at}.role '{x}' is not supported (system, developer, user, assistant)", $"{at}.role"),
            };
            if (m.TryGetProperty("tool_calls", out var tc) && tc.ValueKind == JsonValueKind.Array && tc.GetArrayLength() > 0)
                throw ApiException.Invalid("tool calls are not supported", $"{at}.tool_calls");
            var contents = new List<AIContent>();
            if (m.TryGetProperty("content", out var c))
            {
                switch (c.ValueKind)
                {
                    case JsonValueKind.String: contents.Add(new TextContent(c.GetString())); break;
                    case JsonValueKind.Null: break;
                    case JsonValueKind.Array:
                        int j = 0;
                        foreach (var part in c.EnumerateArray()) contents.Add(Part(part, $"{at}.content[{j++}]", allowFiles, allowHttp, blobs));
                        break;
                    default: throw ApiException.Invalid($"{at}.content must be a string or an array of parts", $"{at}.content");
                }
            }
            else if (role != ChatRole.Assistant) throw ApiException.Invalid($"{at}.content is required", $"{at}.content");
            list.Add(new ChatMessage(role, contents));
        }
        return list;
    }

    private static AIContent Part(JsonElement part, string at, bool allowFiles, bool allowHttp, IReadOnlyList<ReadOnlyMemory<byte>> blobs)
    {
        if (part.ValueKind != JsonValueKind.Object || !part.TryGetProperty("type", out var t)) throw ApiException.Invalid($"{at} must be an object with a type", at);
        switch (Str(t, $"{at}.type"))
        {
            case "text":
                if (!part.TryGetProperty("text", out var text)) throw ApiException.Invalid($"{at}.text is required", $"{at}.text");
                return new TextContent(Str(text, $"{at}.text"));
            case "image_url":
                if (!part.TryGetProperty("image_url", out var iu)) throw ApiException.Invalid($"{at}.image_url is required", $"{at}.image_url");
                JsonElement u = iu;
                if (iu.ValueKind == JsonValueKind.Object && !iu.TryGetProperty("url", out u)) throw ApiException.Invalid($"{at}.image_url.url is required", $"{at}.image_url.url");
                if (u.ValueKind == JsonValueKind.String && BodyBlobs.Index(u.GetString()!, blobs.Count) is int blob && DataUri(blobs[blob].Span, $"{at}.image_url.url") is { } data)
                    return data;
                var url = Str(u, $"{at}.image_url.url");
                if (BodyBlobs.Index(url, blobs.Count) is int lifted) url = System.Text.Encoding.UTF8.GetString(blobs[lifted].Span);
                return Image(url, $"{at}.image_url.url", allowFiles, allowHttp);
            case var other:
                throw ApiException.Invalid($"{at}.type '{other}' is not supported (text, image_url)", $"{at}.type");
        }
    }

    /// <summary>
    /// A data URI decoded straight from the request's UTF-8 bytes: a 26 MB image costs its 20 MB of bytes, not two
    /// more 52 MB strings. Null when it is not a plain base64 data URI (whitespace, other encodings): the string path reads it.
    /// </summary>
    private static DataContent? DataUri(ReadOnlySpan<byte> s, string at)
    {
        if (s.Length < 5 || !System.Text.Encoding.ASCII.GetString(s[..5]).Equals("data:", StringComparison.OrdinalIgnoreCase) || s.IndexOf((byte)'\\') >= 0) return null;
        int comma = s.IndexOf((byte)',');
        if (comma < 0 || comma > 256) return null;
        var header = System.Text.Encoding.ASCII.GetString(s[..comma]);
        if (!header.EndsWith(";base64", StringComparison.OrdinalIgnoreCase) || header.IndexOf(';') is var semi && semi < 0) return null;
        var media = header[5..semi];
        if (!media.StartsWith("image/", StringComparison.OrdinalIgnoreCase)) throw ApiException.Invalid($"the data URI's media type '{media}' is not an image", at, "invalid_image");
        var payload = s[(comma + 1)..];
        int pad = payload.Length > 0 && payload[^1] == (byte)'=' ? payload.Length > 1 && payload[^2] == (byte)'=' ? 2 : 1 : 0;
        if (payload.Length % 4 != 0) return null;
        var bytes = new byte[payload.Length / 4 * 3 - pad];
        var status = System.Buffers.Text.Base64.DecodeFromUtf8(payload, bytes, out _, out int written);
        if (status != System.Buffers.OperationStatus.Done || written != bytes.Length) return null;
        return new DataContent(bytes, media.ToLowerInvariant());
    }

    private static AIContent Image(string url, string at, bool allowFiles, bool allowHttp)
    {
        if (url.StartsWith("data:", StringComparison.OrdinalIgnoreCase))
        {
            int comma = url.IndexOf(',');
            if (comma < 0 || !url[..comma].EndsWith(";base64", StringComparison.OrdinalIgnoreCase))
                throw ApiException.Invalid("an image data URI must be base64 (data:image/png;base64,...)", at, "invalid_image");
            var media = url[5..url.IndexOf(';')];
            if (!media.StartsWith("image/", StringComparison.OrdinalIgnoreCase)) throw ApiException.Invalid($"the data URI's media type '{media}' is not an image", at, "invalid_image");
            byte[] bytes;
            try { bytes = Convert.FromBase64String(url[(comma + 1)..]); }
            catch (FormatException) { throw ApiException.Invalid("the image data URI is not valid base64", at, "invalid_image"); }
            return new DataContent(bytes, media.ToLowerInvariant());
        }
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri)) throw ApiException.Invalid("the image URL is neither a data URI nor an absolute URL", at, "invalid_image_url");
        if (uri.IsFile)
        {
            if (!allowFiles) throw ApiException.Invalid("file: image URLs are disabled on this server (start it with --allow-file-urls)", at, "image_url_not_allowed");
            return new UriContent(uri, MediaTypeFor(uri));
        }
        if (uri.Scheme is "http" or "https")
        {
            if (!allowHttp) throw ApiException.Invalid("http(s) image URLs are disabled on this server (start it with --allow-http-urls); send a data URI", at, "image_url_not_allowed");
            return new UriContent(uri, MediaTypeFor(uri));
        }
        throw ApiException.Invalid($"image URL scheme '{uri.Scheme}' is not supported", at, "invalid_image_url");
    }

    private static string MediaTypeFor(Uri u) => Path.GetExtension(u.AbsolutePath).ToLowerInvariant() switch
    {
        ".png" => "image/png", ".jpg" or ".jpeg" => "image/jpeg", ".webp" => "image/webp", ".gif" => "image/gif", ".bmp" => "image/bmp", _ => "image/*",
    };

    /// <summary>
    /// The <c>safecode</c> field: <c>verdict</c> and <c>judge</c> for this request, the rest decoding options by the
    /// methods' own descriptors (<c>mode</c>, <c>preset</c>, any option of the method in its JSON spelling), over the
    /// server's defaults.
    /// </summary>
    private static SafeCoDeExtension Extension(JsonElement v, DecodingOptions defaults)
    {
        if (v.ValueKind == JsonValueKind.Null) return new(defaults, null, null);
        if (v.ValueKind != JsonValueKind.Object) throw ApiException.Invalid("safecode must be an object", "safecode");
        string? verdict = null, judge = null, judgeField = null;
        var given = new List<string>();
        var decoding = new JsonObject();
        foreach (var p in v.EnumerateObject())
        {
            string at = "safecode." + p.Name;
            var x = p.Value;
            if (x.ValueKind != JsonValueKind.Null || p.Name is not ("verdict" or "judge")) given.Add(p.Name);
            if (p.Name == "verdict")
            {
                if (x.ValueKind != JsonValueKind.Null) verdict = Str(x, at) is "safe" or "unsafe" ? x.GetString() : throw ApiException.Invalid("safecode.verdict must be safe or unsafe", at);
            }
            else if (p.Name == "judge")
            {
                (verdict, judge) = Judge(x, at, verdict);
                if (x.ValueKind != JsonValueKind.Null) judgeField = x.GetString();
            }
            else decoding[p.Name] = JsonNode.Parse(x.GetRawText());
        }
        DecodingOptions o;
        try
        {
            (o, var ignored) = DecodingMethods.FromJson(JsonSerializer.SerializeToElement(decoding), "safecode", start: defaults);
            if (ignored.Count > 0)
                throw ApiException.Invalid($"{string.Join(", ", ignored.Select(n => "safecode." + n.Replace('-', '_')))} ha{(ignored.Count == 1 ? "s" : "ve")} no effect with mode {o.Method}",
                    "safecode." + ignored[0].Replace('-', '_'), "unsupported_parameter");
            o.Validate();
        }
        catch (OptionValueException ex) { throw ApiException.Invalid(ex.Message, ex.Field, ex.Code); }
        catch (ArgumentException ex) { throw ApiException.Invalid($"invalid safecode settings: {ex.Message}", "safecode"); }
        return new(o, verdict, judge) { Given = given, JudgeField = judgeField };
    }

    private static (string? Verdict, string? Judge) Judge(JsonElement x, string at, string? verdict)
    {
        if (x.ValueKind == JsonValueKind.Null) return (verdict, null);
        return Str(x, at) switch
        {
            "server" or "default" => (verdict, null),
            "self" => (verdict, "self"),
            "fixed:safe" => ("safe", null),
            "fixed:unsafe" => ("unsafe", null),
            _ => throw ApiException.Invalid("safecode.judge must be server, self, fixed:safe or fixed:unsafe (other judges are set when the server starts)", at),
        };
    }

    private static string Str(JsonElement v, string at) =>
        v.ValueKind == JsonValueKind.String ? v.GetString()! : throw ApiException.Invalid($"{at} must be a string, not {Kind(v)}", at, "invalid_type");
    private static bool Bool(JsonElement v, string at) =>
        v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : throw ApiException.Invalid($"{at} must be a boolean, not {Kind(v)}", at, "invalid_type");
    private static double Num(JsonElement v, string at) =>
        v.ValueKind == JsonValueKind.Number ? v.GetDouble() : throw ApiException.Invalid($"{at} must be a number, not {Kind(v)}", at, "invalid_type");
    private static int Int(JsonElement v, string at) =>
        v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var i) ? i : throw ApiException.Invalid($"{at} must be an integer, not {Kind(v)}", at, "invalid_type");
    private static long Long(JsonElement v, string at) =>
        v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out var i) ? i : throw ApiException.Invalid($"{at} must be an integer, not {Kind(v)}", at, "invalid_type");
    private static string Kind(JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.Number => "a number", JsonValueKind.String => "a string", JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Array => "an array", JsonValueKind.Object => "an object", _ => "null",
    };
}
