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

    /// <summary>Renders the conversation with <see cref="ImageMarker"/> for each image.</summary>
    public abstract string Render(IReadOnlyList<ChatTurn> turns, bool addGenerationPrompt);

    /// <summary>The tokens (as text) that replace one image's marker.</summary>
    public abstract string ImageTokens(ImageLayout layout, int imageIndex);

    /// <summary>Replaces the markers in order with each image's tokens; the counts must match.</summary>
    public string ExpandImages(string rendered, IReadOnlyList<ImageLayout> layouts)
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
    public static ChatFormat For(string family, PromptStyle style = PromptStyle.Official) => family switch
    {
        ModelFamilies.Llava or ModelFamilies.LlavaNext => new LlavaFormat(family, style),
        ModelFamilies.Qwen2VL or ModelFamilies.Qwen25VL => new QwenFormat(family, style),
        ModelFamilies.InstructBlip => new InstructBlipFormat(style),
        ModelFamilies.Idefics => new IdeficsFormat(style),
        ModelFamilies.Idefics3 => new Idefics3Format(),
        _ => throw new NotSupportedException($"no chat format for model_type '{family}'"),
    };
}

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

/// <summary>
/// Qwen2-VL / Qwen2.5-VL ChatML with the default system prompt and <c>&lt;|vision_start|&gt;&lt;|image_pad|&gt;…&lt;|vision_end|&gt;</c>.
/// Reference style appends the reference code's extra <c>"\nassistant:"</c> after the generation prompt.
/// </summary>
public sealed class QwenFormat(string family, PromptStyle style) : ChatFormat
{
    /// <inheritdoc/>
    public override string Family => family;
    /// <summary>System prompt inserted when the conversation does not start with a system turn (as Qwen's template does).</summary>
    public const string DefaultSystem = "You are a helpful assistant.";

    /// <inheritdoc/>
    public override string Render(IReadOnlyList<ChatTurn> turns, bool addGenerationPrompt)
    {
        var sb = new StringBuilder();
        if (turns.Count == 0 || turns[0].Role != "system") sb.Append("<|im_start|>system\n").Append(DefaultSystem).Append("<|im_end|>\n");
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

    /// <summary>Collapses <c>&lt;fake&gt;&lt;fake&gt;</c> between consecutive images into one.</summary>
    public static string CollapseFakes(string s) => s.Replace(Fake + Fake, Fake);
}

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
