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
        byte[] bytes;
        try { bytes = Runtime.BoundedFile.ReadAllBytes(path, Runtime.InputLimits.Current.MaxConfigFileBytes, "config file"); }
        catch (Runtime.InputFileException e) { throw new ConfigException(path, null, e.Reason, e); }
        catch (Runtime.InputLimitException e) { throw new ConfigException(path, null, $"larger than the {Runtime.InputLimits.Current.MaxConfigFileBytes:N0}-byte limit for config files (InputLimits.MaxConfigFileBytes)", e); }
        catch (IOException e) { throw new ConfigException(path, null, "cannot be read: " + e.Message, e); }
        try
        {
            using var doc = JsonDocument.Parse(bytes, new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
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

    /// <summary>The full dotted path of <paramref name="key"/> inside the file, for error messages.</summary>
    public string PathOf(string key) => Prefix.Length == 0 ? key : Prefix + "." + key;

    /// <summary>True when the field is present and not null.</summary>
    public bool Has(string key) => _obj.TryGetProperty(key, out var v) && v.ValueKind != JsonValueKind.Null;

    /// <summary>
    /// Every field of this object as a string, in file order, in one pass (linear time however many there are);
    /// a key that appears twice or a value that is not a string is an error.
    /// </summary>
    /// <exception cref="ConfigException">A duplicate key or a non-string value.</exception>
    public IEnumerable<KeyValuePair<string, string>> StringEntries()
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var p in _obj.EnumerateObject())
        {
            if (!seen.Add(p.Name)) throw Error(p.Name, "appears twice");
            yield return new(p.Name, AsString(p.Name, p.Value));
        }
    }

    /// <summary>The property names of this object, in file order (null-valued ones included).</summary>
    public IEnumerable<string> Keys => _obj.EnumerateObject().Select(p => p.Name);

    private bool TryGet(string key, out JsonElement v) => _obj.TryGetProperty(key, out v) && v.ValueKind != JsonValueKind.Null;

    private ConfigException Error(string key, string message) => new(File, PathOf(key), message);

    /// <summary>The sub-object at <paramref name="key"/>, or null when absent or null.</summary>
    /// <exception cref="ConfigException">The field is not an object.</exception>
    public JsonConfig? Object(string key)
    {
        if (!TryGet(key, out var v)) return null;
        if (v.ValueKind != JsonValueKind.Object) throw Error(key, $"expected an object, found {v.ValueKind}");
        return new JsonConfig(File, PathOf(key), v);
    }

    /// <summary>The sub-object, or an empty object when absent (so class defaults apply).</summary>
    public JsonConfig ObjectOrEmpty(string key) => Object(key) ?? new JsonConfig(File, PathOf(key), EmptyObject);

    private static readonly JsonElement EmptyObject = JsonDocument.Parse("{}").RootElement.Clone();

    /// <summary>A required integer (a float with no fractional part is accepted).</summary>
    /// <exception cref="ConfigException">Missing, or not an integer.</exception>
    public int Int(string key) => TryGet(key, out var v) ? AsInt(key, v) : throw Error(key, "required field is missing");
    /// <summary>An integer, or <paramref name="fallback"/> when absent.</summary>
    /// <exception cref="ConfigException">Present but not an integer.</exception>
    public int Int(string key, int fallback) => TryGet(key, out var v) ? AsInt(key, v) : fallback;
    /// <summary>An integer, or null when absent.</summary>
    /// <exception cref="ConfigException">Present but not an integer.</exception>
    public int? IntOrNull(string key) => TryGet(key, out var v) ? AsInt(key, v) : null;

    /// <summary>A required number.</summary>
    /// <exception cref="ConfigException">Missing, or not a number.</exception>
    public double Double(string key) => TryGet(key, out var v) ? AsDouble(key, v) : throw Error(key, "required field is missing");
    /// <summary>A number, or <paramref name="fallback"/> when absent.</summary>
    /// <exception cref="ConfigException">Present but not a number.</exception>
    public double Double(string key, double fallback) => TryGet(key, out var v) ? AsDouble(key, v) : fallback;
    /// <summary>A number, or null when absent.</summary>
    /// <exception cref="ConfigException">Present but not a number.</exception>
    public double? DoubleOrNull(string key) => TryGet(key, out var v) ? AsDouble(key, v) : null;

    /// <summary>A JSON boolean, or <paramref name="fallback"/> when absent (strings such as "true" are rejected).</summary>
    /// <exception cref="ConfigException">Present but not true/false.</exception>
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

    /// <summary>A required string.</summary>
    /// <exception cref="ConfigException">Missing, or not a string.</exception>
    public string String(string key) => TryGet(key, out var v) ? AsString(key, v) : throw Error(key, "required field is missing");
    /// <summary>A string, or <paramref name="fallback"/> when absent.</summary>
    /// <exception cref="ConfigException">Present but not a string.</exception>
    public string String(string key, string fallback) => TryGet(key, out var v) ? AsString(key, v) : fallback;
    /// <summary>A string, or null when absent.</summary>
    /// <exception cref="ConfigException">Present but not a string.</exception>
    public string? StringOrNull(string key) => TryGet(key, out var v) ? AsString(key, v) : null;

    /// <summary>An array of integers, or <paramref name="fallback"/> when absent.</summary>
    /// <exception cref="ConfigException">Not an array, or an element is not an integer (named by index).</exception>
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

    /// <summary>A list of integer lists (e.g. image_grid_pinpoints), or <paramref name="fallback"/> when absent.</summary>
    /// <exception cref="ConfigException">Wrong shape or element type (named by index).</exception>
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

    /// <summary>An array of strings, or <paramref name="fallback"/> when absent.</summary>
    /// <exception cref="ConfigException">Not an array, or an element is not a string.</exception>
    public string[] StringArray(string key, string[] fallback)
    {
        if (!TryGet(key, out var v)) return fallback;
        if (v.ValueKind != JsonValueKind.Array) throw Error(key, $"expected an array of strings, found {Describe(v)}");
        return v.EnumerateArray().Select((e, i) => AsString($"{key}[{i}]", e)).ToArray();
    }

    /// <summary>An array of numbers, or <paramref name="fallback"/> when absent.</summary>
    /// <exception cref="ConfigException">Not an array, or an element is not a number.</exception>
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
            if (v.TryGetInt32(out var i)) return ConfigLimits.CheckInt(File, PathOf(key), i);
            if (v.TryGetDouble(out var d) && d == Math.Floor(d) && Math.Abs(d) < int.MaxValue) return ConfigLimits.CheckInt(File, PathOf(key), (int)d);
        }
        throw Error(key, $"expected an integer, found {Describe(v)}");
    }

    private double AsDouble(string key, JsonElement v) =>
        v.ValueKind == JsonValueKind.Number
            ? ConfigLimits.CheckDouble(File, PathOf(key), v.TryGetDouble(out var d) ? d : double.PositiveInfinity)
            : throw Error(key, $"expected a number, found {Describe(v)}");

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
