using System.Text;

namespace SafeCoDe.Eval.Benchmarks.Helpfulness;

/// <summary>
/// Reads a Python list literal of strings and numbers, as the helpfulness benchmarks store lists in text fields
/// (MMMU <c>options</c> <c>"['$6', '$7']"</c>, VLMEvalKit's TSV <c>choices</c>, <c>skills</c>, multi-image cells):
/// single- or double-quoted strings with backslash escapes, bare numbers, <c>None</c>.
/// </summary>
internal static class PythonLiteral
{
    /// <summary>The items of a list literal (numbers and None as their text; None as null), or null with why not.</summary>
    public static IReadOnlyList<string?>? List(string text, out string? problem)
    {
        problem = null;
        var s = text.Trim();
        if (s.Length < 2 || s[0] != '[' || s[^1] != ']') { problem = "is not a Python list literal ([...])"; return null; }
        var items = new List<string?>();
        int i = 1;
        while (true)
        {
            i = Skip(s, i);
            if (i >= s.Length - 1) break;
            string? item;
            if (s[i] is '\'' or '"') item = Quoted(s, ref i, out problem);
            else item = Bare(s, ref i, out problem);
            if (problem is not null) return null;
            items.Add(item);
            i = Skip(s, i);
            if (i < s.Length - 1 && s[i] != ',') { problem = $"has '{s[i]}' where a comma was expected (at {i})"; return null; }
            i++;
        }
        return items;
    }

    private static int Skip(string s, int i)
    {
        while (i < s.Length && char.IsWhiteSpace(s[i])) i++;
        return i;
    }

    private static string? Bare(string s, ref int i, out string? problem)
    {
        problem = null;
        int start = i;
        while (i < s.Length - 1 && s[i] != ',' && !char.IsWhiteSpace(s[i])) i++;
        var word = s[start..i];
        if (word == "None") return null;
        if (double.TryParse(word, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out _)) return word;
        problem = $"holds '{word}', which is neither a quoted string, a number nor None";
        return null;
    }

    private static string? Quoted(string s, ref int i, out string? problem)
    {
        problem = null;
        char quote = s[i++];
        var sb = new StringBuilder();
        while (i < s.Length)
        {
            char c = s[i++];
            if (c == quote) return sb.ToString();
            if (c != '\\' || i >= s.Length) { sb.Append(c); continue; }
            char e = s[i++];
            switch (e)
            {
                case 'n': sb.Append('\n'); break;
                case 't': sb.Append('\t'); break;
                case 'r': sb.Append('\r'); break;
                case '\\' or '\'' or '"': sb.Append(e); break;
                case 'x' when i + 2 <= s.Length: sb.Append((char)Convert.ToInt32(s.Substring(i, 2), 16)); i += 2; break;
                case 'u' when i + 4 <= s.Length: sb.Append((char)Convert.ToInt32(s.Substring(i, 4), 16)); i += 4; break;
                default: sb.Append('\\').Append(e); break; // Python keeps unknown escapes as written
            }
        }
        problem = "has a string that is not closed";
        return null;
    }
}
