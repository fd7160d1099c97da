using System.Text;
using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Processing.Images;

namespace SafeCoDe.Torch.Processing.Chat;

// Lives in the family folder; the namespace stays Processing.Chat so existing callers keep compiling.
/// <summary>
/// Qwen2-VL / Qwen2.5-VL ChatML with the default system prompt and <c>&lt;|vision_start|&gt;&lt;|image_pad|&gt;…&lt;|vision_end|&gt;</c>.
/// Reference style appends the reference code's extra <c>"\nassistant:"</c> after the generation prompt.
/// </summary>
public sealed class QwenFormat(string family, PromptStyle style) : ChatFormat
{
    /// <inheritdoc/>
    public override string Family => family;
    /// <summary>System prompt inserted when the conversation does not start with a system turn (as Qwen's template does).</summary>
    public const string DefaultSystemText = "You are a helpful assistant.";

    /// <inheritdoc/>
    public override string? DefaultSystem => DefaultSystemText;

    /// <inheritdoc/>
    public override string Render(IReadOnlyList<ChatTurn> turns, bool addGenerationPrompt)
    {
        var sb = new StringBuilder();
        if (turns.Count == 0 || turns[0].Role != "system") sb.Append("<|im_start|>system\n").Append(DefaultSystemText).Append("<|im_end|>\n");
        foreach (var t in turns)
        {
            sb.Append("<|im_start|>").Append(t.Role).Append('\n');
            for (int i = 0; i < t.Images; i++) sb.Append("<|vision_start|>").Append(ImageMarker).Append("<|vision_end|>");
            sb.Append(t.Text).Append("<|im_end|>\n");
        }
        if (addGenerationPrompt)
        {
            sb.Append("<|im_start|>assistant\n");
            if (style == PromptStyle.Reference) sb.Append("\nassistant:");
        }
        return sb.ToString();
    }

    /// <summary><c>&lt;|image_pad|&gt;</c> once per merged patch; the vision start/end tokens come from <see cref="Render"/>.</summary>
    public override string ImageTokens(ImageLayout layout, int imageIndex) => Repeat("<|image_pad|>", layout.NumImageTokens);
}
