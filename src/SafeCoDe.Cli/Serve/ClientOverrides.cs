using System.Text.Json.Nodes;
using SafeCoDe.Torch.Decoding.Methods;

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
    /// <summary>Can weaken safety: the mode, the judge or verdict, the preset, an option marked <see cref="MethodOption.WeakensSafety"/>.</summary>
    Safety,
}

/// <summary>
/// The check of a request's <c>safecode</c> fields against the server's policy. A method option's class comes from
/// its descriptor (<see cref="MethodOption.WeakensSafety"/>: the unknown-verdict policy, the refusal settings), so a
/// method registered later is covered without a line here; only the request-level fields that are not options —
/// <c>mode</c>, <c>preset</c>, <c>judge</c>, <c>verdict</c> — are listed. A value that changes nothing that matters is
/// allowed under every policy: the server's own value, or one that can only make the server stricter
/// (<c>verdict: unsafe</c>, <c>judge: fixed:unsafe</c>, <c>mode</c> the default safety method, an option's
/// <see cref="MethodOption.StricterValues"/>). Anything else needs <see cref="ClientOverrides.Decoding"/> (decoding
/// options) or <see cref="ClientOverrides.All"/> (safety fields).
/// </summary>
public static class ClientOverridePolicy
{
    /// <summary>What the server runs with, for comparing a request's values.</summary>
    /// <param name="Decoding">The server's decoding settings.</param>
    /// <param name="JudgeSpec">The server's judge (<c>--judge</c>).</param>
    public sealed record ServerSide(DecodingOptions Decoding, string JudgeSpec);

    /// <summary>The request-level fields (not options of a method), all of the safety class, with when a value is harmless.</summary>
    private static readonly Dictionary<string, Func<SafeCoDeExtension, ServerSide, bool>> RequestFields = new(StringComparer.Ordinal)
    {
        ["mode"] = (e, s) => e.Options.Method == s.Decoding.Method || e.Options.Method == DecodingMethods.Default,
        ["judge"] = (e, s) => e.JudgeField is "server" or "default" or "fixed:unsafe" || e.JudgeField == "self" && s.JudgeSpec == "self",
        ["verdict"] = (e, _) => e.Verdict == "unsafe",
        // a preset rewrites every setting it has, the operator's refusal settings among them
        ["preset"] = (e, s) => JsonNode.DeepEquals(DecodingMethods.ToJson(e.Options), DecodingMethods.ToJson(s.Decoding)),
    };

    /// <summary>The request-level fields the policy knows besides the methods' options (for docs and tests).</summary>
    public static IReadOnlyList<string> RequestFieldNames { get; } = RequestFields.Keys.Order(StringComparer.Ordinal).ToArray();

    /// <summary>The class of a <c>safecode</c> field for a request decoded with <paramref name="options"/> (null for a field neither the request nor its method has).</summary>
    public static OverrideClass? ClassOf(string field, DecodingOptions options) =>
        RequestFields.ContainsKey(field) ? OverrideClass.Safety
        : DecodingMethods.OptionOf(DecodingMethods.Of(options), field) is { } option ? option.WeakensSafety ? OverrideClass.Safety : OverrideClass.Decoding
        : null;

    /// <summary>Refuses, with a 403 naming the field, the first field the client set that the policy does not let it change.</summary>
    /// <exception cref="ApiException">403 permission_error, code <c>override_not_allowed</c>.</exception>
    public static void Check(SafeCoDeExtension ext, ClientOverrides policy, ServerSide server)
    {
        if (policy == ClientOverrides.All) return;
        foreach (var name in ext.Given)
        {
            // a field the parser accepted but neither list knows would be a hole in the policy
            var cls = ClassOf(name, ext.Options) ?? throw new InvalidOperationException($"safecode.{name} has no override class");
            if (Harmless(name, ext, server)) continue;
            if (cls == OverrideClass.Decoding && policy == ClientOverrides.Decoding) continue;
            var needed = cls == OverrideClass.Safety ? "all" : "decoding";
            var why = cls == OverrideClass.Safety ? "it can weaken the server's safety settings" : "it changes the server's decoding settings";
            throw new ApiException(403, "permission_error",
                $"this server does not let clients set safecode.{name} to that value ({why}); the operator allows it with --client-overrides {needed}",
                "safecode." + name, "override_not_allowed");
        }
    }

    /// <summary>True when the request's value of <paramref name="name"/> is the server's (carried to the request's method) or only tightens.</summary>
    private static bool Harmless(string name, SafeCoDeExtension ext, ServerSide server)
    {
        if (RequestFields.TryGetValue(name, out var harmless)) return harmless(ext, server);
        var option = DecodingMethods.OptionOf(DecodingMethods.Of(ext.Options), name)!;
        var theirs = option.Write(ext.Options);
        if (theirs is JsonValue v && v.TryGetValue<string>(out var text) && option.StricterValues.Contains(text)) return true;
        var ours = ext.Options.Method == server.Decoding.Method ? server.Decoding : DecodingMethods.Rebase(server.Decoding, ext.Options.Method);
        return option.AppliesTo(ours) && JsonNode.DeepEquals(theirs, option.Write(ours));
    }
}
