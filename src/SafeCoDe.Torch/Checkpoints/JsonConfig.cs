using System.Text.Json;

namespace SafeCoDe.Torch.Checkpoints;

/// <summary>
/// A read-only view of one JSON object of a config file with typed getters. Every error names the file and the
/// field's full path (e.g. <c>text_config.rope_parameters.rope_theta</c>). Getters with a default return it when the
/// field is absent or null; a present field of the wrong type is always an error.
/// </summary>
public sealed class JsonConfig
{
    private readonly JsonElement _obj;

    /// <summary>The file this object came from.</summary>
    public string File { get; }

    /// <summary>Path of this object inside the file ("" for the root).</summary>
    public string Prefix { get; }

    private JsonConfig(string file, string prefix, JsonElement obj) { File = file; Prefix = prefix; _obj = obj; }

    /// <summary>Reads and parses a JSON object file.</summary>
    public static JsonConfig Load(string path)
    {
        if (!System.IO.File.Exists(path)) throw new ConfigException(path, null, "file not found");
        try
        {
            using var doc = JsonDocument.Parse(System.IO.File.ReadAllBytes(path), new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new ConfigException(path, null, "top level is not a JSON object");
            return new JsonConfig(path, "", doc.RootElement.Clone());
        }
        catch (JsonException e) { throw new ConfigException(path, null, "not valid JSON: " + e.Message, e); }
    }

    /// <summary>Wraps an already parsed object (e.g. for tests).</summary>
    public static JsonConfig FromJson(string json, string file = "<inline>")
    {
        using var doc = JsonDocument.Parse(json);
        return new JsonConfig(file, "", doc.RootElement.Clone());
    }

    public string PathOf(string key) => Prefix.Length == 0 ? key : Prefix + "." + key;

    public bool Has(string key) => _obj.TryGetProperty(key, out var v) && v.ValueKind != JsonValueKind.Null;

    public IEnumerable<string> Keys => _obj.EnumerateObject().Select(p => p.Name);

    private bool TryGet(string key, out JsonElement v) => _obj.TryGetProperty(key, out v) && v.ValueKind != JsonValueKind.Null;

    private ConfigException Error(string key, string message) => new(File, PathOf(key), message);

    public JsonConfig? Object(string key)
    {
        if (!TryGet(key, out var v)) return null;
        if (v.ValueKind != JsonValueKind.Object) throw Error(key, $"expected an object, found {v.ValueKind}");
        return new JsonConfig(File, PathOf(key), v);
    }

    /// <summary>The sub-object, or an empty object when absent (so class defaults apply).</summary>
    public JsonConfig ObjectOrEmpty(string key) => Object(key) ?? new JsonConfig(File, PathOf(key), EmptyObject);

    private static readonly JsonElement EmptyObject = JsonDocument.Parse("{}").RootElement.Clone();

    public int Int(string key) => TryGet(key, out var v) ? AsInt(key, v) : throw Error(key, "required field is missing");
    public int Int(string key, int fallback) => TryGet(key, out var v) ? AsInt(key, v) : fallback;
    public int? IntOrNull(string key) => TryGet(key, out var v) ? AsInt(key, v) : null;

    public double Double(string key) => TryGet(key, out var v) ? AsDouble(key, v) : throw Error(key, "required field is missing");
    public double Double(string key, double fallback) => TryGet(key, out var v) ? AsDouble(key, v) : fallback;
    public double? DoubleOrNull(string key) => TryGet(key, out var v) ? AsDouble(key, v) : null;

    public bool Bool(string key, bool fallback)
    {
        if (!TryGet(key, out var v)) return fallback;
        return v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Error(key, $"expected true or false, found {Describe(v)}"),
        };
    }

    public string String(string key) => TryGet(key, out var v) ? AsString(key, v) : throw Error(key, "required field is missing");
    public string String(string key, string fallback) => TryGet(key, out var v) ? AsString(key, v) : fallback;
    public string? StringOrNull(string key) => TryGet(key, out var v) ? AsString(key, v) : null;

    public int[] IntArray(string key, int[] fallback)
    {
        if (!TryGet(key, out var v)) return fallback;
        if (v.ValueKind != JsonValueKind.Array) throw Error(key, $"expected an array of integers, found {Describe(v)}");
        return v.EnumerateArray().Select((e, i) => AsInt($"{key}[{i}]", e)).ToArray();
    }

    /// <summary>An int or a list of ints (eos_token_id takes both forms).</summary>
    public int[] IntOrIntArray(string key, int[] fallback)
    {
        if (!TryGet(key, out var v)) return fallback;
        return v.ValueKind == JsonValueKind.Array ? IntArray(key, fallback) : [AsInt(key, v)];
    }

    public int[][] IntMatrix(string key, int[][] fallback)
    {
        if (!TryGet(key, out var v)) return fallback;
        if (v.ValueKind != JsonValueKind.Array) throw Error(key, $"expected a list of integer lists, found {Describe(v)}");
        return v.EnumerateArray().Select((row, i) =>
        {
            if (row.ValueKind != JsonValueKind.Array) throw Error($"{key}[{i}]", $"expected a list of integers, found {Describe(row)}");
            return row.EnumerateArray().Select((e, j) => AsInt($"{key}[{i}][{j}]", e)).ToArray();
        }).ToArray();
    }

    public string[] StringArray(string key, string[] fallback)
    {
        if (!TryGet(key, out var v)) return fallback;
        if (v.ValueKind != JsonValueKind.Array) throw Error(key, $"expected an array of strings, found {Describe(v)}");
        return v.EnumerateArray().Select((e, i) => AsString($"{key}[{i}]", e)).ToArray();
    }

    public double[] DoubleArray(string key, double[] fallback)
    {
        if (!TryGet(key, out var v)) return fallback;
        if (v.ValueKind != JsonValueKind.Array) throw Error(key, $"expected an array of numbers, found {Describe(v)}");
        return v.EnumerateArray().Select((e, i) => AsDouble($"{key}[{i}]", e)).ToArray();
    }

    /// <summary>Raw element for fields with several legal shapes (e.g. vision_feature_layer int or list).</summary>
    public JsonElement? Raw(string key) => TryGet(key, out var v) ? v : null;

    private int AsInt(string key, JsonElement v)
    {
        if (v.ValueKind == JsonValueKind.Number)
        {
            if (v.TryGetInt32(out var i)) return i;
            if (v.TryGetDouble(out var d) && d == Math.Floor(d) && Math.Abs(d) < int.MaxValue) return (int)d;
        }
        throw Error(key, $"expected an integer, found {Describe(v)}");
    }

    private double AsDouble(string key, JsonElement v) =>
        v.ValueKind == JsonValueKind.Number ? v.GetDouble() : throw Error(key, $"expected a number, found {Describe(v)}");

    private string AsString(string key, JsonElement v) =>
        v.ValueKind == JsonValueKind.String ? v.GetString()! : throw Error(key, $"expected a string, found {Describe(v)}");

    private static string Describe(JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.String => $"the string \"{Truncate(v.GetString()!)}\"",
        JsonValueKind.Number => $"the number {v.GetRawText()}",
        JsonValueKind.True or JsonValueKind.False => v.GetRawText(),
        JsonValueKind.Array => "an array",
        JsonValueKind.Object => "an object",
        _ => v.ValueKind.ToString().ToLowerInvariant(),
    };

    private static string Truncate(string s) => s.Length <= 40 ? s : s[..40] + "…";
}
