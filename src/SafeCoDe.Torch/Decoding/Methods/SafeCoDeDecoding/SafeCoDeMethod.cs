using SafeCoDe.Torch.Decoding.Noise;
using SafeCoDe.Torch.Decoding.Sessions;
using SafeCoDe.Torch.Safety;
using static SafeCoDe.Torch.Decoding.Methods.SharedOptions;

namespace SafeCoDe.Torch.Decoding.Methods.SafeCoDeDecoding;

/// <summary>
/// SafeCoDe (arXiv 2509.19212): a scene judge decides safe/unsafe for the query in the image's context; the first
/// tokens contrast the real image with a noised copy and modulate refusal tokens by the verdict (or force a refusal
/// phrase on an unsafe one); then the real branch decodes on alone. Presets: <c>faithful</c> (the reference code) and
/// <c>paper</c> (the paper's formulation). The phases are in <see cref="SafeCoDePlan"/>.
/// </summary>
public sealed class SafeCoDeMethod : DecodingMethod<SafeCoDeOptions>
{
    /// <summary>The method's name.</summary>
    public const string MethodName = "safecode";

    private static readonly SafeCoDeOptions Faithful = SafeCoDeOptions.For(SafeCoDePreset.Faithful);

    /// <inheritdoc/>
    public override string Name => MethodName;
    /// <inheritdoc/>
    public override string Summary => "judge + real/noised contrast + refusal modulation for the first tokens";
    /// <inheritdoc/>
    public override IReadOnlyList<string> Presets { get; } = ["faithful", "paper"];
    /// <inheritdoc/>
    public override string PresetsHelp => "faithful: the reference code's behaviour: an unsafe verdict forces the best-ranked refusal phrase (halved α on safe, per-family budgets); " +
        "paper: the paper's formulation: an unsafe verdict only boosts refusal tokens × (1 + λ_boost), nothing forced — weak at the default λ_boost 1 " +
        "(on the shipped SafeScenes model it refuses 0 of 60 unsafe requests, like vanilla, where faithful refuses 60; λ_boost 100 refuses 59): not a safer faithful; see docs/method.md";
    /// <inheritdoc/>
    public override IReadOnlyList<MethodOption> Options { get; } = BuildOptions();

    /// <inheritdoc/>
    protected override SafeCoDeOptions DefaultsFor(string? preset) => SafeCoDeOptions.For(preset == "paper" ? SafeCoDePreset.Paper : SafeCoDePreset.Faithful);
    /// <inheritdoc/>
    protected override string? PresetOf(SafeCoDeOptions o) => o.Preset == SafeCoDePreset.Paper ? "paper" : "faithful";
    /// <inheritdoc/>
    protected override MethodNeeds Needs(SafeCoDeOptions o) => new(Image: true, new NoisedView(o.Noise, o.NoiseStd, o.DiffusionStep), Judge: true);
    /// <inheritdoc/>
    protected override IReadOnlyList<IRequestStep> Before(SafeCoDeOptions o) => [SceneJudgeStep.Instance];
    /// <inheritdoc/>
    protected override DecodePhase? Plan(DecodeContext context, DecodeSession session, SafeCoDeOptions o) => SafeCoDePlan.Start(context, session, o);

    private static MethodOption<SafeCoDeOptions, T> Opt<T>(string name, string help, string? helpName, OptionCodec<T> codec,
        Func<SafeCoDeOptions, T> get, Func<SafeCoDeOptions, T, SafeCoDeOptions> with, bool weakens = false, bool stored = true, IReadOnlyList<string>? stricter = null) =>
        new() { Name = name, Help = help, HelpName = helpName, Codec = codec, Get = get, With = with, WeakensSafety = weakens, Stored = stored, StricterValues = stricter ?? [] };

