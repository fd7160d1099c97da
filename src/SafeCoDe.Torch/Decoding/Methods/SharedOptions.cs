using System.Globalization;

namespace SafeCoDe.Torch.Decoding.Methods;

/// <summary>
/// The options of <see cref="DecodingOptions"/> itself (length budget, sampling, seed), which every method reads.
/// A method lists the ones it uses among its <see cref="IDecodingMethod.Options"/>; a method may replace one with its
/// own of the same name (SafeCoDe's <c>temperature</c> also sets the unsafe verdict's).
/// </summary>
public static class SharedOptions
{
    /// <summary>A default for help texts: invariant numbers, lower-case booleans.</summary>
    public static string Default(object? v) =>
        $" [default: {v switch { double d => d.ToString(CultureInfo.InvariantCulture), bool b => b ? "true" : "false", null => "none", _ => v }}]";

    private static readonly DefaultsRecord Defaults = new();

    /// <summary>Only for reading the record's defaults into help texts.</summary>
    private sealed record DefaultsRecord : DecodingOptions
    {
        public override string Method => "";
    }

    /// <summary><c>max-new-tokens</c>.</summary>
    public static readonly MethodOption<DecodingOptions, int?> MaxNewTokens = new()
    {
        Name = "max-new-tokens", HelpName = "N", Codec = OptionCodecs.OptionalInt, Get = o => o.MaxNewTokens, With = (o, v) => o with { MaxNewTokens = v },
        Help = "Tokens generated AFTER the guided span; a SafeCoDe answer can be up to --max-steps tokens longer (use --max-total-tokens for a hard cap) " +
               "[default: faithful preset: LLaVA 256 safe / 20 unsafe, Qwen 256 / 30, InstructBLIP 1024, IDEFICS 1024 − prompt; else --uniform-max-new-tokens]",
    };

    /// <summary><c>max-total-tokens</c>.</summary>
    public static readonly MethodOption<DecodingOptions, int?> MaxTotalTokens = new()
    {
        Name = "max-total-tokens", HelpName = "N", Codec = OptionCodecs.OptionalInt, Get = o => o.MaxTotalTokens, With = (o, v) => o with { MaxTotalTokens = v },
        Help = "Hard cap on all generated tokens, the guided span included [default: none]",
    };

    /// <summary><c>uniform-max-new-tokens</c>.</summary>
    public static readonly MethodOption<DecodingOptions, int> UniformMaxNewTokens = new()
    {
        Name = "uniform-max-new-tokens", HelpName = "N", Codec = OptionCodecs.Int, Get = o => o.UniformMaxNewTokens, With = (o, v) => o with { UniformMaxNewTokens = v },
        Help = "Length budget of the paper preset, of vcd/vanilla and of families without a faithful budget" + Default(Defaults.UniformMaxNewTokens),
    };

    /// <summary><c>temperature</c>: a shorthand for the continuation temperature (≤ 0 also switches to greedy).</summary>
    public static readonly MethodOption<DecodingOptions, double> Temperature = new()
    {
        Name = "temperature", HelpName = "T", Codec = OptionCodecs.Double, Stored = false, Get = o => o.TemperatureSafe,
        With = (o, t) => o with { TemperatureSafe = t, Greedy = o.Greedy || t <= 0 },
        Help = "Continuation temperature for both verdicts (≤ 0: greedy); see --temperature-safe/--temperature-unsafe",
    };

    /// <summary><c>temperature-safe</c>.</summary>
    public static readonly MethodOption<DecodingOptions, double> TemperatureSafe = new()
    {
        Name = "temperature-safe", HelpName = "T", Codec = OptionCodecs.Double, Get = o => o.TemperatureSafe, With = (o, v) => o with { TemperatureSafe = v },
        Help = "Continuation temperature after a safe verdict (and for vcd/vanilla)" + Default(Defaults.TemperatureSafe),
    };

    /// <summary><c>top-p</c>: a shorthand for the continuation top-p.</summary>
    public static readonly MethodOption<DecodingOptions, double> TopP = new()
    {
        Name = "top-p", HelpName = "P", Codec = OptionCodecs.Double, Stored = false, Get = o => o.TopPSafe, With = (o, v) => o with { TopPSafe = v },
        Help = "Continuation top-p for both verdicts; see --top-p-safe/--top-p-unsafe",
    };

    /// <summary><c>top-p-safe</c>.</summary>
    public static readonly MethodOption<DecodingOptions, double> TopPSafe = new()
    {
        Name = "top-p-safe", HelpName = "P", Codec = OptionCodecs.Double, Get = o => o.TopPSafe, With = (o, v) => o with { TopPSafe = v },
        Help = "Continuation top-p after a safe verdict (and for vcd/vanilla)" + Default(Defaults.TopPSafe),
    };

    /// <summary><c>top-k</c> (sampling).</summary>
    public static readonly MethodOption<DecodingOptions, int> TopK = new()
    {
        Name = "top-k", HelpName = "K", Codec = OptionCodecs.Int, Get = o => o.TopKSampling, With = (o, v) => o with { TopKSampling = v },
        Help = "Top-k of the continuation sampling (0: off)" + Default(Defaults.TopKSampling),
    };

    /// <summary><c>seed</c>.</summary>
    public static readonly MethodOption<DecodingOptions, long?> Seed = new()
    {
        Name = "seed", HelpName = "S", Codec = OptionCodecs.OptionalLong, Get = o => o.Seed, With = (o, v) => o with { Seed = v },
        Help = "Seed of the noise and of every sampling step [default: nondeterministic]",
    };

    /// <summary><c>greedy</c>.</summary>
    public static readonly MethodOption<DecodingOptions, bool> Greedy = new()
    {
        Name = "greedy", Codec = OptionCodecs.Bool, Get = o => o.Greedy, With = (o, v) => o with { Greedy = v },
        Help = "Argmax wherever the method samples (deterministic)",
    };

    /// <summary>Every shared option, in help order (the budget, then sampling).</summary>
    public static IReadOnlyList<MethodOption> All { get; } =
        [MaxNewTokens, MaxTotalTokens, UniformMaxNewTokens, Temperature, TemperatureSafe, TopP, TopPSafe, TopK, Seed, Greedy];
}
