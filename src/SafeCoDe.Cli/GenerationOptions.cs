using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using SafeCoDe.Torch;
using SafeCoDe.Torch.Decoding.Methods;
using SafeCoDe.Torch.Models;
using SafeCoDe.Torch.Processing.Chat;
using SafeCoDe.Torch.Runtime;
using SafeCoDe.Torch.Safety;

namespace SafeCoDe.Cli;

/// <summary>
/// The model, runtime, judge and decoding options of <c>safecode generate</c> as one reusable block: <see cref="AddTo"/>
/// puts them on any command (<c>generate</c>, <c>eval run</c>, a server command) with the same spelling, and
/// <see cref="Read"/> turns a parse result into engine options, decoding options and the judge spec.
/// <para>The decoding flags are made from the registered methods' option descriptors (<see cref="DecodingMethods"/>):
/// one flag per option name, so a method registered at run time brings its own. <c>--options FILE.json</c> reads the
/// <c>options</c> block that <c>generate --json</c> prints (or a whole result); flags given on the command line
/// override the file. A flag the chosen method does not take has no effect and is reported as a warning.</para>
/// </summary>
public sealed class GenerationOptions
{
    /// <summary><c>--model DIR</c>.</summary>
    public Option<string> Model { get; } = CliOptions.ModelOrShipped();
    /// <summary><c>--device</c>.</summary>
    public Option<string> Device { get; } = CliOptions.Device();
    /// <summary><c>--dtype</c> (default: bfloat16 on CUDA, float32 on the CPU).</summary>
    public Option<string> DType { get; } = CliOptions.DType(null, "Weights and activations: float32, bfloat16 or float16 [default: bfloat16 on CUDA, float32 on the CPU]");
    /// <summary><c>--max-batch-rows N</c> (<see cref="EngineOptions.MaxBatchRows"/>).</summary>
    public Option<int> MaxBatchRows { get; } = new("--max-batch-rows")
    {
        Description = "Rows one decode forward may carry when requests run concurrently (a SafeCoDe request takes 2 while guided, then 1); N/2 requests run at once, 1 = one at a time",
        HelpName = "N", DefaultValueFactory = _ => new EngineOptions().MaxBatchRows,
    };
    /// <summary><c>--prompt-style</c>.</summary>
    public Option<string> PromptStyle { get; } = CliOptions.Choice<PromptStyle>("--prompt-style",
        "The family's official chat template, or the SafeCoDe reference code's prompt quirks", Torch.Processing.Chat.PromptStyle.Official);
    /// <summary><c>--system TEXT</c>.</summary>
    public Option<string> System { get; } = new("--system") { Description = "A system turn before the user turn (the judge does not see it)", HelpName = "TEXT" };
    /// <summary><c>--judge SPEC</c>.</summary>
    public Option<string> Judge { get; } = new("--judge")
    {
        Description = "Who decides safe/unsafe (SafeCoDe mode): self (the model judges itself), local:DIR (another checkpoint), " +
                      "openai[:MODEL] (an OpenAI-compatible endpoint, see SAFECODE_JUDGE_* in 'safecode --help'), fixed:safe, fixed:unsafe, cache:FILE (replay)",
        HelpName = "SPEC", DefaultValueFactory = _ => "self",
    };
    /// <summary><c>--judge-format NAME</c>: how the judge is asked and read (a guard model's own format, or the project's).</summary>
    public Option<string> JudgeFormat { get; } = CliOptions.Choice("--judge-format",
        "How the judge is asked and its reply read: " + string.Join("; ", Torch.Safety.Guards.JudgeFormats.All.Select(f => $"{f.Name}: {f.Summary}")) +
        ". A guard format needs --judge openai:MODEL (a server running that guard model)",
        [.. Torch.Safety.Guards.JudgeFormats.Names], Torch.Safety.Guards.JudgeFormats.Default);
    /// <summary><c>--judge-cache FILE</c>.</summary>
    public Option<string> JudgeCache { get; } = new("--judge-cache") { Description = "Remember judge replies in this JSON file and reuse them", HelpName = "FILE" };

    /// <summary><c>--options FILE.json</c>.</summary>
    public Option<string> OptionsFile { get; } = new("--options")
    {
        Description = "Decoding options from a JSON file: the \"options\" block of a 'generate --json' result (or the whole result), " +
                      "so a run can be replayed; flags given on the command line override it",
        HelpName = "FILE.json",
    };
    /// <summary><c>--mode</c>: the decoding method, one of the registered ones.</summary>
    public Option<string> Mode { get; } = CliOptions.Choice("--mode",
        string.Join("; ", DecodingMethods.All.Select(m => $"{m.Name}: {m.Summary}")), [.. DecodingMethods.Names], DecodingMethods.Default);
    /// <summary><c>--preset</c>: a named bundle of the method's defaults.</summary>
    public Option<string> Preset { get; } = CliOptions.Choice("--preset",
        string.Join("; ", DecodingMethods.All.Where(m => m.Presets.Count > 0).Select(m => m.PresetsHelp)), [.. DecodingMethods.AllPresets],
        DecodingMethods.Get(DecodingMethods.Default).Presets.FirstOrDefault());
    /// <summary>--parse-special.</summary>
    public Option<bool> ParseSpecial { get; } = new("--parse-special") { Description = "Experts: special-token strings in --prompt/--system become control tokens (default: plain text)" };

