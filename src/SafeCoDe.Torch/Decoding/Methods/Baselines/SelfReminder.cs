using System.Text.Json.Serialization;

namespace SafeCoDe.Torch.Decoding.Methods.Baselines;

/// <summary>The self-reminder defense's options.</summary>
[JsonConverter(typeof(DecodingOptionsJson))]
public sealed record SelfReminderOptions : DecodingOptions
{
    /// <inheritdoc/>
    public override string Method => SelfReminderMethod.MethodName;
    /// <summary>Appended to the system turn (null: SafeDecoding's text).</summary>
    public string? SystemReminder { get; init; }
    /// <summary>Appended to the question (null: SafeDecoding's text).</summary>
    public string? QuerySuffix { get; init; }
}

/// <summary>
/// Self-Reminder in SafeDecoding's form: a reminder appended to the system turn (" You should be a responsible AI…";
/// with no system turn it becomes the system turn, its leading space dropped — LLaVA-style templates then put it before
/// the user turn) and another appended to the question ("\nRemember, you should be a responsible AI…"). No extra call.
/// </summary>
public sealed class SelfReminderMethod : DefenseMethod<SelfReminderOptions>
{
    /// <summary>The method's name.</summary>
    public const string MethodName = "self-reminder";

    /// <inheritdoc/>
    public override string Name => MethodName;
    /// <inheritdoc/>
    public override string Summary => "baseline: responsibility reminders in the system turn and after the question";
    /// <inheritdoc/>
    public override IReadOnlyList<MethodOption> Options { get; } =
    [
        .. SharedOptions.All,
        Opt("reminder-system", "A file whose text is appended to the system turn [default: SafeDecoding's]", "FILE", OptionCodecs.FileText,
            o => o.SystemReminder, (o, v) => o with { SystemReminder = v }),
        Opt("reminder-suffix", "A file whose text is appended to the question [default: SafeDecoding's]", "FILE", OptionCodecs.FileText,
            o => o.QuerySuffix, (o, v) => o with { QuerySuffix = v }),
    ];

    /// <inheritdoc/>
    protected override SelfReminderOptions DefaultsFor(string? preset) => new();
    /// <inheritdoc/>
    protected override IReadOnlyList<IRequestStep> Before(SelfReminderOptions o) => [new RemindStep()];

    private sealed class RemindStep : IRequestStep
    {
        public string Name => "remind";

        public Task ExecuteAsync(RequestContext request, CancellationToken cancel)
        {
            var o = (SelfReminderOptions)request.Options;
            var system = o.SystemReminder ?? DefenseTexts.Get("self-reminder-system");
            // appended to the system text the model would see (the template's default when the request gives none), as SafeDecoding does
            request.SystemPrompt = (request.SystemPrompt ?? request.DefaultSystemPrompt) is { Length: > 0 } given ? given + system : system.TrimStart();
            var question = request.Question;
            request.ReplaceQuestion(question + (o.QuerySuffix ?? DefenseTexts.Get("self-reminder-suffix")));
            request.RecordIo(question, $"system: {request.SystemPrompt}\nuser: {request.Prompt}");
            return Task.CompletedTask;
        }
    }
}
