using System.Globalization;
using System.Numerics;
using System.Text.Json;
using System.Text.Json.Nodes;
using SafeCoDe.Torch.Runtime;

namespace SafeCoDe.Torch.Decoding.Methods;

/// <summary>A value given for an option that is not of its type or form; the message names the option as the caller spells it.</summary>
/// <param name="message">What is wrong, naming the option.</param>
/// <param name="field">The option or field at fault as the caller spells it (e.g. <c>--alpha</c>, <c>safecode.alpha</c>).</param>
/// <param name="code">invalid_type (not of the option's type), invalid_value (of the type but not accepted), unknown_parameter (no such option).</param>
public sealed class OptionValueException(string message, string? field = null, string code = "invalid_value") : ArgumentException(message)
{
    /// <summary>The option or field at fault.</summary>
    public string? Field { get; } = field;
    /// <summary>invalid_type, invalid_value or unknown_parameter.</summary>
    public string Code { get; } = code;
}

/// <summary>How an option's values are read from a command line, a JSON value or a .NET object, and written to JSON.</summary>
public abstract class OptionCodec<T>
{
    /// <summary>True for a switch that may be given without a value (<c>--greedy</c>).</summary>
    public virtual bool IsSwitch => false;
    /// <summary>The accepted values for help and errors (null: any of the type).</summary>
    public virtual IReadOnlyList<string>? Choices => null;
    /// <summary>Reads command-line text; <paramref name="at"/> names the option (e.g. <c>--alpha</c>).</summary>
    public abstract T Parse(string text, string at);
    /// <summary>Reads a JSON value; <paramref name="at"/> names the field (e.g. <c>safecode.alpha</c>).</summary>
    public abstract T Read(JsonElement value, string at);
    /// <summary>Writes a value as JSON.</summary>
    public abstract JsonNode? Write(T value);
    /// <summary>Takes a .NET value (from <c>ChatOptions.AdditionalProperties</c>): the type itself, or its text or JSON form.</summary>
    public virtual T From(object? value, string at) => value switch
    {
        T t => t,
        JsonElement e => Read(e, at),
        string s => Parse(s, at),
        null => throw new OptionValueException($"{at}: a value is required", at),
        _ => Read(JsonSerializer.SerializeToElement(value), at),
    };

    /// <summary>"a number", "a string", … for messages.</summary>
    protected static string Kind(JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.Number => "a number", JsonValueKind.String => "a string", JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Array => "an array", JsonValueKind.Object => "an object", _ => "null",
    };
}

/// <summary>The codecs of the option types the built-in methods use.</summary>
public static class OptionCodecs
{
    /// <summary>true/false; a switch on the command line.</summary>
    public static OptionCodec<bool> Bool { get; } = new BoolCodec();
    /// <summary>A 32-bit integer.</summary>
    public static OptionCodec<int> Int { get; } = new NumberCodec<int>("an integer", NumberStyles.Integer, e => e.TryGetInt32(out var i) ? i : null);
    /// <summary>A 32-bit integer or null.</summary>
    public static OptionCodec<int?> OptionalInt { get; } = new Optional<int>(Int);
    /// <summary>A 64-bit integer or null.</summary>
    public static OptionCodec<long?> OptionalLong { get; } = new Optional<long>(new NumberCodec<long>("an integer", NumberStyles.Integer, e => e.TryGetInt64(out var l) ? l : null));
    /// <summary>A finite or infinite double (ranges are the options record's to check).</summary>
    public static OptionCodec<double> Double { get; } = new NumberCodec<double>("a number", NumberStyles.Float, e => e.GetDouble());
    /// <summary>Lines of text: on the command line a FILE (one entry per non-empty line), in JSON an array of strings.</summary>
    public static OptionCodec<IReadOnlyList<string>> Lines { get; } = new LinesCodec();
    /// <summary>An enum spelled by <paramref name="names"/> on the command line and in JSON.</summary>
    public static OptionCodec<TEnum> Choice<TEnum>(params (TEnum Value, string Name)[] names) where TEnum : struct, Enum => new ChoiceCodec<TEnum>(names);

    /// <summary>"a, b or c".</summary>
    public static string OneOf(IReadOnlyList<string> values) => values.Count switch
    {
        0 => "", 1 => values[0],
        _ => string.Join(", ", values.Take(values.Count - 1)) + " or " + values[^1],
    };

