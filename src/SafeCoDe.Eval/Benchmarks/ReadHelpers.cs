using System.Text.Json;
using SixLabors.ImageSharp;

namespace SafeCoDe.Eval.Benchmarks;

/// <summary>Cheap image checks: the file is there and its header names a format ImageSharp decodes.</summary>
internal static class ImageCheck
{
    /// <summary>
    /// Null when <paramref name="path"/> is a readable image under <paramref name="root"/> (<see cref="DataFiles.Check"/>:
    /// nothing outside the data folder and nothing but a regular file is opened); otherwise why not, naming <paramref name="shown"/>.
    /// </summary>
    public static string? File(string path, string shown, string root)
    {
        if (DataFiles.Check(root, path, shown) is { } refused) return "image file " + refused;
        try
        {
            using var s = SafeCoDe.Torch.Runtime.BoundedFile.OpenRead(path, "image file");
            if (s.Length == 0) return $"image file '{shown}' is empty";
            return Identify(s) is { } why ? $"image file '{shown}' {why}" : null;
        }
        catch (SafeCoDe.Torch.Runtime.InputFileException ex) { return $"image file '{shown}' {ex.Reason}"; }
        catch (IOException ex) { return $"image file '{shown}' cannot be read: {ex.Message}"; }
        catch (UnauthorizedAccessException ex) { return $"image file '{shown}' cannot be read: {ex.Message}"; }
    }

    /// <summary>Null when <paramref name="bytes"/> hold an image; otherwise why not, naming <paramref name="shown"/>.</summary>
    public static string? Bytes(byte[] bytes, string shown)
    {
        if (bytes.Length == 0) return $"{shown} holds no image bytes";
        using var s = new MemoryStream(bytes, writable: false);
        return Identify(s) is { } why ? $"{shown} {why}" : null;
    }

    private static string? Identify(Stream s)
    {
        try
        {
            var info = Image.Identify(s);
            if (info is null) return "is not an image format that can be decoded (PNG, JPEG, WebP, BMP, GIF, TIFF, TGA, PBM)";
            if (info.Width <= 0 || info.Height <= 0) return $"has no pixels ({info.Width}x{info.Height})";
            return null;
        }
        catch (Exception ex) when (ex is not OutOfMemoryException) // a broken header must never stop a run
        {
            return $"does not decode: {ex.Message}";
        }
    }
}

/// <summary>Field access on JSON records that turns every wrong shape into a reason naming the field.</summary>
internal static class JsonFields
{
    /// <summary>A required non-empty string field; null and a reason when it is missing, null, empty or not a string.</summary>
    public static string? Text(JsonElement obj, string name, out string? problem)
    {
        problem = null;
        if (!obj.TryGetProperty(name, out var v)) { problem = $"field '{name}' is missing"; return null; }
        switch (v.ValueKind)
        {
            case JsonValueKind.String:
                var s = v.GetString()!;
                if (string.IsNullOrWhiteSpace(s)) { problem = $"field '{name}' is empty"; return null; }
                return s;
            case JsonValueKind.Null: problem = $"field '{name}' is null"; return null;
            default: problem = $"field '{name}' is {Kind(v)}, expected a string"; return null;
        }
    }

    /// <summary>An optional field as text: strings as they are, numbers and booleans as written, anything else absent.</summary>
    public static string? Optional(JsonElement obj, string name)
    {
        if (obj.ValueKind != JsonValueKind.Object || !obj.TryGetProperty(name, out var v)) return null;
        return Scalar(v);
    }

    /// <summary>
    /// A field the metrics group by: its text, or null when it is absent, null or empty; a reason when it holds
    /// anything but text (such a record would otherwise drop out of the per-group rates unnoticed).
    /// </summary>
    public static string? Group(JsonElement obj, string name, out string? problem, string use = "the metrics group by it")
    {
        problem = null;
        if (obj.ValueKind != JsonValueKind.Object || !obj.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind != JsonValueKind.String)
        {
            problem = $"field '{name}' is {Kind(v)}, expected a string ({use})";
            return null;
        }
        var s = v.GetString()!;
        return string.IsNullOrWhiteSpace(s) ? null : s;
    }

