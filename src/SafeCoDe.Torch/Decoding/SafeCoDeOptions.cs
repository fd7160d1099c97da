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
public enum UnsafeStrategy { ForcePhrase, SoftBoost }

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
    public DecodeMode Mode { get; init; } = DecodeMode.SafeCoDe;
    public SafeCoDePreset Preset { get; init; } = SafeCoDePreset.Faithful;

    /// <summary>Weight of the noised branch in the contrast.</summary>
    public double Alpha { get; init; } = 0.3;
    /// <summary>Guided tokens at most (forced phrase length on unsafe).</summary>
    public int MaxSteps { get; init; } = 5;
    /// <summary>Refusal phrases kept when ranking (unsafe, forced phrase).</summary>
    public int TopK { get; init; } = 20;
    public double LambdaSupp { get; init; } = 1.0;
    public double LambdaBoost { get; init; } = 1.0;

    public NoiseKind Noise { get; init; } = NoiseKind.Pixel;
    public double NoiseStd { get; init; } = 0.1;
    public int VcdNoiseStep { get; init; } = 500;
    /// <summary>VCD plausibility cut-off β.</summary>
    public double VcdBeta { get; init; } = 0.1;

    /// <summary>Seed of the noise and of every sampling step (null: nondeterministic).</summary>
    public long? Seed { get; init; }
    /// <summary>Argmax wherever the method samples (deterministic runs and tests).</summary>
    public bool Greedy { get; init; }

    public bool HalveAlphaOnSafe { get; init; } = true;
    public UnsafeStrategy Unsafe { get; init; } = UnsafeStrategy.ForcePhrase;
    /// <summary>Faithful: an unsafe verdict with max_steps &lt; 2 takes the safe path (the reference's condition).</summary>
    public bool UnsafeNeedsTwoSteps { get; init; } = true;
    public bool QuoteSkip { get; init; } = true;
    public bool EarlyExit { get; init; } = true;
    public bool CorruptionRollback { get; init; } = true;
    /// <summary>Temperature of guided steps ≥ 1 on safe / unsafe (soft boost) verdicts.</summary>
    public double GuidedTemperatureSafe { get; init; } = 0.8;
    public double GuidedTemperatureUnsafe { get; init; } = 0.7;

    /// <summary>Continuation sampling after guidance, per verdict.</summary>
    public double TemperatureSafe { get; init; } = 0.8;
    public double TopPSafe { get; init; } = 0.9;
    public double TemperatureUnsafe { get; init; } = 0.7;
    public double TopPUnsafe { get; init; } = 0.85;
    public int TopKSampling { get; init; }

    /// <summary>New tokens after guidance; null = the preset's rule (faithful: per verdict and family; paper: <see cref="UniformMaxNewTokens"/>).</summary>
    public int? MaxNewTokens { get; init; }
    public int UniformMaxNewTokens { get; init; } = 512;
    /// <summary>
    /// Cap on all generated tokens, the guided span included (null: none) — what an API's "max output tokens" means.
    /// <see cref="MaxNewTokens"/> counts only the tokens after guidance, so without this cap a SafeCoDe answer can be
    /// up to <see cref="MaxSteps"/> tokens longer.
    /// </summary>
    public int? MaxTotalTokens { get; init; }

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

    public void Validate()
    {
        if (Alpha < 0 || double.IsNaN(Alpha)) throw new ArgumentException("alpha must be ≥ 0");
        if (MaxSteps < 0) throw new ArgumentException("max steps must be ≥ 0");
        if (TopK < 1) throw new ArgumentException("top-k (phrases) must be ≥ 1");
        if (LambdaSupp < 0 || LambdaBoost < 0) throw new ArgumentException("λ_supp and λ_boost must be ≥ 0");
        if (NoiseStd < 0) throw new ArgumentException("noise std must be ≥ 0");
        if (VcdBeta <= 0 || VcdBeta > 1) throw new ArgumentException("VCD β must be in (0, 1]");
        if (MaxNewTokens is < 0) throw new ArgumentException("max new tokens must be ≥ 0");
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
        bool unsafeV = verdict == Verdict.Unsafe;
        return family switch
        {
            ModelFamilies.Llava or ModelFamilies.LlavaNext => unsafeV ? 20 : 256,
            ModelFamilies.Qwen2VL or ModelFamilies.Qwen25VL => unsafeV ? 30 : 256,
            ModelFamilies.InstructBlip => 1024,
            ModelFamilies.Idefics or ModelFamilies.Idefics3 => Math.Max(0, 1024 - promptLength),
            _ => UniformMaxNewTokens,
        };
    }
}
