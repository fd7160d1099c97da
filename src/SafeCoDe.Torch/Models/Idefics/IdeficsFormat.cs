using System.Text;
using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Processing.Images;

namespace SafeCoDe.Torch.Processing.Chat;

// Lives in the family folder; the namespace stays Processing.Chat so existing callers keep compiling.
/// <summary>
/// IDEFICS v1 instruct: <c>User:&lt;fake&gt;&lt;image&gt;&lt;fake&gt;{text}&lt;end_of_utterance&gt;\nAssistant:</c>. Reference style: the reference's
/// list prompt <c>["user:", image, text, "ASSISTANT:"]</c> without end-of-utterance tokens.
/// </summary>
public sealed class IdeficsFormat(PromptStyle style) : ChatFormat
{
    /// <inheritdoc/>
    public override string Family => ModelFamilies.Idefics;
    /// <summary>Special tokens of the IDEFICS prompt: the image boundary, the image placeholder and the end of a turn.</summary>
    public const string Fake = "<fake_token_around_image>", ImageToken = "<image>", EndOfUtterance = "<end_of_utterance>";

    /// <inheritdoc/>
    public override string Render(IReadOnlyList<ChatTurn> turns, bool addGenerationPrompt)
    {
        var sb = new StringBuilder();
        foreach (var t in turns)
        {
            if (style == PromptStyle.Reference)
            {
                sb.Append(t.Role == "assistant" ? "ASSISTANT:" : t.Role + ":");
                sb.Append(Images(t.Images)).Append(t.Text);
                continue;
            }
            var role = t.Role == "assistant" ? "Assistant" : t.Role == "system" ? "System" : "User";
            sb.Append(role).Append(':').Append(Images(t.Images)).Append(t.Text).Append(EndOfUtterance).Append('\n');
        }
        if (addGenerationPrompt) sb.Append(style == PromptStyle.Reference ? "ASSISTANT:" : "Assistant:");
        return sb.ToString();
    }

    /// <summary>Consecutive images share their surrounding fake tokens, as the IDEFICS processor writes them.</summary>
    public override string ImageTokens(ImageLayout layout, int imageIndex) => Fake + ImageToken + Fake;

    /// <inheritdoc/>
    public override string ExpandImages(string rendered, IReadOnlyList<ImageLayout> layouts) => CollapseFakes(base.ExpandImages(rendered, layouts));

    /// <summary>Collapses <c>&lt;fake&gt;&lt;fake&gt;</c> between consecutive images into one.</summary>
    public static string CollapseFakes(string s) => s.Replace(Fake + Fake, Fake);
}
