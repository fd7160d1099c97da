using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using SafeCoDe.Torch.Processing.Chat;
using SafeCoDe.Torch.Runtime;
using SafeCoDe.Torch.Safety;

namespace SafeCoDe.Cli;

/// <summary>
/// The one spelling of enum values on the command line and in JSON output/input: <c>--mode safecode</c> prints as
/// <c>"mode": "safecode"</c> and an options file saying <c>"mode": "safecode"</c> reads back.
/// </summary>
public static class CliNames
{
    private static readonly Dictionary<Type, (Enum Value, string Name)[]> Tables = new()
    {
        [typeof(Verdict)] = [(Verdict.Safe, "safe"), (Verdict.Unsafe, "unsafe")],
        [typeof(PromptStyle)] = [(PromptStyle.Official, "official"), (PromptStyle.Reference, "reference")],
        [typeof(DeviceRequest)] = [(DeviceRequest.Cpu, "cpu"), (DeviceRequest.Cuda, "cuda"), (DeviceRequest.Auto, "auto")],
    };

    /// <summary>The accepted spellings of an enum, in help order.</summary>
    public static string[] All<T>() where T : struct, Enum => All(typeof(T));

    internal static string[] All(Type t) =>
        Tables.TryGetValue(t, out var table) ? table.Select(x => x.Name).ToArray() : Enum.GetNames(t).Select(Snake).ToArray();

    /// <summary>The CLI/JSON name of a value.</summary>
    public static string Name<T>(T value) where T : struct, Enum => Name(typeof(T), value);

    internal static string Name(Type t, Enum value) =>
        Tables.TryGetValue(t, out var table) ? table.First(x => x.Value.Equals(value)).Name : Snake(value.ToString());

    /// <summary>Parses a CLI/JSON name (case-insensitive); null when it is not one.</summary>
    public static T? TryParse<T>(string text) where T : struct, Enum => TryParse(typeof(T), text) is { } v ? (T)v : null;

    internal static Enum? TryParse(Type t, string text)
    {
        var s = text.Trim();
        if (Tables.TryGetValue(t, out var table))
            return table.FirstOrDefault(x => string.Equals(x.Name, s, StringComparison.OrdinalIgnoreCase)).Value;
        foreach (var n in Enum.GetNames(t))
            if (string.Equals(Snake(n), s, StringComparison.OrdinalIgnoreCase) || string.Equals(n, s, StringComparison.OrdinalIgnoreCase))
                return (Enum)Enum.Parse(t, n);
        return null;
    }

    private static string Snake(string pascal) => JsonNamingPolicy.SnakeCaseLower.ConvertName(pascal);
}

/// <summary>JSON as the CLI writes and reads it: snake_case fields, enum values as the CLI spells them, readable UTF-8.</summary>
public static class CliJson
{
    /// <summary>Indented output; non-ASCII text and <c>&lt;</c> stay as they are.</summary>
    public static readonly JsonSerializerOptions Indented = Make(indented: true);
    /// <summary>One object per line, for <c>--jsonl</c> output.</summary>
    public static readonly JsonSerializerOptions Line = Make(indented: false);
    /// <summary>Reading an options file: unknown fields are errors (a typo must not be ignored).</summary>
    public static readonly JsonSerializerOptions Strict = Make(indented: true, strict: true);

    private static JsonSerializerOptions Make(bool indented, bool strict = false)
    {
        var o = new JsonSerializerOptions
        {
            WriteIndented = indented,
            PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
            Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
            Converters = { new CliEnumConverterFactory() },
        };
        if (strict) o.UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow;
        o.MakeReadOnly(populateMissingResolver: true);
        return o;
    }

    /// <summary>Serializes with <see cref="Indented"/> (or <see cref="Line"/>).</summary>
    public static string Write<T>(T value, bool line = false) => JsonSerializer.Serialize(value, line ? Line : Indented);

    /// <summary>
    /// Reads the decoding options object of a file: either the <c>options</c> block of a <c>generate --json</c>
    /// result, or a whole result (its <c>options</c> block is used).
    /// </summary>
    /// <exception cref="UsageException">The file is missing, a directory, not JSON, or not an object.</exception>
    public static JsonObject ReadOptionsObject(string path)
    {
        if (Directory.Exists(path)) throw new UsageException($"--options {path}: is a directory, not a JSON file");
        if (!File.Exists(path)) throw new UsageException($"--options {path}: file not found");
        JsonNode? node;
        try { node = JsonNode.Parse(SafeCoDe.Torch.Runtime.BoundedFile.ReadAllText(path, SafeCoDe.Torch.Runtime.InputLimits.Current.MaxConfigFileBytes, "options file")); }
        catch (JsonException ex) { throw new UsageException($"--options {path}: not JSON ({Describe(ex)})"); }
        if (node is not JsonObject obj) throw new UsageException($"--options {path}: expected a JSON object");
        return obj["options"] is JsonObject inner && !obj.ContainsKey("mode") ? (JsonObject)inner.DeepClone() : obj;
    }

    /// <summary>What is wrong with a file that is not JSON, without the parser's .NET wording (its position kept).</summary>
    internal static string Describe(JsonException ex)
    {
        var first = ex.Message.Split(" Path:")[0].TrimEnd('.', ' ');
        return ex.Path is { Length: > 2 } p ? $"field '{p.TrimStart('$', '.')}': {first}" : first;
    }

    private sealed class CliEnumConverterFactory : JsonConverterFactory
    {
        public override bool CanConvert(Type typeToConvert) => typeToConvert.IsEnum;

        public override JsonConverter CreateConverter(Type typeToConvert, JsonSerializerOptions options) =>
            (JsonConverter)Activator.CreateInstance(typeof(CliEnumConverter<>).MakeGenericType(typeToConvert))!;
    }

    private sealed class CliEnumConverter<T> : JsonConverter<T> where T : struct, Enum
    {
        public override T Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            if (reader.TokenType != JsonTokenType.String) throw new JsonException($"expected one of {string.Join(", ", CliNames.All<T>())}");
            var s = reader.GetString()!;
            return CliNames.TryParse<T>(s) ?? throw new JsonException($"'{s}' is not one of {string.Join(", ", CliNames.All<T>())}");
        }

        public override void Write(Utf8JsonWriter writer, T value, JsonSerializerOptions options) => writer.WriteStringValue(CliNames.Name(value));
    }
}
