using System.Text.Json.Serialization;

namespace SafeCoDe.Torch.Decoding.Methods.Baselines;

/// <summary>DPP's released patches.</summary>
public enum DppPatch
{
    /// <summary>Llama-2-7B-Chat "Best" (the default: the vicuna-based backbones are Llama-family).</summary>
    Best,
    /// <summary>Llama-2 "Long".</summary>
    Long,
    /// <summary>Llama-2 "Warn".</summary>
    Warn,
    /// <summary>Mistral-7B-Instruct-v0.2.</summary>
    Mistral,
}

/// <summary>The defensive prompt patch's options.</summary>
[JsonConverter(typeof(DecodingOptionsJson))]
public sealed record DppOptions : DecodingOptions
{
    /// <inheritdoc/>
    public override string Method => DppMethod.MethodName;
    /// <summary>Which released patch.</summary>
    public DppPatch Variant { get; init; } = DppPatch.Best;
    /// <summary>A patch replacing the variant's.</summary>
    public string? Patch { get; init; }
}

/// <summary>
/// DPP, the defensive prompt patch (Xiong et al., ACL 2025): a suffix after the question, composed as
/// "{question} {patch}". No patch for vision-language models has been published, so the default is the Llama-2-7B-Chat
/// "Best" patch (the backbones here are mostly Llama-family); the variant is an option. No extra call.
/// </summary>
public sealed class DppMethod : DefenseMethod<DppOptions>
{
    /// <summary>The method's name.</summary>
    public const string MethodName = "dpp";

    /// <inheritdoc/>
    public override string Name => MethodName;
    /// <inheritdoc/>
    public override string Summary => "baseline: a defensive prompt patch after the question";
    /// <inheritdoc/>
    public override IReadOnlyList<MethodOption> Options { get; } =
    [
        .. SharedOptions.All,
        Opt("dpp-variant", "Which released patch: best, long, warn (Llama-2) or mistral (Mistral-7B-Instruct) [default: best]", null,
            OptionCodecs.Choice((DppPatch.Best, "best"), (DppPatch.Long, "long"), (DppPatch.Warn, "warn"), (DppPatch.Mistral, "mistral")), o => o.Variant, (o, v) => o with { Variant = v }),
        Opt("dpp-patch", "A file whose text replaces the patch", "FILE", OptionCodecs.FileText, o => o.Patch, (o, v) => o with { Patch = v }),
    ];

    /// <summary>The patch in use.</summary>
    public static string PatchText(DppOptions o) => o.Patch ?? DefenseTexts.Get("dpp-" + o.Variant.ToString().ToLowerInvariant());

    /// <inheritdoc/>
    protected override DppOptions DefaultsFor(string? preset) => new();
    /// <inheritdoc/>
    protected override IReadOnlyList<IRequestStep> Before(DppOptions o) => [new PatchStep()];

    private sealed class PatchStep : IRequestStep
    {
        public string Name => "dpp";

        public Task ExecuteAsync(RequestContext request, CancellationToken cancel)
        {
            var q = request.Question;
            request.ReplaceQuestion(q + " " + PatchText((DppOptions)request.Options));
            request.RecordIo(q, request.Prompt);
            return Task.CompletedTask;
        }
    }
}
