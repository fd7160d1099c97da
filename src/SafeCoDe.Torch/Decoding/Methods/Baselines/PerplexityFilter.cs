using System.Globalization;
using System.Text.Json.Serialization;
using SafeCoDe.Torch.Safety;

namespace SafeCoDe.Torch.Decoding.Methods.Baselines;

/// <summary>The perplexity filter's options.</summary>
[JsonConverter(typeof(DecodingOptionsJson))]
public sealed record PerplexityFilterOptions : DecodingOptions
{
    /// <inheritdoc/>
    public override string Method => PerplexityFilterMethod.MethodName;
    /// <summary>Whose language model scores the question (<c>self</c>: the backbone's, text only).</summary>
    public string Scorer { get; init; } = "self";
    /// <summary>Questions above this perplexity are refused; null: the scorer's calibrated threshold from its model folder.</summary>
    public double? Threshold { get; init; }

    /// <inheritdoc/>
    public override void Validate()
    {
        base.Validate();
        var spec = ModelSpec.Parse(Scorer, ModelRole.Helper, "--ppl-model");
        if (spec.Kind == ModelSpecKind.OpenAi)
            throw new ArgumentException($"--ppl-model {spec}: an endpoint gives no token probabilities here; use self, local:DIR or fixed:NUMBER");
        if (spec.Kind == ModelSpecKind.Fixed && !double.TryParse(spec.Argument, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out _))
            throw new ArgumentException($"--ppl-model {spec}: fixed: takes a number here (the perplexity every question scores)");
        if (Threshold is { } t && !(double.IsFinite(t) && t > 0)) throw new ArgumentException("--ppl-threshold must be a positive number");
    }
}

/// <summary>
/// The perplexity filter (Jain et al. 2023, as SafeDecoding implements it): the raw question (no template, no image) is
/// scored by a language model; above the threshold the refusal constant is returned without decoding, otherwise the
/// model answers as usual. One scoring forward per request. The threshold is a per-model figure: SafeDecoding's 175.57
/// is GPT-2's highest perplexity over 50 AdvBench goals, meaningless for another model — calibrate one with
/// <c>safecode eval calibrate ppl</c> (a model folder may carry it in <c>safecode-ppl.json</c>).
/// </summary>
public sealed class PerplexityFilterMethod : DefenseMethod<PerplexityFilterOptions>
{
    /// <summary>The method's name.</summary>
    public const string MethodName = "ppl";

    /// <inheritdoc/>
    public override string Name => MethodName;
    /// <inheritdoc/>
    public override string Summary => "baseline: refuse questions whose perplexity is above a calibrated threshold";
    /// <inheritdoc/>
    public override IReadOnlyList<MethodOption> Options { get; } =
    [
        .. SharedOptions.All,
        Opt("ppl-model", "Whose language model scores the question's perplexity: self (the backbone's), local:DIR or fixed:NUMBER (an endpoint gives no token probabilities) [default: self]",
            "SPEC", OptionCodecs.Text, o => o.Scorer, (o, v) => o with { Scorer = v }, weakens: true),
        Opt("ppl-threshold", "Refuse questions above this perplexity [default: the model folder's calibration (safecode eval calibrate ppl)]", "X",
            OptionCodecs.OptionalDouble, o => o.Threshold, (o, v) => o with { Threshold = v }, weakens: true),
    ];

    /// <inheritdoc/>
    protected override PerplexityFilterOptions DefaultsFor(string? preset) => new();
    /// <inheritdoc/>
    protected override IReadOnlyList<IRequestStep> Before(PerplexityFilterOptions o) => [new FilterStep()];
    /// <inheritdoc/>
    protected override void CheckModel(PerplexityFilterOptions o, ModelFacts facts) => Threshold(o, facts.CalibratedPerplexityThreshold);

    private static double Threshold(PerplexityFilterOptions o, Func<ModelSpec, double?> calibrated)
    {
        var spec = ModelSpec.Parse(o.Scorer, ModelRole.Helper, "--ppl-model");
        return o.Threshold ?? calibrated(spec) ?? throw new InvalidOperationException(
            $"the ppl method needs a perplexity threshold for {spec}: give --ppl-threshold, or calibrate one with " +
            $"'safecode eval calibrate ppl -b BENCHMARK -d DATA -m MODEL --write' (it writes safecode-ppl.json into the model folder)");
    }

    private sealed class FilterStep : IRequestStep
    {
        public string Name => "perplexity_filter";

        public async Task ExecuteAsync(RequestContext request, CancellationToken cancel)
        {
            var o = (PerplexityFilterOptions)request.Options;
            double threshold = Threshold(o, request.CalibratedPerplexityThreshold);
            var spec = ModelSpec.Parse(o.Scorer, ModelRole.Helper, "--ppl-model");
            double ppl = await request.PerplexityAsync("perplexity", spec, request.Question, cancel).ConfigureAwait(false);
            // a question of fewer than two tokens has no perplexity (NaN): it passes, as in the reference
            bool refused = ppl > threshold;
            if (refused) request.Refusal = DefenseTexts.Refusal;
            request.RecordIo(request.Question,
                $"perplexity {ppl.ToString("G6", CultureInfo.InvariantCulture)} {(refused ? ">" : "≤")} threshold {threshold.ToString("G6", CultureInfo.InvariantCulture)}: {(refused ? "refused" : "passed")}");
        }
    }
}
