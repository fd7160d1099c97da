using System.Text.Json.Serialization;
using SafeCoDe.Torch.Safety;

namespace SafeCoDe.Torch.Decoding.Methods.Baselines;

/// <summary>The paraphrase defense's options.</summary>
[JsonConverter(typeof(DecodingOptionsJson))]
public sealed record ParaphraseOptions : DecodingOptions
{
    /// <inheritdoc/>
    public override string Method => ParaphraseMethod.MethodName;
    /// <summary>Who paraphrases (a model spec; <c>self</c>: the request's model with its own generation settings).</summary>
    public string Paraphraser { get; init; } = "self";
    /// <summary>The paraphraser's instruction; the question follows it.</summary>
    public string? Prompt { get; init; }
    /// <summary>Keep placeholders and option blocks out of the paraphrase.</summary>
    public bool ProtectStructure { get; init; } = true;
    /// <summary>The instruction in use.</summary>
    [JsonIgnore] public string Instruction => Prompt ?? DefenseTexts.Get("paraphrase");

    /// <inheritdoc/>
    public override void Validate() { base.Validate(); ParaphraseMethod.CheckSpec(Paraphraser); }
}

/// <summary>
/// Paraphrase (Jain et al. 2023, as SafeDecoding implements it): a helper model rewrites the question ("Please
/// paraphrase the following sentences…" + the question; an endpoint at temperature 0, seed 0), the rewrite replaces the
/// question, and the model answers it as usual. One extra call per request.
/// </summary>
public sealed class ParaphraseMethod : DefenseMethod<ParaphraseOptions>
{
    /// <summary>The method's name.</summary>
    public const string MethodName = "paraphrase";

    /// <inheritdoc/>
    public override string Name => MethodName;
    /// <inheritdoc/>
    public override string Summary => "baseline: a helper model paraphrases the question first";
    /// <inheritdoc/>
    public override IReadOnlyList<MethodOption> Options { get; } =
    [
        .. SharedOptions.All,
        HelperOption("paraphrase-model", "paraphrases the question", o => o.Paraphraser, (o, v) => o with { Paraphraser = v }),
        Opt("paraphrase-prompt", "A file whose text replaces the paraphraser's instruction [default: SafeDecoding's]", "FILE", OptionCodecs.FileText,
            o => o.Prompt, (o, v) => o with { Prompt = v }),
        ProtectOption(o => o.ProtectStructure, (o, v) => o with { ProtectStructure = v }),
    ];

    internal static void CheckSpec(string spec) => CheckHelper(spec, "paraphrase-model");
    /// <inheritdoc/>
    protected override ParaphraseOptions DefaultsFor(string? preset) => new();
    /// <inheritdoc/>
    protected override IReadOnlyList<IRequestStep> Before(ParaphraseOptions o) => [new ParaphraseStep()];

    private sealed class ParaphraseStep : IRequestStep
    {
        public string Name => "paraphrase";

        public async Task ExecuteAsync(RequestContext request, CancellationToken cancel)
        {
            var o = (ParaphraseOptions)request.Options;
            var question = request.Question;
            var guard = o.ProtectStructure ? StructureGuard.Split(question) : StructureGuard.Whole(question);
            var helper = ModelSpec.Parse(o.Paraphraser, ModelRole.Helper, "--paraphrase-model");
            var reply = await request.AskHelperAsync("paraphraser", helper,
                new HelperCall(o.Instruction + guard.Stem, request.Options) { EndpointTemperature = 0, EndpointSeed = 0 }, cancel).ConfigureAwait(false);
            var rewritten = guard.Join(reply);
            request.ReplaceQuestion(rewritten);
            request.RecordIo(question, rewritten);
        }
    }
}
