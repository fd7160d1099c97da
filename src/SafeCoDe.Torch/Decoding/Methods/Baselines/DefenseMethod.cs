using SafeCoDe.Torch.Decoding.Sessions;
using SafeCoDe.Torch.Safety;

namespace SafeCoDe.Torch.Decoding.Methods.Baselines;

/// <summary>
/// The shape of the paper's baseline defenses: the model decodes plainly (the real image, or none; no judge, no second
/// branch), and the defense acts before decoding (on the prompt, or answering outright) and after it (checking and
/// replacing the answer) through its request-level steps. Benchmarks frame their prompts with their own protocol.
/// </summary>
public abstract class DefenseMethod<TOptions> : DecodingMethod<TOptions> where TOptions : DecodingOptions
{
    /// <inheritdoc/>
    public override bool FramesAsMethod => false;

    /// <inheritdoc/>
    protected override MethodNeeds Needs(TOptions o) => new(Image: false, Noised: null, Judge: false);

    /// <inheritdoc/>
    protected override DecodePhase Plan(DecodeContext context, DecodeSession session, TOptions o)
    {
        session.DropNoised();
        return Continuation.Phase(context, session, Math.Min(context.Budget, context.Cap), o.Greedy ? 0 : o.TemperatureSafe, o.TopPSafe, o.TopKSampling);
    }

    /// <summary>An option of <typeparamref name="TOptions"/> (the one way the defenses describe theirs).</summary>
    protected static MethodOption<TOptions, T> Opt<T>(string name, string help, string? helpName, OptionCodec<T> codec, Func<TOptions, T> get, Func<TOptions, T, TOptions> with,
        bool weakens = false) =>
        new() { Name = name, Help = help, HelpName = helpName, Codec = codec, Get = get, With = with, WeakensSafety = weakens };

    /// <summary>The helper-model option every defense that asks another model takes (default: the request's own model).</summary>
    protected static MethodOption<TOptions, string> HelperOption(string name, string what, Func<TOptions, string> get, Func<TOptions, string, TOptions> with) =>
        Opt(name, $"Who {what}: {ModelSpec.Forms(ModelRole.Helper)} [default: self]", "SPEC", OptionCodecs.Text, get, with, weakens: true);

    /// <summary>The <c>protect-structure</c> option of the prompt-rewriting defenses.</summary>
    protected static MethodOption<TOptions, bool> ProtectOption(Func<TOptions, bool> get, Func<TOptions, bool, TOptions> with) =>
        Opt("protect-structure", "Keep image placeholders (<image k>) and multiple-choice option blocks out of the rewrite [default: true]", null, OptionCodecs.Bool, get, with);

    /// <summary>Checks a helper spec when the options are validated (a typo fails before a model loads).</summary>
    protected static void CheckHelper(string spec, string option) => ModelSpec.Parse(spec, ModelRole.Helper, "--" + option);
}
