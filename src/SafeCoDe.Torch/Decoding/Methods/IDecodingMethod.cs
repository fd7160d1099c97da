using SafeCoDe.Torch.Decoding.Noise;
using SafeCoDe.Torch.Decoding.Sessions;

namespace SafeCoDe.Torch.Decoding.Methods;

/// <summary>How a method's second branch is made: the noise kind, its σ (pixel noise) and its step (diffusion noise).</summary>
public sealed record NoisedView(NoiseKind Kind, double Std, int DiffusionStep);

/// <summary>What a method needs from a request before it can decode.</summary>
/// <param name="Image">An image is required (a contrast needs one to noise).</param>
/// <param name="Noised">The noised branch to build next to the real one (null: the real branch alone).</param>
/// <param name="Judge">The request's judge is used (a verdict is decided before decoding unless the request gives one).</param>
public sealed record MethodNeeds(bool Image, NoisedView? Noised, bool Judge);

/// <summary>
/// A decoding method, described once (as <see cref="Models.IModelFamily"/> describes a family): its name, its options
/// (each with name, type, default, help and validation), its presets, what it needs from a request, the request-level
/// steps it runs before and after decoding, and the phases of its decode — chains of rules, a selector, a stop rule
/// and the next phase. Registered in <see cref="DecodingMethods"/>; the engine, the command line, the server and the
/// evaluation harness ask the descriptor and never name a method. A new method is one file (see
/// docs/architecture.md, "Adding a decoding method"); <see cref="DecodingMethod{TOptions}"/> does the plumbing.
/// </summary>
public interface IDecodingMethod
{
    /// <summary>The name (<c>--mode NAME</c>, <c>"mode": "NAME"</c>).</summary>
    string Name { get; }
    /// <summary>One line for <c>--mode</c>'s help.</summary>
    string Summary { get; }
    /// <summary>The record type of the method's options (a <see cref="DecodingOptions"/>).</summary>
    Type OptionsType { get; }
    /// <summary>Named bundles of defaults (the first is the default); empty when the method has none.</summary>
    IReadOnlyList<string> Presets { get; }
    /// <summary>What each preset does, for <c>--preset</c>'s help (empty without presets).</summary>
    string PresetsHelp { get; }
    /// <summary>Every option the method reads: the shared ones it uses and its own, in help order.</summary>
    IReadOnlyList<MethodOption> Options { get; }
    /// <summary>True when benchmarks frame requests with SafeCoDe's first-person prompt by default (<c>--framing auto</c>); false: each benchmark's own protocol.</summary>
    bool FramesAsMethod { get; }

    /// <summary>The defaults of <paramref name="preset"/> (null: the default preset).</summary>
    /// <exception cref="ArgumentException">The method has no such preset.</exception>
    DecodingOptions Defaults(string? preset);
    /// <summary>The preset <paramref name="options"/> started from (null when the method has none).</summary>
    string? PresetOf(DecodingOptions options);
    /// <summary>What a request decoded with <paramref name="options"/> needs.</summary>
    MethodNeeds Needs(DecodingOptions options);
    /// <summary>Steps run before decoding (e.g. SafeCoDe's scene judge), in order.</summary>
    IReadOnlyList<IRequestStep> Before(DecodingOptions options);
    /// <summary>Steps run after decoding (e.g. a check of the answer), in order.</summary>
    IReadOnlyList<IRequestStep> After(DecodingOptions options);
    /// <summary>
    /// The first phase of the decode of <paramref name="session"/> (prefilled with the branches <see cref="Needs"/> asked
    /// for); the phases chain on through their <see cref="DecodePhase.Next"/>. Null: nothing to decode.
    /// </summary>
    DecodePhase? Plan(DecodeContext context, DecodeSession session);
}

/// <summary>The typed plumbing of a method over its options record <typeparamref name="TOptions"/>.</summary>
public abstract class DecodingMethod<TOptions> : IDecodingMethod where TOptions : DecodingOptions
{
    /// <inheritdoc/>
    public abstract string Name { get; }
    /// <inheritdoc/>
    public abstract string Summary { get; }
    /// <inheritdoc/>
    public Type OptionsType => typeof(TOptions);
    /// <inheritdoc/>
    public virtual IReadOnlyList<string> Presets => [];
    /// <inheritdoc/>
    public virtual string PresetsHelp => "";
    /// <inheritdoc/>
    public abstract IReadOnlyList<MethodOption> Options { get; }
    /// <inheritdoc/>
    public virtual bool FramesAsMethod => true;

    /// <summary>The defaults of a preset (null: the first); methods without presets get null.</summary>
    protected abstract TOptions DefaultsFor(string? preset);
    /// <summary>The preset of the options (methods without presets: null).</summary>
    protected virtual string? PresetOf(TOptions options) => null;
    /// <summary>What a request with these options needs.</summary>
    protected abstract MethodNeeds Needs(TOptions options);
    /// <summary>Steps before decoding.</summary>
    protected virtual IReadOnlyList<IRequestStep> Before(TOptions options) => [];
    /// <summary>Steps after decoding.</summary>
    protected virtual IReadOnlyList<IRequestStep> After(TOptions options) => [];
    /// <summary>The first phase.</summary>
    protected abstract DecodePhase? Plan(DecodeContext context, DecodeSession session, TOptions options);

    /// <inheritdoc/>
    public DecodingOptions Defaults(string? preset)
    {
        if (preset is not null && !Presets.Contains(preset, StringComparer.OrdinalIgnoreCase))
            throw new ArgumentException(Presets.Count == 0 ? $"the {Name} method has no presets ('{preset}')" : $"preset '{preset}': expected {OptionCodecs.OneOf(Presets)}");
        return DefaultsFor(preset?.ToLowerInvariant());
    }

    /// <inheritdoc/>
    public string? PresetOf(DecodingOptions options) => PresetOf(Typed(options));
    /// <inheritdoc/>
    public MethodNeeds Needs(DecodingOptions options) => Needs(Typed(options));
    /// <inheritdoc/>
    public IReadOnlyList<IRequestStep> Before(DecodingOptions options) => Before(Typed(options));
    /// <inheritdoc/>
    public IReadOnlyList<IRequestStep> After(DecodingOptions options) => After(Typed(options));
    /// <inheritdoc/>
    public DecodePhase? Plan(DecodeContext context, DecodeSession session) => Plan(context, session, Typed(context.Options));

    private TOptions Typed(DecodingOptions o) =>
        o as TOptions ?? throw new ArgumentException($"the {Name} method decodes with {typeof(TOptions).Name}, not {o.GetType().Name}");
}