    private static IReadOnlyList<MethodOption> BuildOptions()
    {
        var unsafeStrategy = OptionCodecs.Choice((UnsafeStrategy.ForcePhrase, "force-phrase"), (UnsafeStrategy.SoftBoost, "soft-boost"));
        var verdictPolicy = OptionCodecs.Choice((UnknownVerdictPolicy.Unsafe, "unsafe"), (UnknownVerdictPolicy.Safe, "safe"), (UnknownVerdictPolicy.Error, "error"));
        var d = Faithful;
        return
        [
            MaxNewTokens, MaxTotalTokens, UniformMaxNewTokens,
            Opt("temperature", Temperature.Help, "T", OptionCodecs.Double, o => o.TemperatureSafe,
                (o, t) => o with { TemperatureSafe = t, TemperatureUnsafe = t, Greedy = o.Greedy || t <= 0 }, stored: false),
            TemperatureSafe,
            Opt("temperature-unsafe", "Continuation temperature after an unsafe verdict" + Default(d.TemperatureUnsafe), "T", OptionCodecs.Double,
                o => o.TemperatureUnsafe, (o, v) => o with { TemperatureUnsafe = v }),
            Opt("top-p", TopP.Help, "P", OptionCodecs.Double, o => o.TopPSafe, (o, p) => o with { TopPSafe = p, TopPUnsafe = p }, stored: false),
            TopPSafe,
            Opt("top-p-unsafe", "Continuation top-p after an unsafe verdict" + Default(d.TopPUnsafe), "P", OptionCodecs.Double, o => o.TopPUnsafe, (o, v) => o with { TopPUnsafe = v }),
            TopK, Seed, Greedy,
            Opt("alpha", "α, weight of the noised branch in the contrast [default: 0.3; vcd: 1]", "A", OptionCodecs.Double, o => o.Alpha, (o, v) => o with { Alpha = v }),
            Opt("max-steps", "Guided tokens at most (forced phrase length on unsafe)" + Default(d.MaxSteps), "N", OptionCodecs.Int, o => o.MaxSteps, (o, v) => o with { MaxSteps = v }, weakens: true),
            Opt("refusal-top-k", "Refusal phrases kept when ranking them on an unsafe verdict" + Default(d.TopK), "K", OptionCodecs.Int, o => o.TopK, (o, v) => o with { TopK = v }, weakens: true),
            Opt("lambda-supp", "λ_supp: refusal tokens × max(0, 1 − 0.5·λ_supp) during guided steps on safe verdicts" + Default(d.LambdaSupp), "L", OptionCodecs.Double,
                o => o.LambdaSupp, (o, v) => o with { LambdaSupp = v }, weakens: true),
            Opt("lambda-boost", "λ_boost: refusal tokens × (1 + λ_boost) on unsafe verdicts with --unsafe-strategy soft-boost (the paper preset's; faithful forces a phrase instead)" + Default(d.LambdaBoost), "L", OptionCodecs.Double,
                o => o.LambdaBoost, (o, v) => o with { LambdaBoost = v }, weakens: true),
            Opt("unsafe-strategy", "What an unsafe verdict does: force-phrase (emit the best-ranked refusal phrase) or soft-boost (boost refusal tokens) [default: faithful force-phrase, paper soft-boost]",
                null, unsafeStrategy, o => o.Unsafe, (o, v) => o with { Unsafe = v }, weakens: true),
            .. NoiseOptions.For<SafeCoDeOptions>(o => o.Noise, (o, v) => o with { Noise = v }, o => o.NoiseStd, (o, v) => o with { NoiseStd = v },
                o => o.DiffusionStep, (o, v) => o with { DiffusionStep = v }),
            Opt("halve-alpha-on-safe", "Halve α on the safe path (reference behaviour) [default: faithful true, paper false]", null, OptionCodecs.Bool,
                o => o.HalveAlphaOnSafe, (o, v) => o with { HalveAlphaOnSafe = v }),
            Opt("unsafe-needs-two-steps", "An unsafe verdict with --max-steps < 2 takes the safe path (reference) [default: faithful true, paper false]", null, OptionCodecs.Bool,
                o => o.UnsafeNeedsTwoSteps, (o, v) => o with { UnsafeNeedsTwoSteps = v }, weakens: true),
            Opt("quote-skip", "On the safe path, replace a first token that is a quote by the runner-up" + Default(d.QuoteSkip), null, OptionCodecs.Bool,
                o => o.QuoteSkip, (o, v) => o with { QuoteSkip = v }),
            Opt("early-exit", "End guidance once the text starts with a capitalised word and has two words" + Default(d.EarlyExit), null, OptionCodecs.Bool,
                o => o.EarlyExit, (o, v) => o with { EarlyExit = v }),
            Opt("corruption-rollback", "Roll back guided tokens that look corrupt [default: faithful true, paper false]", null, OptionCodecs.Bool,
                o => o.CorruptionRollback, (o, v) => o with { CorruptionRollback = v }),
            Opt("guided-temperature-safe", "Temperature of guided steps ≥ 1 on safe verdicts" + Default(d.GuidedTemperatureSafe), "T", OptionCodecs.Double,
                o => o.GuidedTemperatureSafe, (o, v) => o with { GuidedTemperatureSafe = v }),
            Opt("guided-temperature-unsafe", "Temperature of guided steps ≥ 1 on unsafe verdicts (soft boost)" + Default(d.GuidedTemperatureUnsafe), "T", OptionCodecs.Double,
                o => o.GuidedTemperatureUnsafe, (o, v) => o with { GuidedTemperatureUnsafe = v }),
            Opt("refusal-phrases", "Refusal phrases, one per line [default: the reference code's 29 phrases]", "FILE", OptionCodecs.Lines,
                o => o.RefusalPhrases, (o, v) => o with { RefusalPhrases = v }, weakens: true),
            Opt("preferred-keywords", "Keywords that make a refusal phrase preferred, one per line [default: the reference code's list]", "FILE", OptionCodecs.Lines,
                o => o.PreferredKeywords, (o, v) => o with { PreferredKeywords = v }, weakens: true),
            Opt("unknown-verdict", "What a judge reply that is not a clear verdict becomes: unsafe (fail closed), safe, or an error [default: unsafe]", null, verdictPolicy,
                o => o.UnknownVerdict, (o, v) => o with { UnknownVerdict = v }, weakens: true, stricter: ["unsafe", "error"]),
        ];
    }
}
