using SafeCoDe.Eval.Benchmarks;
using SafeCoDe.Torch.Safety;

namespace SafeCoDe.Eval.SafeScenes;

/// <summary>
/// The user text of each training task, built by calling the engine's judge prompt code and the evaluation
/// harness's framing code (never a copy of either), so the model is trained on exactly the prompts its self-judge
/// sends and the prompts <c>generate</c> and <c>eval run</c> send, whatever those prompts become.
/// </summary>
public static class SafeScenesPrompts
{
    /// <summary>
    /// The framings answer examples are trained with: the bare query (<c>generate</c>), MSSBench's chat prompt
    /// (<c>eval run --benchmark mssbench</c>) and SafeCoDe's first-person prompt (<c>--benchmark mossbench --framing method</c>).
    /// </summary>
    public static readonly IReadOnlyList<Framing> AnswerFramings = [Framing.Bare, Framing.MssChat, Framing.FirstPersonAlways];

    /// <summary>The user text the model sees for <paramref name="e"/>: the caption request, the decision prompt, or the framed query.</summary>
    public static string UserText(TrainingExample e) => e.Task switch
    {
        "caption" => JudgePrompts.CaptionInstruction,
        "verdict" => JudgePrompts.VerdictPrompt(e.Query ?? throw new InvalidDataException("a verdict example needs a query"),
            e.Caption ?? throw new InvalidDataException("a verdict example needs a caption"), withReasons: false),
        "answer" => PromptFraming.Frame(FramingOf(e), e.Query ?? throw new InvalidDataException("an answer example needs a query"), methodRun: true),
        _ => throw new InvalidDataException($"unknown training task '{e.Task}'"),
    };

    /// <summary>The framing of an answer example (<see cref="Framing.Bare"/> when none is given).</summary>
    public static Framing FramingOf(TrainingExample e) =>
        e.Framing is null ? Framing.Bare
        : Enum.TryParse<Framing>(e.Framing, out var f) ? f
        : throw new InvalidDataException($"unknown framing '{e.Framing}'");

    /// <summary>Whether the task is shown with its image (the self-judge decides text-only on families that can).</summary>
    public static bool HasImage(TrainingExample e) => e.Task != "verdict";
}
