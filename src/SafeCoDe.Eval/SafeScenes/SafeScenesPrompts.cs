using SafeCoDe.Torch.Safety;

namespace SafeCoDe.Eval.SafeScenes;

/// <summary>
/// The user text of each training task, built by calling the engine's judge prompt code (never a copy of it), so
/// the model is trained on exactly the prompts its self-judge sends, whatever those prompts become.
/// </summary>
public static class SafeScenesPrompts
{
    /// <summary>The user text the model sees for <paramref name="e"/>: the caption request, the decision prompt, or the query.</summary>
    public static string UserText(TrainingExample e) => e.Task switch
    {
        "caption" => JudgePrompts.CaptionInstruction,
        "verdict" => JudgePrompts.VerdictPrompt(e.Query ?? throw new InvalidDataException("a verdict example needs a query"),
            e.Caption ?? throw new InvalidDataException("a verdict example needs a caption"), withReasons: false),
        "answer" => e.Query ?? throw new InvalidDataException("an answer example needs a query"),
        _ => throw new InvalidDataException($"unknown training task '{e.Task}'"),
    };

    /// <summary>Whether the task is shown with its image (the self-judge decides text-only on families that can).</summary>
    public static bool HasImage(TrainingExample e) => e.Task != "verdict";
}
