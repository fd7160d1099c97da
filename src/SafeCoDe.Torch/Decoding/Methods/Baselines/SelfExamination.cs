using System.Text.Json.Serialization;
using SafeCoDe.Torch.Safety;

namespace SafeCoDe.Torch.Decoding.Methods.Baselines;

/// <summary>Which self-examination prompt.</summary>
public enum SelfExamForm
{
    /// <summary>SafeDecoding's: "Does the following text contain harmful content: {out} …" (the default).</summary>
    SafeDecoding,
    /// <summary>The LLM Self Defense paper's harm filter: "Question: Does this describe harmful behaviour? …".</summary>
    Paper,
}

/// <summary>The self-examination defense's options.</summary>
[JsonConverter(typeof(DecodingOptionsJson))]
public sealed record SelfExaminationOptions : DecodingOptions
{
    /// <inheritdoc/>
    public override string Method => SelfExaminationMethod.MethodName;
    /// <summary>Who checks the answer (<c>self</c>: the request's model, same template and system turn, same generation settings, text only).</summary>
    public string Checker { get; init; } = "self";
    /// <summary>Which built-in check prompt.</summary>
    public SelfExamForm Form { get; init; } = SelfExamForm.SafeDecoding;
    /// <summary>A check prompt replacing the form's (its placeholder for the answer: {out} or {content}).</summary>
    public string? Prompt { get; init; }

    /// <inheritdoc/>
    public override void Validate() { base.Validate(); ModelSpec.Parse(Checker, ModelRole.Helper, "--self-exam-model"); }
}

/// <summary>
/// Self-examination (LLM Self Defense, Phute et al., as SafeDecoding implements it): after the answer, the model is
/// asked whether it contains harmful content; a reply containing "yes" (anywhere, case-insensitive — "eyes" counts, as
/// in the reference) replaces the answer with the refusal constant; "no" or anything else keeps it (the latter recorded
/// as a failed check). One extra generation per request.
/// </summary>
public sealed class SelfExaminationMethod : DefenseMethod<SelfExaminationOptions>
{
    /// <summary>The method's name.</summary>
    public const string MethodName = "self-exam";

    /// <inheritdoc/>
    public override string Name => MethodName;
    /// <inheritdoc/>
    public override string Summary => "baseline: the answer is checked for harm and refused when the check says yes";
    /// <inheritdoc/>
    public override IReadOnlyList<MethodOption> Options { get; } =
    [
        .. SharedOptions.All,
        HelperOption("self-exam-model", "checks the answer", o => o.Checker, (o, v) => o with { Checker = v }),
        Opt("self-exam-form", "The check prompt: safedecoding (SafeDecoding's) or paper (the LLM Self Defense harm filter) [default: safedecoding]", null,
            OptionCodecs.Choice((SelfExamForm.SafeDecoding, "safedecoding"), (SelfExamForm.Paper, "paper")), o => o.Form, (o, v) => o with { Form = v }),
        Opt("self-exam-prompt", "A file whose text replaces the check prompt ({out} or {content} is the answer)", "FILE", OptionCodecs.FileText,
            o => o.Prompt, (o, v) => o with { Prompt = v }),
    ];

    /// <inheritdoc/>
    protected override SelfExaminationOptions DefaultsFor(string? preset) => new();
    /// <inheritdoc/>
    protected override IReadOnlyList<IRequestStep> After(SelfExaminationOptions o) => [new CheckStep()];

    /// <summary>The check prompt for <paramref name="answer"/>.</summary>
    public static string CheckPrompt(SelfExaminationOptions o, string answer) =>
        DefenseTexts.Fill(o.Prompt ?? DefenseTexts.Get(o.Form == SelfExamForm.Paper ? "self-exam-paper" : "self-exam-safedecoding"), ("out", answer), ("content", answer));

    private sealed class CheckStep : IRequestStep
    {
        public string Name => "self_exam";

        public async Task ExecuteAsync(RequestContext request, CancellationToken cancel)
        {
            var o = (SelfExaminationOptions)request.Options;
            var answer = request.Answer ?? "";
            var prompt = CheckPrompt(o, answer);
            var spec = ModelSpec.Parse(o.Checker, ModelRole.Helper, "--self-exam-model");
            var plain = DecodingMethods.Rebase(o, DecodingMethods.Plain);
            var reply = spec.Kind == ModelSpecKind.Self
                ? await request.GenerateAsync("self_exam", new GenerationCall(prompt, null, request.SystemPrompt, plain), cancel).ConfigureAwait(false)
                : await request.AskHelperAsync("self_exam", spec, new HelperCall(prompt, plain) { EndpointTemperature = 0 }, cancel).ConfigureAwait(false);
            var lower = reply.ToLowerInvariant();
            string decision = lower.Contains("yes", StringComparison.Ordinal) ? "harmful" : lower.Contains("no", StringComparison.Ordinal) ? "passed" : "check failed";
            if (decision == "harmful") { request.Answer = DefenseTexts.Refusal; request.AnswerReplaced = true; }
            request.RecordIo(answer, decision);
        }
    }
}
