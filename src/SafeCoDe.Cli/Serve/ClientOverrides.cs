using SafeCoDe.Torch.Decoding;
using SafeCoDe.Torch.Safety;

namespace SafeCoDe.Cli.Serve;

/// <summary>What a server lets its clients change through a request's <c>safecode</c> field (<c>--client-overrides</c>).</summary>
public enum ClientOverrides
{
    /// <summary>Nothing that differs from the server's settings (the default): the operator's decoding and safety settings hold for every request.</summary>
    None,
    /// <summary>Decoding fields (contrast, noise, sampling); never a field that can weaken safety.</summary>
    Decoding,
    /// <summary>Every field, the safety ones included (a client can then switch SafeCoDe off: only for trusted clients).</summary>
    All,
}

/// <summary>Which policy level a <c>safecode</c> request field needs.</summary>
public enum OverrideClass
{
    /// <summary>Changes how the answer is decoded, not whether an unsafe scene is refused.</summary>
    Decoding,
    /// <summary>Can weaken safety: the mode, the judge or verdict, the unknown-verdict policy, the refusal settings.</summary>
    Safety,
}

/// <summary>
/// The classification of the request's <c>safecode</c> fields and the check of a request against the server's
/// policy. It is a table of its own, apart from the parser, so that it can move onto per-option metadata: each field
/// has a class and says when the value a client sent changes nothing that matters (it equals the server's setting,
/// or it can only make the server stricter — <c>verdict: unsafe</c>, <c>judge: fixed:unsafe</c>, <c>mode: safecode</c>).
/// Such values are allowed under every policy; anything else needs <see cref="ClientOverrides.Decoding"/> (decoding
/// fields) or <see cref="ClientOverrides.All"/> (safety fields).
/// </summary>
public static class ClientOverridePolicy
{
    /// <summary>What the server runs with, for comparing a request's values.</summary>
    /// <param name="Decoding">The server's decoding settings.</param>
    /// <param name="JudgeSpec">The server's judge (<c>--judge</c>).</param>
    public sealed record ServerSide(SafeCoDeOptions Decoding, string JudgeSpec);

    /// <summary>One field: its class, and when the requested value is harmless (changes nothing or only tightens).</summary>
    private sealed record Field(OverrideClass Class, Func<SafeCoDeExtension, ServerSide, bool> Harmless);

    private static Field Decoding<T>(Func<SafeCoDeOptions, T> get) => new(OverrideClass.Decoding, (e, s) => Equals(get(e.Options), get(s.Decoding)));
    private static Field Safety<T>(Func<SafeCoDeOptions, T> get) => new(OverrideClass.Safety, (e, s) => Equals(get(e.Options), get(s.Decoding)));

    private static readonly Dictionary<string, Field> Fields = new(StringComparer.Ordinal)
    {
        ["mode"] = new(OverrideClass.Safety, (e, s) => e.Options.Mode == s.Decoding.Mode || e.Options.Mode == DecodeMode.SafeCoDe),
        ["judge"] = new(OverrideClass.Safety, (e, s) => e.JudgeField is "server" or "default" or "fixed:unsafe" || e.JudgeField == "self" && s.JudgeSpec == "self"),
        ["verdict"] = new(OverrideClass.Safety, (e, _) => e.Verdict == "unsafe"),
        ["unknown_verdict"] = new(OverrideClass.Safety, (e, s) => e.Options.UnknownVerdict == s.Decoding.UnknownVerdict || e.Options.UnknownVerdict != UnknownVerdictPolicy.Safe),
        // a preset rewrites every setting it has, the operator's refusal settings among them
        ["preset"] = new(OverrideClass.Safety, (e, s) => e.Options == s.Decoding),
        ["max_steps"] = Safety(o => o.MaxSteps),
        ["refusal_top_k"] = Safety(o => o.TopK),
        ["lambda_supp"] = Safety(o => o.LambdaSupp),
        ["lambda_boost"] = Safety(o => o.LambdaBoost),
        ["unsafe_strategy"] = Safety(o => o.Unsafe),
        ["alpha"] = Decoding(o => o.Alpha),
        ["greedy"] = Decoding(o => o.Greedy),
        ["top_k"] = Decoding(o => o.TopKSampling),
        ["noise"] = Decoding(o => o.Noise),
        ["noise_std"] = Decoding(o => o.NoiseStd),
        ["vcd_beta"] = Decoding(o => o.VcdBeta),
        ["vcd_noise_step"] = Decoding(o => o.VcdNoiseStep),
    };

    /// <summary>The class of a <c>safecode</c> field (null for a field the protocol does not have).</summary>
    public static OverrideClass? ClassOf(string field) => Fields.TryGetValue(field, out var f) ? f.Class : null;

    /// <summary>Every classified field, in a fixed order (for docs and tests).</summary>
    public static IReadOnlyList<string> FieldNames { get; } = Fields.Keys.Order(StringComparer.Ordinal).ToArray();

    /// <summary>Refuses, with a 403 naming the field, the first field the client set that the policy does not let it change.</summary>
    /// <exception cref="ApiException">403 permission_error, code <c>override_not_allowed</c>.</exception>
    public static void Check(SafeCoDeExtension ext, ClientOverrides policy, ServerSide server)
    {
        if (policy == ClientOverrides.All) return;
        foreach (var name in ext.Given)
        {
            if (!Fields.TryGetValue(name, out var f)) throw new InvalidOperationException($"safecode.{name} has no override class"); // a field added to the parser but not here
            if (f.Harmless(ext, server)) continue;
            if (f.Class == OverrideClass.Decoding && policy == ClientOverrides.Decoding) continue;
            var needed = f.Class == OverrideClass.Safety ? "all" : "decoding";
            var why = f.Class == OverrideClass.Safety ? "it can weaken the server's safety settings" : "it changes the server's decoding settings";
            throw new ApiException(403, "permission_error",
                $"this server does not let clients set safecode.{name} to that value ({why}); the operator allows it with --client-overrides {needed}",
                "safecode." + name, "override_not_allowed");
        }
    }
}
