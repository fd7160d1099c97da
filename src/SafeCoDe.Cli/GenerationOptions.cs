using System.CommandLine;
using System.Globalization;
using SafeCoDe.Torch;
using SafeCoDe.Torch.Decoding;
using SafeCoDe.Torch.Models;
using SafeCoDe.Torch.Processing.Chat;
using SafeCoDe.Torch.Runtime;
using SafeCoDe.Torch.Safety;

namespace SafeCoDe.Cli;

/// <summary>
/// The model, runtime, judge and decoding options of <c>safecode generate</c> as one reusable block: <see cref="AddTo"/>
/// puts them on any command (<c>generate</c>, <c>eval run</c>, a server command) with the same spelling, and
/// <see cref="Read"/> turns a parse result into engine options, decoding options and the judge spec.
/// <para>Every <see cref="SafeCoDeOptions"/> field has a flag. <c>--options FILE.json</c> reads the <c>options</c> block
/// that <c>generate --json</c> prints (or a whole result); flags given on the command line override the file.</para>
/// </summary>
public sealed class GenerationOptions
{
    private static readonly SafeCoDeOptions Faithful = SafeCoDeOptions.For(SafeCoDePreset.Faithful);
    private static string D(double v) => v.ToString(CultureInfo.InvariantCulture);
    private static string Def(object v) => $" [default: {(v is double d ? D(d) : v is bool b ? (b ? "true" : "false") : v)}]";

    /// <summary><c>--model DIR</c>.</summary>
    public Option<string> Model { get; } = CliOptions.Model();
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
    /// <summary><c>--judge-cache FILE</c>.</summary>
    public Option<string> JudgeCache { get; } = new("--judge-cache") { Description = "Remember judge replies in this JSON file and reuse them", HelpName = "FILE" };

    /// <summary><c>--options FILE.json</c>.</summary>
    public Option<string> OptionsFile { get; } = new("--options")
    {
        Description = "Decoding options from a JSON file: the \"options\" block of a 'generate --json' result (or the whole result), " +
                      "so a run can be replayed; flags given on the command line override it",
        HelpName = "FILE.json",
    };
    /// <summary><c>--mode</c>.</summary>
    public Option<string> Mode { get; } = CliOptions.Choice<DecodeMode>("--mode",
        "safecode: judge + real/noised contrast + refusal modulation for the first tokens; vcd: visual contrastive decoding on every token; vanilla: plain decoding", DecodeMode.SafeCoDe);
    /// <summary><c>--preset</c>.</summary>
    public Option<string> Preset { get; } = CliOptions.Choice<SafeCoDePreset>("--preset",
        "faithful: the reference code's behaviour (halved α on safe, forced refusal phrase, per-family budgets); paper: the paper's formulation", SafeCoDePreset.Faithful);

    /// <summary><c>--max-new-tokens</c>.</summary>
    public Option<int> MaxNewTokens { get; } = new("--max-new-tokens")
    {
        Description = "Tokens generated AFTER the guided span; a SafeCoDe answer can be up to --max-steps tokens longer (use --max-total-tokens for a hard cap) " +
                      "[default: faithful preset: LLaVA 256 safe / 20 unsafe, Qwen 256 / 30, InstructBLIP 1024, IDEFICS 1024 − prompt; else --uniform-max-new-tokens]",
        HelpName = "N",
    };
    /// <summary><c>--max-total-tokens</c>.</summary>
    public Option<int> MaxTotalTokens { get; } = new("--max-total-tokens") { Description = "Hard cap on all generated tokens, the guided span included [default: none]", HelpName = "N" };
    /// <summary><c>--uniform-max-new-tokens</c>.</summary>
    public Option<int> UniformMaxNewTokens { get; } = new("--uniform-max-new-tokens") { Description = "Length budget of the paper preset, of vcd/vanilla and of families without a faithful budget" + Def(Faithful.UniformMaxNewTokens), HelpName = "N" };

