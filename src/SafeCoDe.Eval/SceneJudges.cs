using SafeCoDe.Torch;
using SafeCoDe.Torch.Runtime;
using SafeCoDe.Torch.Safety;

namespace SafeCoDe.Eval;

/// <summary>The scene judge of <c>--judge</c> specs, as <c>safecode generate</c> reads them.</summary>
public static class SceneJudges
{
    /// <summary>self, local:DIR, openai[:MODEL], fixed:safe, fixed:unsafe, cache:FILE; <paramref name="cacheFile"/> wraps the judge in a <see cref="CachedJudge"/>.</summary>
    public static ISafetyJudge Create(string spec, SafeCoDeEngine engine, DeviceRequest device, string? cacheFile = null)
    {
        int colon = spec.IndexOf(':');
        string kind = colon < 0 ? spec : spec[..colon], arg = colon < 0 ? "" : spec[(colon + 1)..];
        ISafetyJudge judge = kind switch
        {
            "self" => new ModelJudge(engine),
            "local" when arg.Length > 0 => ModelJudge.Local(arg, new EngineOptions { Device = device }),
            "openai" => new EndpointJudge(new EndpointJudgeOptions { Model = arg.Length > 0 ? arg : null }),
            "fixed" when arg is "safe" => new FixedJudge(Verdict.Safe),
            "fixed" when arg is "unsafe" => new FixedJudge(Verdict.Unsafe),
            "cache" when arg.Length > 0 => new CachedJudge(arg),
            _ => throw new ArgumentException($"--judge '{spec}': expected self, local:DIR, openai[:MODEL], fixed:safe, fixed:unsafe or cache:FILE"),
        };
        return cacheFile is null ? judge : new CachedJudge(cacheFile, judge);
    }
}
