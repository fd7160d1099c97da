using SafeCoDe.Torch;
using SafeCoDe.Torch.Runtime;
using SafeCoDe.Torch.Safety;

namespace SafeCoDe.Eval;

/// <summary>The scene judge of <c>--judge</c> specs, as <c>safecode generate</c> reads them.</summary>
public static class SceneJudges
{
    /// <summary>self, local:DIR, openai[:MODEL], fixed:safe, fixed:unsafe, cache:FILE; <paramref name="cacheFile"/> wraps the judge in a <see cref="CachedJudge"/>.</summary>
    public static ISafetyJudge Create(string spec, SafeCoDeEngine engine, DeviceRequest device, string? cacheFile = null) =>
        SceneJudgeSpecs.Create(spec, engine, device, cacheFile);
}
