using System.Text;
using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Processing.Images;

namespace SafeCoDe.Torch.Processing.Chat;

// Lives in the family folder; the namespace stays Processing.Chat so existing callers keep compiling.
/// <summary>
/// llava-hf LLaVA-1.5 / LLaVA-NeXT (Vicuna): <c>USER: &lt;image&gt;\n{text} ASSISTANT:</c> — role upper-cased, images
/// first, each user text followed by a space. The reference code passes text before image in the content list, which
/// this template renders the same way.
/// </summary>
public sealed class LlavaFormat(string family, PromptStyle style) : ChatFormat
{
    /// <inheritdoc/>
    public override string Family => family;
    /// <summary>The style asked for; the official and reference prompts of LLaVA render the same.</summary>
    public PromptStyle Style => style;
    /// <summary>The placeholder token, repeated once per image feature.</summary>
    public const string ImageToken = "<image>";

    /// <inheritdoc/>
    public override string Render(IReadOnlyList<ChatTurn> turns, bool addGenerationPrompt)
    {
        var sb = new StringBuilder();
        foreach (var t in turns)
        {
            // the llava-hf template (1.5 and 1.6-vicuna): no role prefix for system, images first, every text + ' '
            if (t.Role != "system") sb.Append(t.Role.ToUpperInvariant()).Append(": ");
            for (int i = 0; i < t.Images; i++) sb.Append(ImageMarker).Append('\n');
            sb.Append(t.Text).Append(' ');
        }
        if (addGenerationPrompt) sb.Append("ASSISTANT:");
        return sb.ToString();
    }

    /// <inheritdoc/>
    public override string ImageTokens(ImageLayout layout, int imageIndex) => Repeat(ImageToken, layout.NumImageTokens);
}
