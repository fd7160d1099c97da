using System.Diagnostics;

namespace SafeCoDe.Torch.Decoding.Methods.SafeCoDeDecoding;

/// <summary>
/// SafeCoDe's scene-level reasoning as a request step: unless the request gives the verdict, the request's judge
/// captions the image and decides safe/unsafe for the query in that scene; the decode then steers by the verdict.
/// </summary>
public sealed class SceneJudgeStep : IRequestStep
{
    /// <summary>The one instance (the step has no settings of its own).</summary>
    public static SceneJudgeStep Instance { get; } = new();

    /// <inheritdoc/>
    public string Name => "scene_judge";

    /// <inheritdoc/>
    public async Task ExecuteAsync(RequestContext request, CancellationToken cancel)
    {
        if (request.VerdictGiven) { request.RecordIo(request.JudgeQuery, request.Verdict.ToString().ToLowerInvariant() + " (given)"); return; }
        var sw = Stopwatch.StartNew();
        var unknown = ((SafeCoDeOptions)request.Options).UnknownVerdict;
        var judged = await request.JudgeAsync(unknown, cancel).ConfigureAwait(false);
        request.JudgeMs = sw.Elapsed.TotalMilliseconds;
        request.Judged = judged;
        request.Verdict = judged.Verdict;
        request.RecordCall(new CallRecord("scene_judge", judged.Judge, request.JudgeQuery, judged.RawVerdictReply, request.JudgeMs));
        request.RecordIo(request.JudgeQuery, $"{judged.Verdict.ToString().ToLowerInvariant()}; caption: {judged.Caption}");
    }
}