    private sealed class BoolCodec : OptionCodec<bool>
    {
        public override bool IsSwitch => true;
        public override bool Parse(string text, string at) => text.Trim().ToLowerInvariant() switch
        {
            "true" or "1" or "yes" or "on" => true, "false" or "0" or "no" or "off" => false,
            _ => throw new OptionValueException($"{at} '{text}': expected true or false", at),
        };
        public override bool Read(JsonElement v, string at) =>
            v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : throw new OptionValueException($"{at} must be a boolean, not {Kind(v)}", at, "invalid_type");
        public override JsonNode? Write(bool value) => JsonValue.Create(value);
    }

    private sealed class NumberCodec<T>(string what, NumberStyles style, Func<JsonElement, T?> read) : OptionCodec<T> where T : struct, INumber<T>
    {
        public override T Parse(string text, string at) =>
            T.TryParse(text.Trim(), style, CultureInfo.InvariantCulture, out var v) ? v : throw new OptionValueException($"{at} '{text}': expected {what}", at);
        public override T Read(JsonElement v, string at) =>
            v.ValueKind == JsonValueKind.Number && read(v) is { } x ? x : throw new OptionValueException($"{at} must be {what}, not {Kind(v)}", at, "invalid_type");
        public override JsonNode? Write(T value) => JsonValue.Create(value);
    }

    private sealed class Optional<T>(OptionCodec<T> inner) : OptionCodec<T?> where T : struct
    {
        public override T? Parse(string text, string at) => inner.Parse(text, at);
        public override T? Read(JsonElement v, string at) => v.ValueKind == JsonValueKind.Null ? null : inner.Read(v, at);
        public override JsonNode? Write(T? value) => value is { } v ? inner.Write(v) : null;
        public override T? From(object? value, string at) => value is null ? null : inner.From(value, at);
    }

    private sealed class LinesCodec : OptionCodec<IReadOnlyList<string>>
    {
        public override IReadOnlyList<string> Parse(string path, string at)
        {
            if (Directory.Exists(path)) throw new OptionValueException($"{at} {path}: is a directory, not a file", at);
            if (!File.Exists(path)) throw new OptionValueException($"{at} {path}: file not found", at);
            var lines = BoundedFile.ReadAllText(path, InputLimits.Current.MaxConfigFileBytes, at + " file").Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0).ToArray();
            return lines.Length > 0 ? lines : throw new OptionValueException($"{at} {path}: the file has no non-empty line", at);
        }
        public override IReadOnlyList<string> Read(JsonElement v, string at)
        {
            if (v.ValueKind != JsonValueKind.Array) throw new OptionValueException($"{at} must be an array of strings, not {Kind(v)}", at, "invalid_type");
            return v.EnumerateArray().Select((e, i) => e.ValueKind == JsonValueKind.String ? e.GetString()! : throw new OptionValueException($"{at}[{i}] must be a string, not {Kind(e)}", at, "invalid_type")).ToArray();
        }
        public override JsonNode? Write(IReadOnlyList<string> value) => new JsonArray(value.Select(s => (JsonNode?)JsonValue.Create(s)).ToArray());
        public override IReadOnlyList<string> From(object? value, string at) => value is not string && value is IEnumerable<string> e ? e.ToArray() : base.From(value, at);
    }

    private sealed class ChoiceCodec<TEnum>((TEnum Value, string Name)[] names) : OptionCodec<TEnum> where TEnum : struct, Enum
    {
        public override IReadOnlyList<string> Choices { get; } = names.Select(n => n.Name).ToArray();
        public override TEnum Parse(string text, string at)
        {
            var s = text.Trim();
            foreach (var (value, name) in names)
                if (string.Equals(name, s, StringComparison.OrdinalIgnoreCase)) return value;
            throw new OptionValueException($"{at} '{text}': expected {OneOf(Choices)}", at);
        }
        public override TEnum Read(JsonElement v, string at) =>
            v.ValueKind == JsonValueKind.String ? Parse(v.GetString()!, at) : throw new OptionValueException($"{at} must be one of {OneOf(Choices)}, not {Kind(v)}", at, "invalid_type");
        public override JsonNode? Write(TEnum value) => JsonValue.Create(Name(value));
        public override TEnum From(object? value, string at) => value is TEnum t ? t : base.From(value?.ToString(), at);
        public string Name(TEnum value) => names.First(n => n.Value.Equals(value)).Name;
    }
}
