using System.Text.Json.Serialization;

namespace SafeCoDe.Torch.Decoding.Methods.Baselines;

/// <summary>The chain-of-thought defense's options.</summary>
[JsonConverter(typeof(DecodingOptionsJson))]
public sealed record ChainOfThoughtOptions : DecodingOptions
{
    /// <inheritdoc/>
    public override string Method => ChainOfThoughtMethod.MethodName;
    /// <summary>The safety-reasoning prefix (null: MSSBench's CoT chat prompt).</summary>
    public string? Prefix { get; init; }
    /// <summary>Keep only the text after the last "Query answer:" as the answer (for utility scoring); the full reply is recorded.</summary>
    public bool ExtractAnswer { get; init; }
}

/// <summary>
/// CoT prompting as a safety baseline. SafeCoDe publishes no text for it; this uses MSSBench's CoT chat prompt (user
/// intent, safety reasoning, safety evaluation, query answer) as prefix + question — a reconstruction. The reply is the
/// full structured text unless <c>--cot-extract-answer</c> keeps the part after the last "Query answer:". No extra call.
/// </summary>
public sealed class ChainOfThoughtMethod : DefenseMethod<ChainOfThoughtOptions>
{
    /// <summary>The method's name.</summary>
    public const string MethodName = "cot";
    /// <summary>The label before the answer in the structured reply.</summary>
    public const string AnswerLabel = "Query answer:";

    /// <inheritdoc/>
    public override string Name => MethodName;
    /// <inheritdoc/>
    public override string Summary => "baseline: safety chain-of-thought prompt before the question";
    /// <inheritdoc/>
    public override IReadOnlyList<MethodOption> Options { get; } =
    [
        .. SharedOptions.All,
        Opt("cot-prompt", "A file whose text replaces the chain-of-thought prefix [default: MSSBench's CoT chat prompt]", "FILE", OptionCodecs.FileText,
            o => o.Prefix, (o, v) => o with { Prefix = v }),
        Opt("cot-extract-answer", "Answer with the text after the last 'Query answer:' only (for helpfulness scoring) [default: false]", null, OptionCodecs.Bool,
            o => o.ExtractAnswer, (o, v) => o with { ExtractAnswer = v }),
    ];

    /// <inheritdoc/>
    protected override ChainOfThoughtOptions DefaultsFor(string? preset) => new();
    /// <inheritdoc/>
    protected override IReadOnlyList<IRequestStep> Before(ChainOfThoughtOptions o) => [new PrefixStep()];
    /// <inheritdoc/>
    protected override IReadOnlyList<IRequestStep> After(ChainOfThoughtOptions o) => o.ExtractAnswer ? [new ExtractStep()] : [];

    /// <summary>The text after the last "Query answer:" (trimmed), or the whole reply when the label is missing.</summary>
    public static string Extract(string reply)
    {
        int at = reply.LastIndexOf(AnswerLabel, StringComparison.Ordinal);
        return at < 0 ? reply : reply[(at + AnswerLabel.Length)..].Trim();
    }

    private sealed class PrefixStep : IRequestStep
    {
        public string Name => "cot_prompt";

        public Task ExecuteAsync(RequestContext request, CancellationToken cancel)
        {
            var o = (ChainOfThoughtOptions)request.Options;
            var question = request.Question;
            request.ReplaceQuestion((o.Prefix ?? DefenseTexts.Get("cot-chat")) + question);
            request.RecordIo(question, request.Prompt);
            return Task.CompletedTask;
        }
    }

    private sealed class ExtractStep : IRequestStep
    {
        public string Name => "cot_extract_answer";

        public Task ExecuteAsync(RequestContext request, CancellationToken cancel)
        {
            var full = request.Answer ?? "";
            var part = Extract(full);
            request.RecordIo(full, part);
            if (part != full) { request.Answer = part; request.AnswerReplaced = true; }
            return Task.CompletedTask;
        }
    }
}