    /// <summary><c>--temperature</c> (both verdicts).</summary>
    public Option<double> Temperature { get; } = new("--temperature") { Description = "Continuation temperature for both verdicts (≤ 0: greedy); see --temperature-safe/--temperature-unsafe", HelpName = "T" };
    /// <summary><c>--temperature-safe</c>.</summary>
    public Option<double> TemperatureSafe { get; } = new("--temperature-safe") { Description = "Continuation temperature after a safe verdict (and for vcd/vanilla)" + Def(Faithful.TemperatureSafe), HelpName = "T" };
    /// <summary><c>--temperature-unsafe</c>.</summary>
    public Option<double> TemperatureUnsafe { get; } = new("--temperature-unsafe") { Description = "Continuation temperature after an unsafe verdict" + Def(Faithful.TemperatureUnsafe), HelpName = "T" };
    /// <summary><c>--top-p</c> (both verdicts).</summary>
    public Option<double> TopP { get; } = new("--top-p") { Description = "Continuation top-p for both verdicts; see --top-p-safe/--top-p-unsafe", HelpName = "P" };
    /// <summary><c>--top-p-safe</c>.</summary>
    public Option<double> TopPSafe { get; } = new("--top-p-safe") { Description = "Continuation top-p after a safe verdict (and for vcd/vanilla)" + Def(Faithful.TopPSafe), HelpName = "P" };
    /// <summary><c>--top-p-unsafe</c>.</summary>
    public Option<double> TopPUnsafe { get; } = new("--top-p-unsafe") { Description = "Continuation top-p after an unsafe verdict" + Def(Faithful.TopPUnsafe), HelpName = "P" };
    /// <summary><c>--top-k</c>.</summary>
    public Option<int> TopK { get; } = new("--top-k") { Description = "Top-k of the continuation sampling (0: off)" + Def(Faithful.TopKSampling), HelpName = "K" };
    /// <summary><c>--seed</c>.</summary>
    public Option<long> Seed { get; } = new("--seed") { Description = "Seed of the noise and of every sampling step [default: nondeterministic]", HelpName = "S" };
    /// <summary><c>--greedy</c>.</summary>
    public Option<bool> Greedy { get; } = new("--greedy") { Description = "Argmax wherever the method samples (deterministic)" };

    /// <summary><c>--alpha</c>.</summary>
    public Option<double> Alpha { get; } = new("--alpha") { Description = "α, weight of the noised branch in the contrast [default: 0.3; vcd: 1]", HelpName = "A" };
    /// <summary><c>--max-steps</c>.</summary>
    public Option<int> MaxSteps { get; } = new("--max-steps") { Description = "Guided tokens at most (forced phrase length on unsafe)" + Def(Faithful.MaxSteps), HelpName = "N" };
    /// <summary><c>--refusal-top-k</c>.</summary>
    public Option<int> RefusalTopK { get; } = new("--refusal-top-k") { Description = "Refusal phrases kept when ranking them on an unsafe verdict" + Def(Faithful.TopK), HelpName = "K" };
    /// <summary><c>--lambda-supp</c>.</summary>
    public Option<double> LambdaSupp { get; } = new("--lambda-supp") { Description = "λ_supp: refusal tokens × max(0, 1 − 0.5·λ_supp) during guided steps on safe verdicts" + Def(Faithful.LambdaSupp), HelpName = "L" };
    /// <summary><c>--lambda-boost</c>.</summary>
    public Option<double> LambdaBoost { get; } = new("--lambda-boost") { Description = "λ_boost: refusal tokens × (1 + λ_boost) on unsafe verdicts with --unsafe-strategy soft-boost" + Def(Faithful.LambdaBoost), HelpName = "L" };
    /// <summary><c>--unsafe-strategy</c>.</summary>
    public Option<string> UnsafeStrategy { get; } = CliOptions.Choice<UnsafeStrategy>("--unsafe-strategy",
        "What an unsafe verdict does: force-phrase (emit the best-ranked refusal phrase) or soft-boost (boost refusal tokens) [default: faithful force-phrase, paper soft-boost]");
    /// <summary><c>--noise</c>.</summary>
    public Option<string> Noise { get; } = CliOptions.Choice<NoiseKind>("--noise",
        "How the noised image is made: pixel (Gaussian noise on the RGB image) or vcd (VCD's diffusion noise on the pixel tensor)" + Def("pixel"));
    /// <summary><c>--noise-std</c>.</summary>
    public Option<double> NoiseStd { get; } = new("--noise-std") { Description = "σ of the pixel noise, on pixel values in [0, 1]" + Def(Faithful.NoiseStd), HelpName = "S" };
    /// <summary><c>--vcd-noise-step</c>.</summary>
    public Option<int> VcdNoiseStep { get; } = new("--vcd-noise-step") { Description = "Diffusion step t of --noise vcd, in [0, 1000)" + Def(Faithful.VcdNoiseStep), HelpName = "T" };
    /// <summary><c>--vcd-beta</c>.</summary>
    public Option<double> VcdBeta { get; } = new("--vcd-beta") { Description = "VCD plausibility cut-off β, in (0, 1]" + Def(Faithful.VcdBeta), HelpName = "B" };
    /// <summary><c>--halve-alpha-on-safe</c>.</summary>
    public Option<bool> HalveAlphaOnSafe { get; } = new("--halve-alpha-on-safe") { Description = "Halve α on the safe path (reference behaviour) [default: faithful true, paper false]" };
    /// <summary><c>--unsafe-needs-two-steps</c>.</summary>
    public Option<bool> UnsafeNeedsTwoSteps { get; } = new("--unsafe-needs-two-steps") { Description = "An unsafe verdict with --max-steps < 2 takes the safe path (reference) [default: faithful true, paper false]" };
    /// <summary><c>--quote-skip</c>.</summary>
    public Option<bool> QuoteSkip { get; } = new("--quote-skip") { Description = "On the safe path, replace a first token that is a quote by the runner-up" + Def(Faithful.QuoteSkip) };
    /// <summary><c>--early-exit</c>.</summary>
    public Option<bool> EarlyExit { get; } = new("--early-exit") { Description = "End guidance once the text starts with a capitalised word and has two words" + Def(Faithful.EarlyExit) };
    /// <summary><c>--corruption-rollback</c>.</summary>
    public Option<bool> CorruptionRollback { get; } = new("--corruption-rollback") { Description = "Roll back guided tokens that look corrupt [default: faithful true, paper false]" };
    /// <summary><c>--guided-temperature-safe</c>.</summary>
    public Option<double> GuidedTemperatureSafe { get; } = new("--guided-temperature-safe") { Description = "Temperature of guided steps ≥ 1 on safe verdicts" + Def(Faithful.GuidedTemperatureSafe), HelpName = "T" };
    /// <summary><c>--guided-temperature-unsafe</c>.</summary>
    public Option<double> GuidedTemperatureUnsafe { get; } = new("--guided-temperature-unsafe") { Description = "Temperature of guided steps ≥ 1 on unsafe verdicts (soft boost)" + Def(Faithful.GuidedTemperatureUnsafe), HelpName = "T" };
    /// <summary><c>--refusal-phrases FILE</c>.</summary>
    public Option<string> RefusalPhrases { get; } = new("--refusal-phrases") { Description = "Refusal phrases, one per line [default: the reference code's 29 phrases]", HelpName = "FILE" };
    /// <summary><c>--preferred-keywords FILE</c>.</summary>
    public Option<string> PreferredKeywords { get; } = new("--preferred-keywords") { Description = "Keywords that make a refusal phrase preferred, one per line [default: the reference code's list]", HelpName = "FILE" };

