using System.Text.Json.Serialization;
using SafeCoDe.Torch.Decoding.Noise;
using SafeCoDe.Torch.Models;
using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Safety;

namespace SafeCoDe.Torch.Decoding.Methods.SafeCoDeDecoding;

/// <summary>Named bundles of SafeCoDe settings.</summary>
public enum SafeCoDePreset
{
    /// <summary>
    /// The reference code's behaviour: α halved on safe verdicts, a forced refusal phrase on unsafe verdicts (when
    /// max_steps ≥ 2), verdict- and family-dependent length budgets, greedy first token with the quote skip, the
    /// capitalised-two-words early exit, the corruption rollback.
    /// </summary>
    Faithful,
    /// <summary>The paper's formulation: the same α for both verdicts, soft refusal boost ×(1+λ_boost) on unsafe, one uniform length budget.</summary>
    Paper,
}

/// <summary>What the unsafe verdict does to the first tokens.</summary>
public enum UnsafeStrategy
{
    /// <summary>
    /// The reference: the contrast ranks the refusal phrases, the best one (keyword-preferred) is emitted as the first
    /// guided tokens (at most <see cref="SafeCoDeOptions.MaxSteps"/>), then decoding continues normally.
    /// </summary>
    ForcePhrase,
    /// <summary>The paper: refusal-token probabilities × (1 + λ_boost) during the guided steps, nothing forced.</summary>
    SoftBoost,
}

/// <summary>
/// Every knob of a SafeCoDe decode (scene verdict, real/noised contrast, refusal modulation for the first tokens, then
/// plain decoding), immutable. Build one with <see cref="For"/> and override with <c>with</c>.
/// </summary>
[JsonConverter(typeof(DecodingOptionsJson))]
public sealed record SafeCoDeOptions : DecodingOptions
{
    /// <inheritdoc/>
    public override string Method => SafeCoDeMethod.MethodName;

    /// <summary>The preset these options started from; <see cref="Budget"/> uses it to pick the length rule.</summary>
    public SafeCoDePreset Preset { get; init; } = SafeCoDePreset.Faithful;
    /// <summary>Weight of the noised branch in the contrast.</summary>
    public double Alpha { get; init; } = 0.3;
    /// <summary>Guided tokens at most (forced phrase length on unsafe).</summary>
    public int MaxSteps { get; init; } = 5;
    /// <summary>Refusal phrases kept when ranking (unsafe, forced phrase).</summary>
    public int TopK { get; init; } = 20;
    /// <summary>λ_supp: on safe verdicts, refusal-token probabilities are multiplied by max(0, 1 − 0.5·λ_supp) during guided steps.</summary>
    public double LambdaSupp { get; init; } = 1.0;
    /// <summary>λ_boost: with <see cref="UnsafeStrategy.SoftBoost"/>, refusal-token probabilities are multiplied by 1 + λ_boost on unsafe verdicts.</summary>
    public double LambdaBoost { get; init; } = 1.0;

    /// <summary>How the noised branch's image is made.</summary>
    public NoiseKind Noise { get; init; } = NoiseKind.Pixel;
    /// <summary>σ of the <see cref="NoiseKind.Pixel"/> noise, on pixel values scaled to [0, 1].</summary>
    public double NoiseStd { get; init; } = 0.1;
    /// <summary>Step t of <see cref="NoiseKind.Diffusion"/>, in [0, 1000).</summary>
    public int DiffusionStep { get; init; } = 500;

    /// <summary>What a judge reply that is not a clear verdict becomes: unsafe (default, fails closed), safe, or an error.</summary>
    public UnknownVerdictPolicy UnknownVerdict { get; init; } = UnknownVerdictPolicy.Unsafe;

    /// <summary>Faithful: α is halved on the safe path (the reference code's behaviour).</summary>
    public bool HalveAlphaOnSafe { get; init; } = true;
    /// <summary>What the unsafe path does: force the best-ranked refusal phrase, or boost refusal tokens softly.</summary>
    public UnsafeStrategy Unsafe { get; init; } = UnsafeStrategy.ForcePhrase;
    /// <summary>Faithful: an unsafe verdict with max_steps &lt; 2 takes the safe path (the reference's condition).</summary>
    public bool UnsafeNeedsTwoSteps { get; init; } = true;
    /// <summary>On the safe path, a first token that decodes to a quote character is replaced by the runner-up (reference behaviour).</summary>
    public bool QuoteSkip { get; init; } = true;
    /// <summary>Ends guidance once the text has ≥ 2 words and starts with a capitalised word of ≥ 2 characters (see <see cref="SafeCoDePlan.NaturalStart"/>).</summary>
    public bool EarlyExit { get; init; } = true;
    /// <summary>Rolls guided tokens back when they look corrupt (see <see cref="SafeCoDePlan.Corrupt"/>), keeping at most the first clean one.</summary>
    public bool CorruptionRollback { get; init; } = true;
    /// <summary>Temperature of guided steps ≥ 1 on safe verdicts.</summary>
    public double GuidedTemperatureSafe { get; init; } = 0.8;
    /// <summary>Temperature of guided steps ≥ 1 on the unsafe (soft boost) path.</summary>
    public double GuidedTemperatureUnsafe { get; init; } = 0.7;

