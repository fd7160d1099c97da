using System.Text.Json.Serialization;
using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Safety;

namespace SafeCoDe.Torch.Decoding;

/// <summary>How a request is decoded.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<DecodeMode>))]
public enum DecodeMode
{
    /// <summary>Judge verdict + real/noised contrast + refusal-token modulation for the first tokens, then plain decoding.</summary>
    SafeCoDe,
    /// <summary>Visual contrastive decoding on every token ((1+α)·z_r − α·z_n with the β cut-off); no judge.</summary>
    Vcd,
    /// <summary>Plain decoding on the real image.</summary>
    Vanilla,
}

/// <summary>Named bundles of SafeCoDe settings.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<SafeCoDePreset>))]
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
[JsonConverter(typeof(JsonStringEnumConverter<UnsafeStrategy>))]
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

/// <summary>Which noise makes the second branch.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<NoiseKind>))]
public enum NoiseKind
{
    /// <summary>Gaussian noise on the raw RGB image (σ on [0,1]), clamped and re-quantised, before preprocessing (the reference).</summary>
    Pixel,
    /// <summary>VCD's diffusion noise on the processed pixel tensor (step t of the 1000-step sigmoid schedule).</summary>
    VcdDiffusion,
}

/// <summary>
/// Every knob of a SafeCoDe/VCD/vanilla decode, immutable. Build one with <see cref="For"/> and override with
/// <c>with</c>; each result records the options it ran with.
/// </summary>
public sealed record SafeCoDeOptions
{
    /// <summary>SafeCoDe, VCD or vanilla decoding.</summary>
    public DecodeMode Mode { get; init; } = DecodeMode.SafeCoDe;
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
    /// <summary>Diffusion step t of <see cref="NoiseKind.VcdDiffusion"/>, in [0, 1000) (checked when the noise is applied, not by <see cref="Validate"/>).</summary>
    public int VcdNoiseStep { get; init; } = 500;
    /// <summary>VCD plausibility cut-off β.</summary>
    public double VcdBeta { get; init; } = 0.1;

    /// <summary>What a judge reply that is not a clear verdict becomes: unsafe (default, fails closed), safe, or an error.</summary>
    public UnknownVerdictPolicy UnknownVerdict { get; init; } = UnknownVerdictPolicy.Unsafe;

    /// <summary>Seed of the noise and of every sampling step (null: nondeterministic).</summary>
    public long? Seed { get; init; }
    /// <summary>Argmax wherever the method samples (deterministic runs and tests).</summary>
    public bool Greedy { get; init; }

    /// <summary>Faithful: α is halved on the safe path (the reference code's behaviour).</summary>
    public bool HalveAlphaOnSafe { get; init; } = true;
    /// <summary>What the unsafe path does: force the best-ranked refusal phrase, or boost refusal tokens softly.</summary>
    public UnsafeStrategy Unsafe { get; init; } = UnsafeStrategy.ForcePhrase;
    /// <summary>Faithful: an unsafe verdict with max_steps &lt; 2 takes the safe path (the reference's condition).</summary>
    public bool UnsafeNeedsTwoSteps { get; init; } = true;
    /// <summary>On the safe path, a first token that decodes to a quote character is replaced by the runner-up (reference behaviour).</summary>
    public bool QuoteSkip { get; init; } = true;
    /// <summary>Ends guidance once the text has ≥ 2 words and starts with a capitalised word of ≥ 2 characters (see <see cref="GuidedDecoder.NaturalStart"/>).</summary>
    public bool EarlyExit { get; init; } = true;
    /// <summary>Rolls guided tokens back when they look corrupt (see <see cref="GuidedDecoder.Corrupt"/>), keeping at most the first clean one.</summary>
    public bool CorruptionRollback { get; init; } = true;
    /// <summary>Temperature of guided steps ≥ 1 on safe / unsafe (soft boost) verdicts.</summary>
    public double GuidedTemperatureSafe { get; init; } = 0.8;
    /// <summary>Temperature of guided steps ≥ 1 on the unsafe (soft boost) path.</summary>
    public double GuidedTemperatureUnsafe { get; init; } = 0.7;

    /// <summary>Continuation sampling after guidance, per verdict.</summary>
    public double TemperatureSafe { get; init; } = 0.8;
    /// <summary>Top-p of the continuation after a safe verdict (and for VCD / vanilla).</summary>
    public double TopPSafe { get; init; } = 0.9;
    /// <summary>Continuation temperature after an unsafe verdict (SafeCoDe mode only).</summary>
    public double TemperatureUnsafe { get; init; } = 0.7;
    /// <summary>Continuation top-p after an unsafe verdict (SafeCoDe mode only).</summary>
    public double TopPUnsafe { get; init; } = 0.85;
    /// <summary>Top-k of the continuation sampling; 0 switches it off.</summary>
    public int TopKSampling { get; init; }

