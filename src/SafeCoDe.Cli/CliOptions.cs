using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;

namespace SafeCoDe.Cli;

/// <summary>Builders for options that several commands share, so they are spelled and described the same everywhere.</summary>
public static class CliOptions
{
    /// <summary>A value from a fixed set (validated, completed, listed in help as <c>&lt;a|b|c&gt;</c>).</summary>
    public static Option<string> Choice(string name, string description, string[] values, string? defaultValue = null)
    {
        var o = new Option<string>(name) { Description = description, HelpName = string.Join('|', values) };
        if (defaultValue is not null) o.DefaultValueFactory = _ => defaultValue;
        o.CompletionSources.Add(values);
        o.Validators.Add(r =>
        {
            if (r.Tokens.Count == 0) return;
            var v = r.Tokens[^1].Value;
            if (!values.Contains(v, StringComparer.OrdinalIgnoreCase))
                r.AddError($"{name} '{v}': expected {Join(values)}");
        });
        return o;
    }

    /// <summary>An enum option spelled as <see cref="CliNames"/> spells it.</summary>
    public static Option<string> Choice<T>(string name, string description, T? defaultValue = null) where T : struct, Enum =>
        Choice(name, description, CliNames.All<T>(), defaultValue is { } d ? CliNames.Name(d) : null);

    /// <summary>Parses the value of a <see cref="Choice{T}"/> option.</summary>
    public static T ParseChoice<T>(string text, string name) where T : struct, Enum =>
        CliNames.TryParse<T>(text) ?? throw new UsageException($"{name} '{text}': expected {Join(CliNames.All<T>())}");

    /// <summary><c>--model DIR</c>.</summary>
    public static Option<string> Model(string description = "Hugging Face checkpoint folder (config.json, *.safetensors, tokenizer files)") =>
        new Option<string>("--model", "-m") { Description = description, Required = true, HelpName = "DIR" }.ModelFolder();

    /// <summary><c>--model DIR</c> that may be omitted: it then means the shipped SafeScenes model (<see cref="ShippedModel"/>).</summary>
    public static Option<string> ModelOrShipped(string description = "Hugging Face checkpoint folder (config.json, *.safetensors, tokenizer files)") =>
        new Option<string>("--model", "-m") { Description = $"{description}; {ShippedModel.HelpText}", HelpName = "DIR", DefaultValueFactory = _ => ShippedModel.Dir }.ModelFolder();

    /// <summary>
    /// A file given as a model folder is named as a file when the line is parsed (not "directory not found" from the
    /// loader, after the native runtime loaded).
    /// </summary>
    private static Option<string> ModelFolder(this Option<string> o)
    {
        o.Validators.Add(r =>
        {
            if (r.Tokens.Count > 0 && r.Tokens[^1].Value is { } v && File.Exists(v))
                r.AddError($"{o.Name} {v}: is a file, not a model folder (give the folder that holds config.json)");
        });
        return o;
    }

    /// <summary><c>--device cpu|cuda|auto</c>.</summary>
    public static Option<string> Device(string defaultValue = "auto") =>
        Choice("--device", "Where to run: cpu, cuda, or auto (CUDA when a CUDA libtorch and a GPU are there)", ["cpu", "cuda", "auto"], defaultValue);

    /// <summary><c>--dtype</c>; null default means "the engine's choice".</summary>
    public static Option<string> DType(string? defaultValue, string description = "Weights and activations: float32, bfloat16 or float16") =>
        Choice("--dtype", description, ["float32", "bfloat16", "float16"], defaultValue);

    /// <summary><c>--json</c>: exactly one JSON object on stdout, nothing else.</summary>
    public static Option<bool> Json(string description = "Print one JSON object instead of text (no progress output)") =>
        new("--json") { Description = description };

    /// <summary><c>--quiet</c>: no progress output.</summary>
    public static Option<bool> Quiet() => new("--quiet", "-q") { Description = "No progress output on stderr" };

    /// <summary>
    /// Marks <paramref name="o"/> as naming a folder the command writes into: an existing file there is a usage error
    /// saying so (not a "file not found" from the first write below it).
    /// </summary>
    public static Option<string> Folder(this Option<string> o)
    {
        o.Validators.Add(r =>
        {
            if (r.Tokens.Count > 0 && r.Tokens[^1].Value is { } v && File.Exists(v))
                r.AddError($"{o.Name} {v}: is an existing file; give a folder (it is created when missing)");
        });
        return o;
    }

    /// <summary>True when the option was written on the command line (not a default).</summary>
    public static bool Given(this ParseResult p, Option o) => p.GetResult(o) is { Implicit: false };

    /// <summary>Parses a size such as 4GB, 500MB, 64KB or a byte count.</summary>
    public static long ParseBytes(string text, string name)
    {
        var s = text.Trim().ToUpperInvariant();
        long mult = s.EndsWith("GB") ? 1L << 30 : s.EndsWith("MB") ? 1L << 20 : s.EndsWith("KB") ? 1L << 10 : 1;
        var num = s.TrimEnd('B', 'G', 'M', 'K');
        if (!double.TryParse(num, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || v <= 0)
            throw new UsageException($"{name} '{text}': expected a size such as 4GB or 500MB");
        return (long)(v * mult);
    }

    private static string Join(string[] values) => values.Length switch
    {
        1 => values[0],
        _ => string.Join(", ", values[..^1]) + " or " + values[^1],
    };
}