    /// <summary>--unknown-verdict.</summary>
    public Option<string> UnknownVerdict { get; } = CliOptions.Choice<UnknownVerdictPolicy>("--unknown-verdict",
        "What a judge reply that is not a clear verdict becomes: unsafe (fail closed), safe, or an error [default: unsafe]");
    /// <summary>--parse-special.</summary>
    public Option<bool> ParseSpecial { get; } = new("--parse-special") { Description = "Experts: special-token strings in --prompt/--system become control tokens (default: plain text)" };

    /// <summary>Every option, in help order.</summary>
    public IEnumerable<Option> All =>
    [
        Model, Device, DType, MaxBatchRows, PromptStyle, System, Judge, JudgeCache, OptionsFile, Mode, Preset,
        MaxNewTokens, MaxTotalTokens, UniformMaxNewTokens, Temperature, TemperatureSafe, TemperatureUnsafe, TopP, TopPSafe, TopPUnsafe, TopK, Seed, Greedy,
        Alpha, MaxSteps, RefusalTopK, LambdaSupp, LambdaBoost, UnsafeStrategy, Noise, NoiseStd, VcdNoiseStep, VcdBeta,
        HalveAlphaOnSafe, UnsafeNeedsTwoSteps, QuoteSkip, EarlyExit, CorruptionRollback, GuidedTemperatureSafe, GuidedTemperatureUnsafe,
        RefusalPhrases, PreferredKeywords, UnknownVerdict, ParseSpecial,
    ];

    /// <summary>Adds every option to <paramref name="command"/>.</summary>
    public void AddTo(Command command)
    {
        foreach (var o in All) command.Add(o);
    }

