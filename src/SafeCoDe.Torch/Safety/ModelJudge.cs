using SafeCoDe.Torch.Processing.Images;

namespace SafeCoDe.Torch.Safety;

/// <summary>
/// A judge run by a loaded engine: the request's own model ("self"), or a second checkpoint such as
/// Qwen2.5-VL-3B ("local"). As the reference's local judge: a caption of the image (greedy, 64 new tokens), then
/// the few-shot decision prompt without the reasons, greedy, 4 new tokens, parsed with word boundaries. The decision
/// prompt is text-only where the family can run without an image (InstructBLIP's Q-Former always gets the image).
/// </summary>
public sealed class ModelJudge(SafeCoDeEngine engine, string? name = null, bool ownsEngine = false) : TwoStepJudge, IDisposable
{
    /// <summary>New tokens of the greedy caption (64, as the reference).</summary>
    public int CaptionTokens { get; init; } = 64;
    /// <summary>New tokens of the greedy decision (4, as the reference).</summary>
    public int VerdictTokens { get; init; } = 4;

    /// <summary>The name given at construction, else "self".</summary>
    public override string Name => name ?? "self";

    /// <summary>A judge on a second model folder, loaded on the same device (its name is "local:DIR").</summary>
    public static ModelJudge Local(string modelDir, EngineOptions? options = null) =>
        new(SafeCoDeEngine.Load(modelDir, options), "local:" + modelDir, ownsEngine: true);

    private RgbImage? Image(JudgeRequest r) => r.Image ?? (r.ImageBytes is null ? null : ImageDecoder.Decode(r.ImageBytes, "judge image", engine.ImageLimits));

    /// <summary>Decodes the image and captions it with the engine; "(no image)" without one.</summary>
    protected override Task<string> CaptionAsync(JudgeRequest request, CancellationToken cancel) =>
        Image(request) is { } image ? engine.CompleteAsync(JudgePrompts.CaptionInstruction, image, CaptionTokens, cancel) : Task.FromResult("(no image)");

    /// <summary>The decision prompt without reasons, greedy; image attached only where the family cannot run text-only.</summary>
    protected override Task<string> DecideAsync(JudgeRequest request, string caption, CancellationToken cancel) =>
        engine.CompleteAsync(JudgePrompts.VerdictPrompt(request.Query, caption, withReasons: false), engine.SupportsTextOnly ? null : Image(request), VerdictTokens, cancel);

    /// <summary>Disposes the engine when this judge owns it (<see cref="Local"/>).</summary>
    public void Dispose() { if (ownsEngine) engine.Dispose(); }
}
