namespace SafeCoDe.Torch.Safety;

/// <summary>What kind of model a spec names.</summary>
public enum ModelSpecKind
{
    /// <summary>The request's own model.</summary>
    Self,
    /// <summary>Another checkpoint folder, loaded by this process (<c>local:DIR</c>).</summary>
    Local,
    /// <summary>An OpenAI-compatible endpoint (<c>openai[:MODEL]</c>; the SAFECODE_JUDGE_* / OPENAI_* variables say where).</summary>
    OpenAi,
    /// <summary>A fixed answer (<c>fixed:TEXT</c>): a verdict for a judge, a reply or a number for a helper; for tests and dry runs.</summary>
    Fixed,
    /// <summary>Replies replayed from a judge cache file (<c>cache:FILE</c>; judges only).</summary>
    Cache,
}

/// <summary>
/// The one grammar of the model specs every role takes — the scene judge (<c>--judge</c>) and the helper models of the
/// baseline defenses (a paraphraser, a perplexity model, a checker): <c>self</c>, <c>local:DIR</c>,
/// <c>openai[:MODEL]</c>, <c>fixed:TEXT</c>, and for judges <c>cache:FILE</c>.
/// </summary>
/// <param name="Kind">What kind of model.</param>
/// <param name="Argument">The part after the colon (folder, model name, fixed text, cache file); empty when none.</param>
public sealed record ModelSpec(ModelSpecKind Kind, string Argument)
{
    /// <summary>The request's own model.</summary>
    public static ModelSpec Self { get; } = new(ModelSpecKind.Self, "");

    /// <summary>Reads a spec for the role named <paramref name="role"/> (e.g. <c>--judge</c>), which decides what is allowed.</summary>
    /// <exception cref="ArgumentException">Not one of the forms the role takes; the message lists them.</exception>
    public static ModelSpec Parse(string spec, ModelRole role, string roleName)
    {
        ArgumentNullException.ThrowIfNull(spec);
        int colon = spec.IndexOf(':');
        string kind = colon < 0 ? spec : spec[..colon], arg = colon < 0 ? "" : spec[(colon + 1)..];
        ModelSpec? parsed = kind switch
        {
            "self" when arg.Length == 0 => Self,
            "local" when arg.Length > 0 => new(ModelSpecKind.Local, arg),
            "openai" => new(ModelSpecKind.OpenAi, arg),
            "fixed" when role == ModelRole.Judge && arg is "safe" or "unsafe" => new(ModelSpecKind.Fixed, arg),
            "fixed" when role != ModelRole.Judge && arg.Length > 0 => new(ModelSpecKind.Fixed, arg),
            "cache" when role == ModelRole.Judge && arg.Length > 0 => new(ModelSpecKind.Cache, arg),
            _ => null,
        };
        return parsed ?? throw new ArgumentException($"{roleName} '{spec}': expected {Forms(role)}");
    }

    /// <summary>True when <paramref name="spec"/> is a form the role takes.</summary>
    public static bool IsValid(string spec, ModelRole role)
    {
        try { Parse(spec, role, "spec"); return true; }
        catch (ArgumentException) { return false; }
    }

    /// <summary>The forms a role takes, for help and errors.</summary>
    public static string Forms(ModelRole role) => role == ModelRole.Judge
        ? "self, local:DIR, openai[:MODEL], fixed:safe, fixed:unsafe or cache:FILE"
        : "self, local:DIR, openai[:MODEL] or fixed:TEXT";

    /// <summary>The spec as written (<c>self</c>, <c>local:DIR</c>, …).</summary>
    public override string ToString() => Kind switch
    {
        ModelSpecKind.Self => "self",
        ModelSpecKind.Local => "local:" + Argument,
        ModelSpecKind.OpenAi => Argument.Length == 0 ? "openai" : "openai:" + Argument,
        ModelSpecKind.Fixed => "fixed:" + Argument,
        _ => "cache:" + Argument,
    };
}

/// <summary>The role a model spec is read for.</summary>
public enum ModelRole
{
    /// <summary>The scene judge (caption + safe/unsafe).</summary>
    Judge,
    /// <summary>A helper of a method: it completes a prompt (a paraphraser, a checker) or scores text (a perplexity model).</summary>
    Helper,
}

/// <summary>The scene judge of a spec (the one place judge specs become judges: the command line, the harness and servers use it).</summary>
public static class SceneJudgeSpecs
{
    /// <summary>The judge of <paramref name="spec"/> on <paramref name="engine"/> (<c>self</c>), wrapped in a <see cref="CachedJudge"/> of <paramref name="cacheFile"/> when given.</summary>
    /// <exception cref="ArgumentException">The spec is not one of the judge forms.</exception>
    /// <param name="format">The judge format (<c>--judge-format</c>): <c>safecode</c> (default) or a guard model's, which only an endpoint judge speaks.</param>
    public static ISafetyJudge Create(string spec, SafeCoDeEngine engine, Runtime.DeviceRequest device, string? cacheFile = null, string optionName = "--judge",
        string? format = null)
    {
        var s = CheckFormat(spec, format, optionName);
        var guard = format is null ? null : Guards.JudgeFormats.Get(format);
        ISafetyJudge judge = s.Kind switch
        {
            ModelSpecKind.Self => new ModelJudge(engine),
            ModelSpecKind.Local => ModelJudge.Local(s.Argument, new EngineOptions { Device = device }),
            ModelSpecKind.OpenAi when guard is not null && guard.Name != Guards.JudgeFormats.Default =>
                new Guards.GuardJudge(new EndpointJudge(new EndpointJudgeOptions { Model = s.Argument.Length > 0 ? s.Argument : null }), guard),
            ModelSpecKind.OpenAi => new EndpointJudge(new EndpointJudgeOptions { Model = s.Argument.Length > 0 ? s.Argument : null }),
            ModelSpecKind.Fixed => new FixedJudge(s.Argument == "safe" ? Verdict.Safe : Verdict.Unsafe),
            _ => new CachedJudge(s.Argument),
        };
        return cacheFile is null ? judge : new CachedJudge(cacheFile, judge);
    }

    /// <summary>
    /// Checks a judge spec and its format together before anything loads: the format exists, can give a scene verdict,
    /// and a guard format comes with an endpoint judge (guard models are served by an OpenAI-compatible server).
    /// </summary>
    /// <exception cref="ArgumentException">They do not fit; the message names the options.</exception>
    public static ModelSpec CheckFormat(string spec, string? format, string optionName = "--judge")
    {
        var s = ModelSpec.Parse(spec, ModelRole.Judge, optionName);
        if (format is null) return s;
        var f = Guards.JudgeFormats.Get(format);
        f.CheckRole(Guards.JudgeRole.SceneVerdict, "--judge-format");
        if (f.Name != Guards.JudgeFormats.Default && s.Kind != ModelSpecKind.OpenAi)
            throw new ArgumentException($"--judge-format {f.Name} needs an endpoint judge serving that guard model ({optionName} openai:MODEL), not {optionName} {s}");
        return s;
    }
}