    /// <summary>New tokens after guidance; null = the preset's rule (faithful: per verdict and family; paper: <see cref="UniformMaxNewTokens"/>).</summary>
    public int? MaxNewTokens { get; init; }
    /// <summary>The length budget of the paper preset, of VCD / vanilla runs, and of families without a faithful budget.</summary>
    public int UniformMaxNewTokens { get; init; } = 512;
    /// <summary>
    /// Cap on all generated tokens, the guided span included (null: none) — what an API's "max output tokens" means.
    /// <see cref="MaxNewTokens"/> counts only the tokens after guidance, so without this cap a SafeCoDe answer can be
    /// up to <see cref="MaxSteps"/> tokens longer.
    /// </summary>
    public int? MaxTotalTokens { get; init; }

    /// <summary>
    /// Refusal phrases: their sub-tokens (per tokenizer) form the refusal token set, and the phrases themselves are the
    /// candidates forced on an unsafe verdict. Default: the reference code's 29-entry list.
    /// </summary>
    public IReadOnlyList<string> RefusalPhrases { get; init; } = RefusalTokens.ReferencePhrases;
    /// <summary>Phrases containing one of these (compared with the lower-cased phrase, as the reference does) are preferred.</summary>
    public IReadOnlyList<string> PreferredKeywords { get; init; } = RefusalTokens.ReferenceKeywords;

    /// <summary>The preset's settings for a mode.</summary>
    public static SafeCoDeOptions For(SafeCoDePreset preset, DecodeMode mode = DecodeMode.SafeCoDe) => preset switch
    {
        SafeCoDePreset.Faithful => new SafeCoDeOptions { Preset = preset, Mode = mode } with
        {
            Alpha = mode == DecodeMode.Vcd ? 1.0 : 0.3,
        },
        _ => new SafeCoDeOptions
        {
            Preset = preset, Mode = mode, Alpha = mode == DecodeMode.Vcd ? 1.0 : 0.3,
            HalveAlphaOnSafe = false, Unsafe = UnsafeStrategy.SoftBoost, UnsafeNeedsTwoSteps = false, CorruptionRollback = false,
        },
    };

    /// <summary>Checks the ranges of α, max steps, top-k, λs, noise σ, VCD β and max new tokens.</summary>
    /// <exception cref="ArgumentException">A value is out of range.</exception>
    public void Validate()
    {
        SafeCoDe.Torch.Runtime.OptionChecks.Validate(this);
        if (Alpha < 0 || double.IsNaN(Alpha)) throw new ArgumentException("alpha must be ≥ 0");
        if (MaxSteps < 0) throw new ArgumentException("max steps must be ≥ 0");
        if (TopK < 1) throw new ArgumentException("top-k (phrases) must be ≥ 1");
        if (LambdaSupp < 0 || LambdaBoost < 0) throw new ArgumentException("λ_supp and λ_boost must be ≥ 0");
        if (NoiseStd < 0) throw new ArgumentException("noise std must be ≥ 0");
        if (VcdBeta <= 0 || VcdBeta > 1) throw new ArgumentException("VCD β must be in (0, 1]");
        if (MaxNewTokens is < 0) throw new ArgumentException("max new tokens must be ≥ 0");
        if (VcdNoiseStep is < 0 or >= VcdNoise.Steps) throw new ArgumentException($"VCD noise step must be in [0, {VcdNoise.Steps})");
        if (TopKSampling < 0) throw new ArgumentException("top-k must be ≥ 0");
        foreach (var (name, v) in new[] { ("temperature (safe)", TemperatureSafe), ("temperature (unsafe)", TemperatureUnsafe),
                     ("guided temperature (safe)", GuidedTemperatureSafe), ("guided temperature (unsafe)", GuidedTemperatureUnsafe) })
            if (double.IsNaN(v) || v < 0) throw new ArgumentException($"{name} must be ≥ 0");
        foreach (var (name, v) in new[] { ("top-p (safe)", TopPSafe), ("top-p (unsafe)", TopPUnsafe) })
            if (!(v > 0 && v <= 1)) throw new ArgumentException($"{name} must be in (0, 1]");
        if (RefusalPhrases.Count == 0) throw new ArgumentException("the refusal phrase list is empty");
        if (MaxTotalTokens is < 0) throw new ArgumentException("max total tokens must be ≥ 0");
    }

    /// <summary>
    /// New tokens allowed after guidance. Faithful budgets follow the reference code (LLaVA 20/256, Qwen 30/256,
    /// InstructBLIP 1024, IDEFICS max_length 1024 including the prompt); families it never ran take their sibling's:
    /// LLaVA-1.5 → LLaVA-NeXT, Qwen2-VL → Qwen2.5-VL, Idefics3 → IDEFICS.
    /// </summary>
    public int Budget(string family, Verdict verdict, int promptLength)
    {
        if (MaxNewTokens is { } n) return n;
        if (Preset != SafeCoDePreset.Faithful || Mode != DecodeMode.SafeCoDe) return UniformMaxNewTokens;
        return ModelFamilies.TryGet(family)?.FaithfulBudget(verdict, promptLength) ?? UniformMaxNewTokens;
    }
}
