using System.Globalization;
using System.Text.Json.Serialization;
using SafeCoDe.Torch.Runtime;
using SafeCoDe.Torch.Safety;

namespace SafeCoDe.Torch.Decoding.Methods;

/// <summary>
/// Every knob of one request's decode, immutable: the settings every method reads (length budget, sampling, seed)
/// here, a method's own knobs in its derived record. Each method has one record type; build one with the method's
/// defaults (<see cref="DecodingMethods.Defaults"/>, or the record's own <c>For</c>) and override with <c>with</c>.
/// Every result records the options it ran with, in the JSON the command line and the server read back.
/// </summary>
[JsonConverter(typeof(DecodingOptionsJson))]
public abstract record DecodingOptions
{
    /// <summary>The name of the method these options are for (see <see cref="DecodingMethods"/>).</summary>
    [JsonIgnore] public abstract string Method { get; }

    /// <summary>New tokens after the method's guided span; null = the method's rule (<see cref="UniformMaxNewTokens"/> unless it has its own).</summary>
    public int? MaxNewTokens { get; init; }
    /// <summary>The length budget when <see cref="MaxNewTokens"/> is not set and the method has no rule of its own.</summary>
    public int UniformMaxNewTokens { get; init; } = 512;
    /// <summary>
    /// Cap on all generated tokens, a guided span included (null: none) — what an API's "max output tokens" means.
    /// <see cref="MaxNewTokens"/> counts only the tokens after guidance, so without this cap an answer can be longer.
    /// </summary>
    public int? MaxTotalTokens { get; init; }
    /// <summary>Temperature of the (continuation) sampling; after a safe verdict for methods with a verdict.</summary>
    public double TemperatureSafe { get; init; } = 0.8;
    /// <summary>Top-p of the (continuation) sampling; after a safe verdict for methods with a verdict.</summary>
    public double TopPSafe { get; init; } = 0.9;
    /// <summary>Top-k of the continuation sampling; 0 switches it off.</summary>
    public int TopKSampling { get; init; }
    /// <summary>Seed of the noise and of every sampling step (null: nondeterministic; a request draws one and records it).</summary>
    public long? Seed { get; init; }
    /// <summary>Argmax wherever the method samples (deterministic runs and tests).</summary>
    public bool Greedy { get; init; }

    /// <summary>New tokens allowed after the guided span for a prompt of <paramref name="promptLength"/> tokens.</summary>
    public virtual int Budget(string family, Verdict verdict, int promptLength) => MaxNewTokens ?? UniformMaxNewTokens;

    /// <summary>Most tokens a method may pick before its length budget starts (its guided span): the prefill reserves room for them.</summary>
    public virtual int GuidedSpan => 0;

    /// <summary>Checks the ranges of every field.</summary>
    /// <exception cref="ArgumentException">A value is out of range.</exception>
    /// <exception cref="InputLimitException">A value is not finite or beyond a hard limit.</exception>
    public virtual void Validate()
    {
        var limits = InputLimits.Current;
        Checks.Temperature("temperature (safe)", TemperatureSafe);
        Checks.Finite("top-p (safe)", TopPSafe, 0, 1);
        if (TopKSampling < 0 || TopKSampling > limits.MaxVocabSize) throw new InputLimitException($"top-k must be in [0, {limits.MaxVocabSize}], not {TopKSampling}");
        foreach (var (name, v) in new[] { ("max new tokens", MaxNewTokens), ("max total tokens", MaxTotalTokens), ("uniform max new tokens", (int?)UniformMaxNewTokens) })
            if (v is { } n && (n < 0 || n > limits.MaxNewTokens))
                throw new InputLimitException($"{name} must be in [0, {limits.MaxNewTokens}], not {n} (InputLimits.MaxNewTokens)");
        if (!(TopPSafe > 0 && TopPSafe <= 1)) throw new ArgumentException("top-p (safe) must be in (0, 1]");
    }

    /// <summary>Range checks the options records share.</summary>
    public static class Checks
    {
        /// <summary>Smallest temperature other than 0 (greedy); smaller values overflow the softmax.</summary>
        public const double MinTemperature = 1e-3;
        /// <summary>Largest temperature accepted.</summary>
        public const double MaxTemperature = 100;

        /// <summary>A finite value in [min, max].</summary>
        public static void Finite(string name, double v, double min, double max)
        {
            if (!double.IsFinite(v)) throw new InputLimitException($"{name} must be a finite number, not {v.ToString(CultureInfo.InvariantCulture)}");
            if (v < min || v > max) throw new InputLimitException($"{name} must be in [{min}, {max}], not {v.ToString(CultureInfo.InvariantCulture)}");
        }

        /// <summary>0 (greedy) or a temperature in [<see cref="MinTemperature"/>, <see cref="MaxTemperature"/>].</summary>
        public static void Temperature(string name, double v)
        {
            Finite(name, v, 0, MaxTemperature);
            if (v > 0 && v < MinTemperature) throw new InputLimitException($"{name} must be 0 (greedy) or at least {MinTemperature}, not {v}");
        }
    }
}