    /// <summary>A scalar as text (strings unchanged, numbers and booleans as written); null for null, objects, arrays.</summary>
    public static string? Scalar(JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.String => v.GetString(),
        JsonValueKind.Number => v.GetRawText(),
        JsonValueKind.True => "true",
        JsonValueKind.False => "false",
        _ => null,
    };

    /// <summary>"a number", "an array", … for messages.</summary>
    public static string Kind(JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        _ => "undefined",
    };

    /// <summary>Parses a whole JSON file; null and a reason when it cannot be read or parsed.</summary>
    public static JsonDocument? Parse(string path, string shown, out string? problem)
    {
        problem = null;
        try
        {
            using var s = DataFiles.Open(path, "data file");
            return JsonDocument.Parse(s, Options);
        }
        catch (SafeCoDe.Torch.Runtime.InputFileException ex) { problem = $"'{shown}' {ex.Reason}"; }
        catch (SafeCoDe.Torch.Runtime.InputLimitException) { problem = $"'{shown}' is larger than the {SafeCoDe.Torch.Runtime.InputLimits.Current.MaxDataFileBytes >> 20} MiB limit (InputLimits.MaxDataFileBytes)"; }
        catch (JsonException ex) { problem = $"'{shown}' is not valid JSON: {ex.Message}"; }
        catch (IOException ex) { problem = $"'{shown}' cannot be read: {ex.Message}"; }
        catch (UnauthorizedAccessException ex) { problem = $"'{shown}' cannot be read: {ex.Message}"; }
        return null;
    }

    /// <summary>Lenient about what hand-edited files contain: comments and trailing commas.</summary>
    public static readonly JsonDocumentOptions Options = new() { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true, MaxDepth = 256 };
}

/// <summary>Builds the group and label maps, leaving out null values.</summary>
internal sealed class TextMap
{
    private readonly Dictionary<string, string> _map = new(StringComparer.Ordinal);

    public TextMap Add(string key, string? value)
    {
        if (value is not null) _map[key] = value;
        return this;
    }

    public IReadOnlyDictionary<string, string> Build() => _map;
}

/// <summary>Checks a selection against the values a copy has.</summary>
internal static class Selection
{
    /// <summary>
    /// The selected values (all of <paramref name="available"/> when <paramref name="selected"/> is null); a value the
    /// copy does not have is an error listing the ones it has. Matching ignores case; the copy's spelling is returned.
    /// </summary>
    public static IReadOnlySet<string> Check(IReadOnlySet<string>? selected, IReadOnlyCollection<string> available, string what, string benchmark)
    {
        if (selected is null) return new HashSet<string>(available, StringComparer.Ordinal);
        var result = new HashSet<string>(StringComparer.Ordinal);
        foreach (var s in selected)
        {
            var hit = available.FirstOrDefault(a => string.Equals(a, s.Trim(), StringComparison.OrdinalIgnoreCase))
                ?? throw new BenchmarkLayoutException($"{benchmark} has no {what} '{s}' here; {what}s present: {string.Join(", ", available)}");
            result.Add(hit);
        }
        return result;
    }
}

/// <summary>Paths named inside data files.</summary>
internal static class DataPaths
{
    /// <summary>
    /// <paramref name="relative"/> under <paramref name="dir"/> as an absolute path; a name written with Windows
    /// separators is also tried with '/' when the literal one is not a file.
    /// </summary>
    public static string Under(string dir, string relative)
    {
        var path = Path.GetFullPath(Path.Combine(dir, relative));
        if (!File.Exists(path) && relative.Contains('\\') && Path.DirectorySeparatorChar == '/')
        {
            var alt = Path.GetFullPath(Path.Combine(dir, relative.Replace('\\', '/')));
            if (File.Exists(alt)) return alt;
        }
        return path;
    }
}
