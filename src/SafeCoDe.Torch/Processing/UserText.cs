using System.Text;
using System.Text.RegularExpressions;
using SafeCoDe.Torch.Processing.Chat;

namespace SafeCoDe.Torch.Processing;

/// <summary>
/// Keeps user text (prompts, system prompts) apart from the chat template: the template is rendered with unguessable
/// markers in place of each turn's text, the markers are then replaced by the text and its character ranges recorded,
/// so the tokenizer can encode exactly those ranges as plain text (no special tokens matched inside them).
/// </summary>
public sealed class UserText
{
    /// <summary>
    /// Image placeholder strings a user may not write (images are passed separately): those of every registered family
    /// (<see cref="Models.IModelFamily.PlaceholderTokens"/>) and the chat formats' internal image marker.
    /// </summary>
    public static IReadOnlyList<string> Placeholders =>
        [.. Checkpoints.ModelFamilies.Registered.SelectMany(t => Checkpoints.ModelFamilies.Get(t).PlaceholderTokens).Append(ChatFormat.ImageMarker).Distinct()];

    private readonly IReadOnlyList<ChatTurn> _original;
    private readonly string _id;
    private readonly Regex _marker;

    /// <summary>The turns as given, with their text.</summary>
    public IReadOnlyList<ChatTurn> Original => _original;

    /// <summary>The turns with each text replaced by its marker (render these).</summary>
    public IReadOnlyList<ChatTurn> Turns { get; }

    private UserText(IReadOnlyList<ChatTurn> turns)
    {
        _original = turns;
        _id = Guid.NewGuid().ToString("N");
        _marker = new Regex("\uE001" + _id + "#([0-9]+)\uE001", RegexOptions.CultureInvariant);
        Turns = turns.Select((t, i) => t with { Text = "\uE001" + _id + "#" + i.ToString(System.Globalization.CultureInfo.InvariantCulture) + "\uE001" }).ToList();
    }

    /// <summary>Marks the text of every turn.</summary>
    public static UserText Mark(IReadOnlyList<ChatTurn> turns) => new(turns);

    /// <summary>Puts the texts back into a rendered prompt and returns the ranges they occupy.</summary>
    public (string Text, IReadOnlyList<Range> Spans) Resolve(string rendered)
    {
        var sb = new StringBuilder(rendered.Length);
        var spans = new List<Range>();
        int last = 0;
        foreach (Match m in _marker.Matches(rendered))
        {
            sb.Append(rendered, last, m.Index - last);
            var text = _original[int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)].Text;
            spans.Add(new Range(sb.Length, sb.Length + text.Length));
            sb.Append(text);
            last = m.Index + m.Length;
        }
        sb.Append(rendered, last, rendered.Length - last);
        return (sb.ToString(), spans);
    }

    /// <summary>Refuses user text that names an image placeholder of any family (<see cref="Placeholders"/>).</summary>
    /// <exception cref="PromptException">A turn contains a placeholder.</exception>
    public static void RefusePlaceholders(IReadOnlyList<ChatTurn> turns)
    {
        var placeholders = Placeholders; // gathered from the registered families once per call, not once per turn
        foreach (var t in turns)
            foreach (var p in placeholders)
                if (t.Text.Contains(p, StringComparison.Ordinal))
                    throw new PromptException($"the {(t.Role == "system" ? "system prompt" : "prompt")} contains the image placeholder {(p == ChatFormat.ImageMarker ? "marker U+E000" : "'" + p + "'")}; pass images as images, not as text");
    }
}

/// <summary>A prompt or system prompt that cannot be used as given (image placeholders, too long for the model).</summary>
public sealed class PromptException(string message) : ArgumentException(message);