    /// <summary>Continuation temperature after an unsafe verdict.</summary>
    public double TemperatureUnsafe { get; init; } = 0.7;
    /// <summary>Continuation top-p after an unsafe verdict.</summary>
    public double TopPUnsafe { get; init; } = 0.85;

    /// <summary>
    /// Refusal phrases: their sub-tokens (per tokenizer) form the refusal token set, and the phrases themselves are the
    /// candidates forced on an unsafe verdict. Default: the reference code's 29-entry list.
    /// </summary>
    public IReadOnlyList<string> RefusalPhrases { get; init; } = RefusalTokens.ReferencePhrases;
    /// <summary>Phrases containing one of these (compared with the lower-cased phrase, as the reference does) are preferred.</summary>
    public IReadOnlyList<string> PreferredKeywords { get; init; } = RefusalTokens.ReferenceKeywords;

    /// <summary>The preset's settings.</summary>
    public static SafeCoDeOptions For(SafeCoDePreset preset) => preset switch
    {
        SafeCoDePreset.Faithful => new SafeCoDeOptions { Preset = preset },
        _ => new SafeCoDeOptions
        {
            Preset = preset, HalveAlphaOnSafe = false, Unsafe = UnsafeStrategy.SoftBoost, UnsafeNeedsTwoSteps = false, CorruptionRollback = false,
        },
    };

    /// <inheritdoc/>
    public override int GuidedSpan => MaxSteps;

    /// <inheritdoc/>
    public override void Validate()
    {
        Checks.Finite("alpha", Alpha, 0, 1000);
        Checks.Finite("λ_supp", LambdaSupp, 0, 1000);
        Checks.Finite("λ_boost", LambdaBoost, 0, 1000);
        Checks.Finite("noise std", NoiseStd, 0, 100);
        base.Validate();
        Checks.Temperature("temperature (unsafe)", TemperatureUnsafe);
        Checks.Temperature("guided temperature (safe)", GuidedTemperatureSafe);
        Checks.Temperature("guided temperature (unsafe)", GuidedTemperatureUnsafe);
        Checks.Finite("top-p (unsafe)", TopPUnsafe, 0, 1);
        if (MaxSteps is < 0 or > 1024) throw new Runtime.InputLimitException($"max steps must be in [0, 1024], not {MaxSteps}");
        if (TopK is < 1 or > 1024) throw new Runtime.InputLimitException($"top-k (phrases) must be in [1, 1024], not {TopK}");
        if (RefusalPhrases is null || PreferredKeywords is null) throw new Runtime.InputLimitException("the refusal phrases and preferred keywords must be lists, not null");
        if (RefusalPhrases.Count > 4096 || RefusalPhrases.Any(p => p is null || p.Length > 1024))
            throw new Runtime.InputLimitException("the refusal phrases must be at most 4096 phrases of at most 1024 characters");
        if (DiffusionStep is < 0 or >= DiffusionNoise.Steps) throw new ArgumentException($"VCD noise step must be in [0, {DiffusionNoise.Steps})");
        if (!(TopPUnsafe > 0 && TopPUnsafe <= 1)) throw new ArgumentException("top-p (unsafe) must be in (0, 1]");
        if (RefusalPhrases.Count == 0) throw new ArgumentException("the refusal phrase list is empty");
        // an empty phrase has no tokens: forced on an unsafe verdict it emits nothing, and the answer goes on unrefused
        for (int i = 0; i < RefusalPhrases.Count; i++)
            if (string.IsNullOrWhiteSpace(RefusalPhrases[i])) throw new Runtime.InputLimitException($"refusal phrase {i} is empty: every refusal phrase needs text");
    }

    /// <summary>
    /// New tokens allowed after guidance. Faithful budgets follow the reference code (LLaVA 20/256, Qwen 30/256,
    /// InstructBLIP 1024, IDEFICS max_length 1024 including the prompt); families it never ran take their sibling's:
    /// LLaVA-1.5 → LLaVA-NeXT, Qwen2-VL → Qwen2.5-VL, Idefics3 → IDEFICS.
    /// </summary>
    public override int Budget(string family, Verdict verdict, int promptLength)
    {
        if (MaxNewTokens is { } n) return n;
        if (Preset != SafeCoDePreset.Faithful) return UniformMaxNewTokens;
        return ModelFamilies.TryGet(family)?.FaithfulBudget(verdict, promptLength) ?? UniformMaxNewTokens;
    }
}
