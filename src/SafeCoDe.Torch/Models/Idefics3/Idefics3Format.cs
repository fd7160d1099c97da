using System.Text;
using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Processing.Images;

namespace SafeCoDe.Torch.Processing.Chat;

// Lives in the family folder; the namespace stays Processing.Chat so existing callers keep compiling.
/// <summary>
/// Idefics3 / SmolVLM: <c>&lt;|im_start|&gt;User:&lt;image&gt;{text}&lt;end_of_utterance&gt;\nAssistant:</c>, each image expanded to its
/// tiles (<c>&lt;fake_token_around_image&gt;&lt;row_r_col_c&gt;</c> + tokens per tile, a newline after each row) and the global image.
/// </summary>
public sealed class Idefics3Format : ChatFormat
{
    /// <inheritdoc/>
    public override string Family => ModelFamilies.Idefics3;
    /// <summary>Special tokens of the Idefics3 prompt: the image boundary, the per-patch placeholder and the global-image marker.</summary>
    public const string Fake = "<fake_token_around_image>", ImageToken = "<image>", Global = "<global-img>";

    /// <inheritdoc/>
    public override string Render(IReadOnlyList<ChatTurn> turns, bool addGenerationPrompt)
    {
        var sb = new StringBuilder("<|im_start|>");
        foreach (var t in turns)
        {
            var role = t.Role == "assistant" ? "Assistant" : t.Role == "system" ? "System" : "User";
            sb.Append(role).Append(':');
            if (t.Images == 0) sb.Append(' ');
            sb.Append(Images(t.Images)).Append(t.Text).Append("<end_of_utterance>\n");
        }
        if (addGenerationPrompt) sb.Append("Assistant:");
        return sb.ToString();
    }

    /// <inheritdoc/>
    public override string ImageTokens(ImageLayout l, int imageIndex)
    {
        int per = l.TokensPerTile > 0 ? l.TokensPerTile : l.NumImageTokens / Math.Max(1, l.Tiles);
        var sb = new StringBuilder();
        if (l.Rows == 0 || l.Cols == 0)
            return sb.Append(Fake).Append(Global).Append(Repeat(ImageToken, per)).Append(Fake).ToString();
        for (int r = 0; r < l.Rows; r++)
        {
            for (int c = 0; c < l.Cols; c++)
                sb.Append(Fake).Append($"<row_{r + 1}_col_{c + 1}>").Append(Repeat(ImageToken, per));
            sb.Append('\n');
        }
        sb.Append('\n').Append(Fake).Append(Global).Append(Repeat(ImageToken, per)).Append(Fake);
        return sb.ToString();
    }
}
