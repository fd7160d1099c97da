using System.Text.Json;
using System.Text.Json.Nodes;

namespace SafeCoDe.Torch.Decoding.Methods;

/// <summary>
/// The decoding methods this build knows: the built-in ones and any registered at run time (from another assembly or
/// a test). Central code asks here — the method of a request's options, every option any method takes, how to build
/// options from named values (the command line, an options file, the server's <c>safecode</c> field, the chat
/// client's properties) — and never names a method itself.
/// </summary>
public static class DecodingMethods
{
    private static readonly object Lock = new();
    private static List<IDecodingMethod> _all = [new SafeCoDeDecoding.SafeCoDeMethod(), new VanillaMethod(), new VcdMethod()];

    /// <summary>The method that decodes the model as it is, on the real image or none: text-only fallbacks and plain completions use it.</summary>
    public static string Plain => VanillaMethod.MethodName;

    /// <summary>The default method (<c>--mode</c>'s default).</summary>
    public static string Default => SafeCoDeDecoding.SafeCoDeMethod.MethodName;

    /// <summary>Every method, the built-in ones first.</summary>
    public static IReadOnlyList<IDecodingMethod> All { get { lock (Lock) return _all; } }

    /// <summary>
    /// Adds a method (e.g. from another assembly). Its name must be new, and an option it shares a name with another
    /// method's must have the same value type (one flag, one meaning).
    /// </summary>
    /// <exception cref="ArgumentException">The name is taken, or an option name clashes.</exception>
    public static void Register(IDecodingMethod method)
    {
        lock (Lock)
        {
            if (_all.Any(m => m.Name == method.Name)) throw new ArgumentException($"a decoding method named '{method.Name}' is already registered");
            foreach (var o in method.Options)
                if (_all.SelectMany(m => m.Options).FirstOrDefault(x => x.Name == o.Name) is { } other && (other.ValueType != o.ValueType || other.IsSwitch != o.IsSwitch))
                    throw new ArgumentException($"option '{o.Name}' of '{method.Name}' is a {o.ValueType.Name}, but another method's '{o.Name}' is a {other.ValueType.Name}");
            _all = [.. _all, method];
        }
    }

    /// <summary>Removes a method registered at run time (tests); the built-in ones stay.</summary>
    public static bool Unregister(string name)
    {
        lock (Lock)
        {
            if (_all.Take(3).Any(m => m.Name == name)) return false;
            int before = _all.Count;
            _all = _all.Where(m => m.Name != name).ToList();
            return _all.Count < before;
        }
    }

    /// <summary>The method named <paramref name="name"/> (case-insensitive), or null.</summary>
    public static IDecodingMethod? TryGet(string name) => All.FirstOrDefault(m => string.Equals(m.Name, name, StringComparison.OrdinalIgnoreCase));

    /// <summary>The method named <paramref name="name"/>.</summary>
    /// <exception cref="ArgumentException">No such method (the message lists them).</exception>
    public static IDecodingMethod Get(string name) =>
        TryGet(name) ?? throw new ArgumentException($"unknown decoding method '{name}': expected {OptionCodecs.OneOf(Names)}");

    /// <summary>The method <paramref name="options"/> are for.</summary>
    public static IDecodingMethod Of(DecodingOptions options) => Get(options.Method);

    /// <summary>Every method's name, in order.</summary>
    public static IReadOnlyList<string> Names => All.Select(m => m.Name).ToArray();

    /// <summary>Every option of every method, one per name (the first method's description of a shared name), in help order.</summary>
    public static IReadOnlyList<MethodOption> AllOptions => All.SelectMany(m => m.Options).DistinctBy(o => o.Name).ToArray();

    /// <summary>Every preset name of every method (for <c>--preset</c>'s help and completions).</summary>
    public static IReadOnlyList<string> AllPresets => All.SelectMany(m => m.Presets).Distinct().ToArray();

    /// <summary>The defaults of <paramref name="method"/> and <paramref name="preset"/> (null: its default preset).</summary>
    public static DecodingOptions Defaults(string method, string? preset = null) => Get(method).Defaults(preset);

    /// <summary>The option of <paramref name="method"/> named <paramref name="name"/> (flag or JSON spelling), or null.</summary>
    public static MethodOption? OptionOf(IDecodingMethod method, string name) =>
        method.Options.FirstOrDefault(o => o.Name == name || o.JsonName == name);

