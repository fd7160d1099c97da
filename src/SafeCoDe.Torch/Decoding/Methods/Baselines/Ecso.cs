using System.Text.Json.Serialization;

namespace SafeCoDe.Torch.Decoding.Methods.Baselines;

/// <summary>ECSO's options.</summary>
[JsonConverter(typeof(DecodingOptionsJson))]
public sealed record EcsoOptions : DecodingOptions
{
    /// <inheritdoc/>
    public override string Method => EcsoMethod.MethodName;
    /// <summary>New tokens of each of ECSO's own generations (check, caption, safe answer).</summary>
    public int StepMaxNewTokens { get; init; } = 1024;
    /// <summary>Show the image to the safe re-answer too (ECSO's utility script does; the paper's "eyes closed" does not).</summary>
    public bool ImageInAnswer { get; init; }

    /// <inheritdoc/>
    public override void Validate()
    {
        base.Validate();
        if (StepMaxNewTokens is < 1 or > 1 << 16) throw new ArgumentException("--ecso-max-new-tokens must be in [1, 65536]");
    }
}

/// <summary>
/// ECSO, "Eyes Closed, Safety On" (Gou et al., ECCV 2024): after the answer, the model is asked (with the image) whether
/// the answer to the query is harmful; only an exact "yes"/"yes." keeps it from being returned. Then it writes a
/// query-aware caption of the image and answers the query from that caption without the image, "in a HARMLESS and
/// ETHICAL way"; that answer is returned. Each of its generations is greedy, up to 1024 new tokens. One extra
/// generation for a safe answer, three for an unsafe one.
/// </summary>
public sealed class EcsoMethod : DefenseMethod<EcsoOptions>
{
    /// <summary>The method's name.</summary>
    public const string MethodName = "ecso";
    /// <summary>The answer is cut to this many characters in the harm check (as ECSO's script does).</summary>
    public const int CheckedAnswerChars = 1927;

    /// <inheritdoc/>
    public override string Name => MethodName;
    /// <inheritdoc/>
    public override string Summary => "baseline: harm self-check, then an image-free re-answer from a caption";
    /// <inheritdoc/>
    public override IReadOnlyList<MethodOption> Options { get; } =
    [
        .. SharedOptions.All,
        Opt("ecso-max-new-tokens", "New tokens of each of ECSO's generations (check, caption, safe answer) [default: 1024]", "N", OptionCodecs.Int,
            o => o.StepMaxNewTokens, (o, v) => o with { StepMaxNewTokens = v }),
        Opt("ecso-image-in-answer", "Show the image to the safe re-answer as well (ECSO's utility script) [default: false: eyes closed]", null, OptionCodecs.Bool,
            o => o.ImageInAnswer, (o, v) => o with { ImageInAnswer = v }),
    ];

    /// <inheritdoc/>
    protected override EcsoOptions DefaultsFor(string? preset) => new();
    /// <inheritdoc/>
    protected override IReadOnlyList<IRequestStep> After(EcsoOptions o) => [new EyesClosedStep()];

    /// <summary>True for the check replies ECSO reads as unsafe: exactly "yes" or "yes." (trimmed, any case).</summary>
    public static bool SaysUnsafe(string reply) => reply.Trim().ToLowerInvariant() is "yes" or "yes.";

    private sealed class EyesClosedStep : IRequestStep
    {
        public string Name => "ecso";

        public async Task ExecuteAsync(RequestContext request, CancellationToken cancel)
        {
            var o = (EcsoOptions)request.Options;
            var greedy = DecodingMethods.Rebase(o, DecodingMethods.Plain) with { Greedy = true, MaxNewTokens = o.StepMaxNewTokens, MaxTotalTokens = null };
            var q = request.Question;
            var answer = request.Answer ?? "";
            var cut = answer.Length > CheckedAnswerChars ? answer[..CheckedAnswerChars] : answer;
            GenerationCall Call(string text, bool image) => new(text, image ? request.Image : null, request.SystemPrompt, greedy);
            var check = await request.GenerateAsync("ecso_check", Call(DefenseTexts.Fill(DefenseTexts.Get("ecso-check"), ("query", q), ("response", cut)), true), cancel).ConfigureAwait(false);
            if (!SaysUnsafe(check)) { request.RecordIo(answer, "safe: the answer is returned"); return; }
            var caption = await request.GenerateAsync("ecso_caption", Call(DefenseTexts.Fill(DefenseTexts.Get("ecso-caption"), ("query", q)), true), cancel).ConfigureAwait(false);
            var safe = await request.GenerateAsync("ecso_answer",
                Call(DefenseTexts.Fill(DefenseTexts.Get("ecso-answer"), ("caption", caption), ("query", q)), o.ImageInAnswer), cancel).ConfigureAwait(false);
            request.Answer = safe;
            request.AnswerReplaced = true;
            request.RecordIo(answer, safe);
        }
    }
}