    /// <summary>Reads the options of a parse result (of a command that <see cref="AddTo"/> was called on).</summary>
    /// <exception cref="UsageException">A value is out of range, or the options file cannot be used.</exception>
    public GenerationSettings Read(ParseResult p)
    {
        var mode = CliOptions.ParseChoice<DecodeMode>(p.GetValue(Mode)!, "--mode");
        var preset = CliOptions.ParseChoice<SafeCoDePreset>(p.GetValue(Preset)!, "--preset");
        SafeCoDeOptions o;
        if (p.GetValue(OptionsFile) is { } file)
        {
            o = CliJson.ReadOptionsFile(file);
            if (p.Given(Preset)) o = o with { Preset = preset };
            if (p.Given(Mode)) o = o with { Mode = mode };
        }
        else o = SafeCoDeOptions.For(preset, mode);

        T? V<T>(Option<T> opt) where T : struct => p.Given(opt) ? p.GetValue(opt) : null;
        if (V(MaxNewTokens) is { } mnt) o = o with { MaxNewTokens = mnt };
        if (V(MaxTotalTokens) is { } mtt) o = o with { MaxTotalTokens = mtt };
        if (V(UniformMaxNewTokens) is { } umnt) o = o with { UniformMaxNewTokens = umnt };
        if (V(Temperature) is { } t) o = o with { TemperatureSafe = t, TemperatureUnsafe = t, Greedy = o.Greedy || t <= 0 };
        if (V(TemperatureSafe) is { } ts) o = o with { TemperatureSafe = ts };
        if (V(TemperatureUnsafe) is { } tu) o = o with { TemperatureUnsafe = tu };
        if (V(TopP) is { } tp) o = o with { TopPSafe = tp, TopPUnsafe = tp };
        if (V(TopPSafe) is { } tps) o = o with { TopPSafe = tps };
        if (V(TopPUnsafe) is { } tpu) o = o with { TopPUnsafe = tpu };
        if (V(TopK) is { } tk) o = o with { TopKSampling = tk };
        if (V(Seed) is { } seed) o = o with { Seed = seed };
        if (V(Greedy) is { } g) o = o with { Greedy = g };
        if (V(Alpha) is { } a) o = o with { Alpha = a };
        if (V(MaxSteps) is { } ms) o = o with { MaxSteps = ms };
        if (V(RefusalTopK) is { } rtk) o = o with { TopK = rtk };
        if (V(LambdaSupp) is { } ls) o = o with { LambdaSupp = ls };
        if (V(LambdaBoost) is { } lb) o = o with { LambdaBoost = lb };
        if (p.Given(UnsafeStrategy)) o = o with { Unsafe = CliOptions.ParseChoice<UnsafeStrategy>(p.GetValue(UnsafeStrategy)!, "--unsafe-strategy") };
        if (p.Given(Noise)) o = o with { Noise = CliOptions.ParseChoice<NoiseKind>(p.GetValue(Noise)!, "--noise") };
        if (V(NoiseStd) is { } ns) o = o with { NoiseStd = ns };
        if (V(VcdNoiseStep) is { } vns) o = o with { VcdNoiseStep = vns };
        if (V(VcdBeta) is { } vb) o = o with { VcdBeta = vb };
        if (V(HalveAlphaOnSafe) is { } h) o = o with { HalveAlphaOnSafe = h };
        if (V(UnsafeNeedsTwoSteps) is { } u2) o = o with { UnsafeNeedsTwoSteps = u2 };
        if (V(QuoteSkip) is { } qs) o = o with { QuoteSkip = qs };
        if (V(EarlyExit) is { } ee) o = o with { EarlyExit = ee };
        if (V(CorruptionRollback) is { } cr) o = o with { CorruptionRollback = cr };
        if (V(GuidedTemperatureSafe) is { } gts) o = o with { GuidedTemperatureSafe = gts };
        if (V(GuidedTemperatureUnsafe) is { } gtu) o = o with { GuidedTemperatureUnsafe = gtu };
        if (p.GetValue(RefusalPhrases) is { } rp) o = o with { RefusalPhrases = ReadLines(rp, "--refusal-phrases") };
        if (p.Given(UnknownVerdict)) o = o with { UnknownVerdict = CliOptions.ParseChoice<UnknownVerdictPolicy>(p.GetValue(UnknownVerdict)!, "--unknown-verdict") };
        if (p.GetValue(PreferredKeywords) is { } pk) o = o with { PreferredKeywords = ReadLines(pk, "--preferred-keywords") };
        try { o.Validate(); }
        catch (ArgumentException ex) { throw new UsageException($"invalid decoding options: {ex.Message}"); }

        var device = RuntimeOptions.ParseDevice(p.GetValue(Device)!);
        var dtype = p.GetValue(DType) is { } dt ? SafeCoDeEngine.ParseDType(dt) : (ModelDType?)null;
        var style = CliOptions.ParseChoice<PromptStyle>(p.GetValue(PromptStyle)!, "--prompt-style");
        int rows = p.GetValue(MaxBatchRows);
        if (rows < 1) throw new UsageException($"--max-batch-rows {rows}: expected at least 1");
        return new GenerationSettings(
            p.GetValue(Model)!, new EngineOptions { Device = device, DType = dtype, PromptStyle = style, MaxBatchRows = rows }, o,
            p.GetValue(Judge) ?? "self", p.GetValue(JudgeCache), p.GetValue(System)) { ParseSpecial = p.GetValue(ParseSpecial) };
    }

