using System.Text;
using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Processing.Images;

namespace SafeCoDe.Torch.Processing.Chat;

// Lives in the family folder; the namespace stays Processing.Chat so existing callers keep compiling.
/// <summary>
/// InstructBLIP: no template — the instruction as is (official), or the reference's <c>{text}ANSWER_BEGINS_HERE:</c>.
/// The processor puts the query-token placeholders before everything (before BOS): <see cref="ImageTokensGoFirst"/>.
/// </summary>
public sealed class InstructBlipFormat(PromptStyle style) : ChatFormat
{
    /// <inheritdoc/>
    public override string Family => ModelFamilies.InstructBlip;
    /// <summary>The reference code's suffix after the instruction (reference style only).</summary>
    public const string AnswerMarker = "ANSWER_BEGINS_HERE:";
    /// <summary>The query-token placeholder, one per Q-Former query.</summary>
    public const string ImageToken = "<image>";

    /// <summary>The image tokens are prepended to the encoded text (BOS included), not placed inside it.</summary>
    public static bool ImageTokensGoFirst => true;

    /// <summary>The user and system texts joined by newlines (assistant turns are dropped: InstructBLIP has no chat template), markers first.</summary>
    public override string Render(IReadOnlyList<ChatTurn> turns, bool addGenerationPrompt)
    {
        var text = string.Join("\n", turns.Where(t => t.Role != "assistant").Select(t => t.Text));
        int images = turns.Sum(t => t.Images);
        return Images(images) + text + (style == PromptStyle.Reference && addGenerationPrompt ? AnswerMarker : "");
    }

    /// <inheritdoc/>
    public override string ImageTokens(ImageLayout layout, int imageIndex) => Repeat(ImageToken, layout.NumImageTokens);
}
