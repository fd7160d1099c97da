namespace SafeCoDe.Torch.Safety.Guards;

/// <summary>
/// The project's own judge prompts (the default): for the scene verdict, a caption with the image, then a text-only
/// decision from the query and the caption (<see cref="JudgePrompts"/>, <see cref="EndpointJudge"/>); for response
/// scoring, each benchmark's own rubric (the evaluation harness's scorers). Its second call depends on the first, so
/// it is not a fixed list of calls: the judges that speak it are built directly.
/// </summary>
public sealed class SafeCoDeFormat : JudgeFormat
{
    /// <summary>The format's name.</summary>
    public const string FormatName = "safecode";

    /// <inheritdoc/>
    public override string Name => FormatName;
    /// <inheritdoc/>
    public override string Summary => "the project's caption-then-decide judge and each benchmark's own scoring rubric";
    /// <inheritdoc/>
    public override IReadOnlyList<JudgeRole> Roles { get; } = [JudgeRole.SceneVerdict, JudgeRole.ResponseScore];

    /// <inheritdoc/>
    public override IReadOnlyList<GuardCall> Calls(JudgeRole role, string query, (byte[] Bytes, string MediaType)? image, string? answer) =>
        throw new InvalidOperationException("the safecode format is spoken by EndpointJudge and the benchmarks' scorers, not as a list of guard calls");

    /// <inheritdoc/>
    public override GuardReading Read(JudgeRole role, IReadOnlyList<GuardReply> replies) =>
        throw new InvalidOperationException("the safecode format is read by VerdictParser and the benchmarks' scorers");
}
