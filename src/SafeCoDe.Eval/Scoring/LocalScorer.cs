using SafeCoDe.Torch;
using SafeCoDe.Torch.Decoding.Methods;

namespace SafeCoDe.Eval.Scoring;

/// <summary>A local checkpoint as judge: the rubric prompt through <see cref="SafeCoDeEngine"/> in vanilla (plain, greedy) mode.</summary>
public sealed class LocalScorer : JudgeScorer
{
    private readonly SafeCoDeEngine _engine;
    private readonly bool _ownsEngine;
    private readonly string _name;

    /// <summary>Judges with a loaded engine.</summary>
    public LocalScorer(SafeCoDeEngine engine, string name, JudgeCache? cache = null, bool ownsEngine = false) : base(cache)
    {
        _engine = engine; _name = name; _ownsEngine = ownsEngine;
    }

    /// <summary>Loads <paramref name="modelDir"/> as judge.</summary>
    public static LocalScorer Load(string modelDir, EngineOptions? options = null, JudgeCache? cache = null) =>
        new(SafeCoDeEngine.Load(modelDir, options), "local:" + Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(modelDir))), cache, ownsEngine: true);

    /// <summary>Output tokens at most (a local judge's long reviews are slow; the rubric's own limit when smaller).</summary>
    public int LocalMaxTokens { get; init; } = 512;

    /// <inheritdoc/>
    public override string Name => _name;

    /// <inheritdoc/>
    protected override async Task<string> CompleteAsync(string? system, string user, byte[]? image, string mediaType, int maxTokens, float? temperature, CancellationToken cancel)
    {
        if (image is null && !_engine.SupportsTextOnly) throw new InvalidOperationException($"{_name} ({_engine.Family}) cannot judge text without an image");
        var options = DecodingMethods.Defaults(DecodingMethods.Plain) with { Greedy = true, MaxNewTokens = Math.Min(maxTokens, LocalMaxTokens), Seed = 0 };
        var result = await _engine.GenerateAsync(new SafeCoDeRequest { Prompt = user, SystemPrompt = system, ImageBytes = image, Options = options }, cancel).ConfigureAwait(false);
        return result.Answer;
    }

    /// <inheritdoc/>
    public override void Dispose()
    {
        if (_ownsEngine) _engine.Dispose();
        base.Dispose();
    }
}
