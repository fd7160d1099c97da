using System.Text;
using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Processing.Images;

namespace SafeCoDe.Torch.Processing.Chat;

/// <summary>One turn of a conversation: a role, its text, and how many images it carries (placed before the text, as the official templates do).</summary>
public sealed record ChatTurn(string Role, string Text, int Images = 0)
{
    /// <summary>A user turn with <paramref name="images"/> image placeholders before its text.</summary>
    public static ChatTurn User(string text, int images = 0) => new("user", text, images);
    /// <summary>An assistant turn (text only).</summary>
    public static ChatTurn Assistant(string text) => new("assistant", text);
    /// <summary>A system turn (text only).</summary>
    public static ChatTurn System(string text) => new("system", text);
}

/// <summary>Which prompt layout to build.</summary>
public enum PromptStyle
{
    /// <summary>The family's official chat template (what HF's apply_chat_template renders).</summary>
    Official,
    /// <summary>The SafeCoDe reference code's prompt for that family (quirks included; see docs/method.md).</summary>
    Reference,
}

/// <summary>
/// Prompt text per family, with one placeholder per image that <see cref="ExpandImages"/> turns into the exact
/// image-token sequence the model consumes (counts from the image processor's layouts, never from image_seq_length).
/// </summary>
public abstract class ChatFormat
{
    /// <summary>The marker left in rendered prompts where an image goes.</summary>
    public const string ImageMarker = "\uE000IMAGE\uE000";

    /// <summary>The <c>model_type</c> this format renders for.</summary>
    public abstract string Family { get; }

    /// <summary>The system text the template renders when the conversation has no system turn (null: none).</summary>
    public virtual string? DefaultSystem => null;

    /// <summary>Renders the conversation with <see cref="ImageMarker"/> for each image.</summary>
    public abstract string Render(IReadOnlyList<ChatTurn> turns, bool addGenerationPrompt);

    /// <summary>The tokens (as text) that replace one image's marker.</summary>
    public abstract string ImageTokens(ImageLayout layout, int imageIndex);

    /// <summary>Replaces the markers in order with each image's tokens; the counts must match.</summary>
    public virtual string ExpandImages(string rendered, IReadOnlyList<ImageLayout> layouts)
    {
        var parts = rendered.Split(ImageMarker);
        if (parts.Length - 1 != layouts.Count)
            throw new ArgumentException($"the prompt has {parts.Length - 1} image placeholder(s) but {layouts.Count} image(s) were given");
        var sb = new StringBuilder(parts[0]);
        for (int i = 0; i < layouts.Count; i++)
        {
            sb.Append(ImageTokens(layouts[i], i));
            sb.Append(parts[i + 1]);
        }
        return sb.ToString();
    }

    /// <summary><paramref name="token"/> repeated <paramref name="n"/> times ("" for n ≤ 0).</summary>
    protected static string Repeat(string token, int n) => n <= 0 ? "" : new StringBuilder(token.Length * n).Insert(0, token, n).ToString();

    /// <summary><paramref name="n"/> image markers.</summary>
    protected static string Images(int n) => Repeat(ImageMarker, n);

    /// <summary>The chat format of a family in a style.</summary>
    public static ChatFormat For(string family, PromptStyle style = PromptStyle.Official) =>
        ModelFamilies.TryGet(family)?.ChatFormat(style) ?? throw new NotSupportedException($"no chat format for model_type '{family}'");
}
