using System.Globalization;
using System.Text;

namespace SafeCoDe.Torch.Safety;

/// <summary>
/// Makes text from an endpoint or a model safe to print on a terminal: escape sequences (ESC, CSI), other C0/C1
/// control characters, bidirectional overrides and other invisible format characters are shown as <c>\u001b</c>-style
/// escapes instead of being interpreted, so a reply cannot clear the screen, move the cursor or fake output.
/// </summary>
public static class TerminalText
{
    /// <summary>The text with control and format characters escaped; newlines and tabs kept unless <paramref name="singleLine"/>; cut to <paramref name="maxChars"/> (with "…").</summary>
    public static string Sanitize(string? text, int maxChars = int.MaxValue, bool singleLine = false)
    {
        if (string.IsNullOrEmpty(text)) return "";
        var sb = new StringBuilder(Math.Min(text.Length, maxChars) + 8);
        foreach (var ch in text)
        {
            if (sb.Length >= maxChars) { sb.Append('…'); break; }
            if ((ch == '\n' || ch == '\t') && !singleLine) sb.Append(ch);
            else if (ch == '\n') sb.Append("\\n");
            else if (char.IsControl(ch) || ch is '\u2028' or '\u2029' || char.GetUnicodeCategory(ch) == UnicodeCategory.Format)
                sb.Append("\\u").Append(((int)ch).ToString("x4", CultureInfo.InvariantCulture));
            else sb.Append(ch);
        }
        return sb.ToString();
    }

}