    /// <summary>One flag per decoding option of every registered method (see <see cref="DecodingMethods.AllOptions"/>).</summary>
    public IReadOnlyList<(MethodOption Spec, Option Flag)> Decoding { get; } = DecodingMethods.AllOptions.Select(o => (o, Flag(o))).ToArray();

    /// <summary>Every option, in help order.</summary>
    public IEnumerable<Option> All =>
        [Model, Device, DType, MaxBatchRows, PromptStyle, System, Judge, JudgeFormat, JudgeCache, OptionsFile, Mode, Preset, .. Decoding.Select(d => d.Flag), ParseSpecial];

    /// <summary>Adds every option to <paramref name="command"/>.</summary>
    public void AddTo(Command command)
    {
        foreach (var o in All) command.Add(o);
    }

    /// <summary>The flag of a decoding option: a switch for booleans, a text value parsed by the option's own codec otherwise.</summary>
    private static Option Flag(MethodOption o)
    {
        if (o.IsSwitch) return new Option<bool>(o.Flag) { Description = o.Help };
        var flag = new Option<string>(o.Flag) { Description = o.Help, HelpName = o.HelpName ?? (o.Choices is { } c ? string.Join('|', c) : null) };
        if (o.Choices is { } choices) flag.CompletionSources.Add([.. choices]);
        return flag;
    }

    /// <summary>Reads the options of a parse result (of a command that <see cref="AddTo"/> was called on).</summary>
    /// <exception cref="UsageException">A value is out of range, or the options file cannot be used.</exception>
    public GenerationSettings Read(ParseResult p)
    {
        var warnings = new List<string>();
        var options = ReadDecoding(p, warnings);
        var device = RuntimeOptions.ParseDevice(p.GetValue(Device)!);
        var dtype = p.GetValue(DType) is { } dt ? SafeCoDeEngine.ParseDType(dt) : (ModelDType?)null;
        var style = CliOptions.ParseChoice<PromptStyle>(p.GetValue(PromptStyle)!, "--prompt-style");
        int rows = p.GetValue(MaxBatchRows);
        if (rows < 1) throw new UsageException($"--max-batch-rows {rows}: expected at least 1");
        var method = DecodingMethods.Of(options);
        var judgeWarnings = new List<string>();
        if (!method.Needs(options).Judge)
            foreach (var flag in new Option[] { Judge, JudgeFormat, JudgeCache }.Where(p.Given))
                judgeWarnings.Add($"{flag.Name} has no effect with --mode {method.Name} (it uses no judge)");
        warnings.AddRange(judgeWarnings);
        return new GenerationSettings(
            p.GetValue(Model)!, new EngineOptions { Device = device, DType = dtype, PromptStyle = style, MaxBatchRows = rows }, options,
            p.GetValue(Judge) ?? "self", p.GetValue(JudgeCache), p.GetValue(System))
        {
            ParseSpecial = p.GetValue(ParseSpecial), Warnings = warnings, JudgeWarnings = judgeWarnings, JudgeFormat = p.GetValue(JudgeFormat) ?? Torch.Safety.Guards.JudgeFormats.Default,
        };
    }

    /// <summary>The decoding options: the file's (with --mode/--preset put into it), then every decoding flag given, validated.</summary>
    private DecodingOptions ReadDecoding(ParseResult p, List<string> warnings)
    {
        string? mode = p.Given(Mode) ? p.GetValue(Mode) : null, preset = p.Given(Preset) ? p.GetValue(Preset) : null;
        try
        {
            DecodingOptions? start = null;
            if (p.GetValue(OptionsFile) is { } file)
            {
                var obj = CliJson.ReadOptionsObject(file);
                if (mode is not null) obj["mode"] = mode;
                if (preset is not null) obj["preset"] = preset;
                IReadOnlyList<string> fromFile;
                try { (start, fromFile) = DecodingMethods.FromJson(JsonSerializer.SerializeToElement(obj), ""); }
                catch (ArgumentException ex) { throw new UsageException($"--options {file}: {ex.Message}"); }
                if (fromFile.Count > 0) warnings.Add($"--options {file}: {string.Join(", ", fromFile.Select(n => n.Replace('-', '_')))} ha{(fromFile.Count == 1 ? "s" : "ve")} no effect with --mode {start.Method}");
                preset = null;
            }
            var values = Decoding.Where(d => p.Given(d.Flag)).Select(d => (d.Spec.Name, Value(p, d.Spec, d.Flag))).ToList();
            var (o, ignored) = DecodingMethods.Build(start?.Method ?? mode ?? DecodingMethods.Default, preset, values, start);
            foreach (var name in ignored) warnings.Add($"--{name} has no effect with --mode {o.Method}");
            o.Validate();
            return o;
        }
        catch (OptionValueException ex) { throw new UsageException(ex.Message); }
        catch (ArgumentException ex) { throw new UsageException($"invalid decoding options: {ex.Message}"); }
    }

