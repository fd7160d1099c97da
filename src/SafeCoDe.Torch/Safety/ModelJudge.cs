using SafeCoDe.Torch.Processing.Images;

namespace SafeCoDe.Torch.Safety;

/// <summary>Greedy text for a prompt and an optional image, at most <paramref name="maxNewTokens"/> new tokens: how a model judge reaches its model.</summary>
public delegate Task<string> JudgeCompletion(string prompt, RgbImage? image, int maxNewTokens, CancellationToken cancel);

/// <summary>
/// A judge run by a loaded model: the request's own model ("self"), or a second checkpoint such as
/// Qwen2.5-VL-3B ("local"). As the reference's local judge: a caption of the image (greedy, 64 new tokens), then
/// the few-shot decision prompt without the reasons, greedy, 4 new tokens, parsed with word boundaries. The decision
/// prompt is text-only where the family can run without an image (InstructBLIP's Q-Former always gets the image).
/// The model is reached through a <see cref="JudgeCompletion"/>: an engine's <see cref="SafeCoDeEngine.CompleteAsync"/>,
/// or, inside a request on that same engine, a completion the engine hands over that runs within the held request.
/// </summary>
public sealed class ModelJudge : TwoStepJudge, IDisposable
{
    private readonly SafeCoDeEngine? _engine;
    private readonly bool _ownsEngine;
    private readonly JudgeCompletion _complete;
    private readonly bool _textOnly;
    private readonly ImageDecodeOptions? _limits;
    private readonly string? _name;

    /// <summary>A judge on <paramref name="engine"/> (its name is <paramref name="name"/>, else "self").</summary>
    public ModelJudge(SafeCoDeEngine engine, string? name = null, bool ownsEngine = false)
        : this(engine.CompleteAsync, engine.SupportsTextOnly, engine.ImageLimits, name)
    {
        _engine = engine;
        _ownsEngine = ownsEngine;
    }

    /// <summary>A judge on any completion function.</summary>
    /// <param name="complete">Generates the caption and the decision.</param>
    /// <param name="supportsTextOnly">Whether the decision prompt may go without the image.</param>
    /// <param name="imageLimits">Limits for decoding the request's image bytes.</param>
    /// <param name="name">The judge's name (default "self").</param>
    public ModelJudge(JudgeCompletion complete, bool supportsTextOnly, ImageDecodeOptions? imageLimits = null, string? name = null)
    {
        _complete = complete;
        _textOnly = supportsTextOnly;
        _limits = imageLimits;
        _name = name;
    }

    /// <summary>New tokens of the greedy caption (64, as the reference).</summary>
    public int CaptionTokens { get; init; } = 64;
    /// <summary>New tokens of the greedy decision (4, as the reference).</summary>
    public int VerdictTokens { get; init; } = 4;

    /// <summary>The name given at construction, else "self".</summary>
    public override string Name => _name ?? "self";

    /// <summary>A judge on a second model folder, loaded on the same device (its name is "local:DIR").</summary>
    public static ModelJudge Local(string modelDir, EngineOptions? options = null) =>
        new(SafeCoDeEngine.Load(modelDir, options), "local:" + modelDir, ownsEngine: true);

    /// <summary>True when this judge generates with <paramref name="engine"/>.</summary>
    internal bool RunsOn(SafeCoDeEngine engine) => ReferenceEquals(_engine, engine);

    /// <summary>The same judge (name, token counts) generating through <paramref name="complete"/>.</summary>
    internal ModelJudge WithCompletion(JudgeCompletion complete) =>
        new(complete, _textOnly, _limits, _name) { CaptionTokens = CaptionTokens, VerdictTokens = VerdictTokens };

    private RgbImage? Image(JudgeRequest r) => r.Image ?? (r.ImageBytes is null ? null : ImageDecoder.Decode(r.ImageBytes, "judge image", _limits));

    /// <summary>Decodes the image and captions it with the model; "(no image)" without one.</summary>
    protected override Task<string> CaptionAsync(JudgeRequest request, CancellationToken cancel) =>
        Image(request) is { } image ? _complete(JudgePrompts.CaptionInstruction, image, CaptionTokens, cancel) : Task.FromResult("(no image)");

    /// <summary>The decision prompt without reasons, greedy; image attached only where the family cannot run text-only.</summary>
    protected override Task<string> DecideAsync(JudgeRequest request, string caption, CancellationToken cancel) =>
        _complete(JudgePrompts.VerdictPrompt(request.Query, caption, withReasons: false), _textOnly ? null : Image(request), VerdictTokens, cancel);

    /// <summary>Disposes the engine when this judge owns it (<see cref="Local"/>).</summary>
    public void Dispose() { if (_ownsEngine) _engine?.Dispose(); }
}