    /// <summary>
    /// Options of <paramref name="method"/> from named values: the preset's defaults when a preset is given, else
    /// <paramref name="start"/> carried over to the method (<see cref="Rebase"/>), else the method's defaults; then each
    /// value in order. Values of options the method does not take are not applied and are returned by name.
    /// </summary>
    public static (DecodingOptions Options, IReadOnlyList<string> Ignored) Build(string method, string? preset,
        IEnumerable<(string Name, object? Value)> values, DecodingOptions? start = null)
    {
        var m = Get(method);
        var ignored = new List<string>();
        // a preset given to a method without presets has no effect: reported like any option the method does not take
        if (preset is not null && m.Presets.Count == 0) { ignored.Add("preset"); preset = null; }
        var o = preset is not null || start is null ? m.Defaults(preset is null ? null : MatchPreset(m, preset)) : Rebase(start, m.Name);
        foreach (var (name, value) in values)
        {
            if (OptionOf(m, name) is { } opt && opt.AppliesTo(o)) o = opt.Set(o, value);
            else ignored.Add(name);
        }
        return (o, ignored);
    }

    private static string MatchPreset(IDecodingMethod m, string preset) =>
        m.Presets.FirstOrDefault(p => string.Equals(p, preset, StringComparison.OrdinalIgnoreCase))
        ?? throw new OptionValueException($"preset '{preset}': expected {OptionCodecs.OneOf(m.Presets)}", "preset");

    /// <summary>
    /// <paramref name="from"/> as options of <paramref name="method"/>: that method's defaults (of <paramref name="from"/>'s
    /// preset when it has one of that name), with every stored value of <paramref name="from"/> that the method also takes.
    /// </summary>
    public static DecodingOptions Rebase(DecodingOptions from, string method)
    {
        var m = Get(method);
        if (string.Equals(from.Method, m.Name, StringComparison.OrdinalIgnoreCase)) return from;
        var source = Of(from);
        var preset = source.PresetOf(from) is { } p && m.Presets.Contains(p) ? p : null;
        var o = m.Defaults(preset);
        foreach (var opt in source.Options.Where(x => x.Stored))
            if (OptionOf(m, opt.Name) is { Stored: true } target && target.AppliesTo(o) && target.ValueType == opt.ValueType)
                o = target.Set(o, opt.Read(JsonSerializer.SerializeToElement(opt.Write(from)), opt.Name));
        return o;
    }

    /// <summary>The options as JSON: <c>mode</c>, <c>preset</c> (when the method has presets), then every stored option by its JSON name.</summary>
    public static JsonObject ToJson(DecodingOptions options)
    {
        var m = Of(options);
        var obj = new JsonObject { ["mode"] = m.Name };
        if (m.PresetOf(options) is { } preset) obj["preset"] = preset;
        foreach (var o in m.Options.Where(o => o.Stored)) obj[o.JsonName] = o.Write(options);
        return obj;
    }

    /// <summary>
    /// Options from JSON as <see cref="ToJson"/> writes it (<c>mode</c> picks the method, default
    /// <paramref name="defaultMethod"/>); a field no method takes is an error, one the chosen method does not take is
    /// returned by name. <paramref name="at"/> prefixes field names in errors.
    /// </summary>
    /// <exception cref="OptionValueException">A field is unknown, or a value is not of its option's type.</exception>
    public static (DecodingOptions Options, IReadOnlyList<string> Ignored) FromJson(JsonElement obj, string at, string? defaultMethod = null, DecodingOptions? start = null)
    {
        if (obj.ValueKind != JsonValueKind.Object) throw new OptionValueException($"{at} must be a JSON object", at, "invalid_type");
        string method = start?.Method ?? defaultMethod ?? Default;
        string? preset = null;
        var values = new List<(string, object?)>();
        foreach (var p in obj.EnumerateObject())
        {
            string field = at.Length == 0 ? p.Name : $"{at}.{p.Name}";
            if (p.Name == "mode") method = p.Value.ValueKind == JsonValueKind.String
                ? TryGet(p.Value.GetString()!)?.Name ?? throw new OptionValueException($"{field} '{p.Value.GetString()}': expected {OptionCodecs.OneOf(Names)}", field)
                : throw new OptionValueException($"{field} must be a string", field, "invalid_type");
            else if (p.Name == "preset") preset = p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString() : throw new OptionValueException($"{field} must be a string", field, "invalid_type");
            else if (AllOptions.FirstOrDefault(o => o.JsonName == p.Name) is { } opt) values.Add((opt.Name, opt.Read(p.Value, field)));
            else throw new OptionValueException($"unknown field '{field}' (a decoding option is one of: mode, preset, {string.Join(", ", AllOptions.Select(o => o.JsonName))})", field, "unknown_parameter");
        }
        return Build(method, preset, values, start);
    }
}