    private static string[] ReadLines(string path, string name)
    {
        if (!File.Exists(path)) throw new UsageException($"{name} {path}: file not found");
        var lines = SafeCoDe.Torch.Runtime.BoundedFile.ReadAllText(path, SafeCoDe.Torch.Runtime.InputLimits.Current.MaxConfigFileBytes, name + " file").Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0).ToArray();
        return lines.Length > 0 ? lines : throw new UsageException($"{name} {path}: the file has no non-empty line");
    }
}

/// <summary>What <see cref="GenerationOptions.Read"/> returns: everything needed to load an engine and decode.</summary>
/// <param name="ModelDir">The checkpoint folder.</param>
/// <param name="Engine">Device, dtype, prompt style.</param>
/// <param name="Decoding">Validated decoding options.</param>
/// <param name="JudgeSpec">self, local:DIR, openai[:MODEL], fixed:safe|unsafe, cache:FILE.</param>
/// <param name="JudgeCache">A judge cache file, or null.</param>
/// <param name="SystemPrompt">A system turn, or null.</param>
public sealed record GenerationSettings(string ModelDir, EngineOptions Engine, SafeCoDeOptions Decoding, string JudgeSpec, string? JudgeCache, string? SystemPrompt)
{
    /// <summary>--parse-special: special-token strings in user text become control tokens.</summary>
    public bool ParseSpecial { get; init; }

    /// <summary>The judge for SafeCoDe mode (null in vcd/vanilla mode), wrapped in the judge cache when one was given.</summary>
    /// <exception cref="UsageException">The spec is not one of the forms above.</exception>
    public ISafetyJudge? CreateJudge(SafeCoDeEngine engine)
    {
        if (Decoding.Mode != DecodeMode.SafeCoDe) return null;
        ISafetyJudge judge = ParseJudge(JudgeSpec, engine, Engine.Device);
        return JudgeCache is null ? judge : new CachedJudge(JudgeCache, judge);
    }

    /// <summary>Checks the judge spec's form without building anything (so a typo fails before a model loads).</summary>
    public void CheckJudgeSpec()
    {
        if (!IsJudgeSpec(JudgeSpec)) throw new UsageException(JudgeSpecError(JudgeSpec));
    }

    private static bool IsJudgeSpec(string spec)
    {
        int colon = spec.IndexOf(':');
        string kind = colon < 0 ? spec : spec[..colon], arg = colon < 0 ? "" : spec[(colon + 1)..];
        return kind switch
        {
            "self" => arg.Length == 0, "openai" => true, "local" or "cache" => arg.Length > 0, "fixed" => arg is "safe" or "unsafe", _ => false,
        };
    }

    private static string JudgeSpecError(string spec) => $"--judge '{spec}': expected self, local:DIR, openai[:MODEL], fixed:safe, fixed:unsafe or cache:FILE";

    private static ISafetyJudge ParseJudge(string spec, SafeCoDeEngine engine, DeviceRequest device)
    {
        int colon = spec.IndexOf(':');
        string kind = colon < 0 ? spec : spec[..colon], arg = colon < 0 ? "" : spec[(colon + 1)..];
        return kind switch
        {
            "self" => new ModelJudge(engine),
            "local" when arg.Length > 0 => ModelJudge.Local(arg, new EngineOptions { Device = device }),
            "openai" => new EndpointJudge(new EndpointJudgeOptions { Model = arg.Length > 0 ? arg : null }),
            "fixed" when arg is "safe" => new FixedJudge(Verdict.Safe),
            "fixed" when arg is "unsafe" => new FixedJudge(Verdict.Unsafe),
            "cache" when arg.Length > 0 => new CachedJudge(arg),
            _ => throw new UsageException(JudgeSpecError(spec)),
        };
    }
}