    private static object? Value(ParseResult p, MethodOption spec, Option flag) =>
        flag is Option<bool> b ? p.GetValue(b) : spec.Parse(p.GetValue((Option<string>)flag)!, spec.Flag);
}

/// <summary>What <see cref="GenerationOptions.Read"/> returns: everything needed to load an engine and decode.</summary>
/// <param name="ModelDir">The checkpoint folder.</param>
/// <param name="Engine">Device, dtype, prompt style.</param>
/// <param name="Decoding">Validated decoding options.</param>
/// <param name="JudgeSpec">self, local:DIR, openai[:MODEL], fixed:safe|unsafe, cache:FILE.</param>
/// <param name="JudgeCache">A judge cache file, or null.</param>
/// <param name="SystemPrompt">A system turn, or null.</param>
public sealed record GenerationSettings(string ModelDir, EngineOptions Engine, DecodingOptions Decoding, string JudgeSpec, string? JudgeCache, string? SystemPrompt)
{
    /// <summary>--parse-special: special-token strings in user text become control tokens.</summary>
    public bool ParseSpecial { get; init; }

    /// <summary>--judge-format: how the judge is asked and read (<c>safecode</c>, or a guard model's format).</summary>
    public string JudgeFormat { get; init; } = Torch.Safety.Guards.JudgeFormats.Default;

    /// <summary>Options given that have no effect with the chosen method (each one line, for stderr), <see cref="JudgeWarnings"/> among them.</summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];

    /// <summary>Those of <see cref="Warnings"/> about judge options the chosen method does not use (a server whose clients may choose another method still uses them).</summary>
    public IReadOnlyList<string> JudgeWarnings { get; init; } = [];

    /// <summary>True when the method uses a judge (the judge spec then matters).</summary>
    public bool UsesJudge => DecodingMethods.Of(Decoding).Needs(Decoding).Judge;

    /// <summary>Writes each warning as one line on stderr (the judge options' too unless <paramref name="judge"/> is false).</summary>
    public void PrintWarnings(CliIO io, string command, bool judge = true)
    {
        foreach (var w in judge ? Warnings : Warnings.Except(JudgeWarnings)) io.Error.WriteLine($"safecode {command}: warning — {w}");
    }

    /// <summary>The options in one line: the method, its preset, the seed, and every option that differs from the method's (preset's) defaults.</summary>
    public static string Describe(DecodingOptions o)
    {
        var m = DecodingMethods.Of(o);
        var preset = m.PresetOf(o);
        var defaults = DecodingMethods.ToJson(m.Defaults(preset));
        var mine = DecodingMethods.ToJson(o);
        var changed = mine.Where(kv => kv.Key is not ("mode" or "preset" or "seed") && !JsonNode.DeepEquals(kv.Value, defaults[kv.Key]))
            .Select(kv => $"{kv.Key.Replace('_', '-')} {kv.Value?.ToJsonString() ?? "null"}");
        return string.Join(", ", new[] { $"mode {o.Method}", preset is null ? null : $"preset {preset}", $"seed {o.Seed?.ToString() ?? "none"}" }.Concat(changed).Where(x => x is not null));
    }

    /// <summary>The judge of a method that uses one (null otherwise), wrapped in the judge cache when one was given.</summary>
    /// <exception cref="UsageException">The spec is not one of the forms above.</exception>
    public ISafetyJudge? CreateJudge(SafeCoDeEngine engine) => UsesJudge ? BuildJudge(engine) : null;

    /// <summary>The judge of <see cref="JudgeSpec"/> (with the cache), whether or not the method uses one (a server's, for requests that choose a method with a judge).</summary>
    /// <exception cref="UsageException">The spec is not one of the forms above.</exception>
    public ISafetyJudge BuildJudge(SafeCoDeEngine engine)
    {
        try { return SceneJudgeSpecs.Create(JudgeSpec, engine, Engine.Device, JudgeCache, format: JudgeFormat); }
        catch (ArgumentException ex) { throw new UsageException(ex.Message); }
    }

    /// <summary>Checks the judge spec's form and that the model folder exists, without building anything (so a typo fails before the native runtime or a model loads).</summary>
    public void CheckBeforeLoading()
    {
        if (!Directory.Exists(ModelDir)) throw new UsageException($"--model {ModelDir}: folder not found");
        if (!ModelSpec.IsValid(JudgeSpec, ModelRole.Judge)) throw new UsageException($"--judge '{JudgeSpec}': expected {ModelSpec.Forms(ModelRole.Judge)}");
        try { SceneJudgeSpecs.CheckFormat(JudgeSpec, JudgeFormat); }
        catch (ArgumentException ex) { throw new UsageException(ex.Message); }
    }
}
