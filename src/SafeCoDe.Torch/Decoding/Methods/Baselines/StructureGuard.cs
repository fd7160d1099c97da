using System.Text.RegularExpressions;

namespace SafeCoDe.Torch.Decoding.Methods.Baselines;

/// <summary>
/// What a prompt-rewriting defense may change of a question and what it keeps (<c>protect-structure</c>, on by
/// default): image placeholders (<c>&lt;image 1&gt;</c>, …) and a multiple-choice option block (two or more lines such
/// as <c>A. …</c>, <c>(B) …</c>, with an <c>Options:</c> line above and anything below) stay as they are; only the
/// question's stem is rewritten. With protection off the whole question is rewritten (what a naive port does, which
/// breaks VLMEvalKit's <c>&lt;image k&gt;</c> split and option parsing).
/// </summary>
public sealed partial record StructureGuard(string Stem, IReadOnlyList<string> Placeholders, string Block)
{
    [GeneratedRegex(@"<image\s*\d+>")]
    private static partial Regex Placeholder();

    [GeneratedRegex(@"^\s*\(?[A-Z][.)]\s")]
    private static partial Regex OptionLine();

    /// <summary>The question as one rewritable stem (protection off).</summary>
    public static StructureGuard Whole(string question) => new(question, [], "");

    /// <summary>The question split into its stem (placeholders taken out, in order) and its protected option block.</summary>
    public static StructureGuard Split(string question)
    {
        var lines = question.Split('\n');
        int start = -1;
        for (int i = 0; i + 1 < lines.Length && start < 0; i++)
            if (OptionLine().IsMatch(lines[i]) && OptionLine().IsMatch(lines[i + 1])) start = i > 0 && lines[i - 1].Trim().Equals("Options:", StringComparison.OrdinalIgnoreCase) ? i - 1 : i;
        string stem = start < 0 ? question : string.Join('\n', lines[..start]);
        string block = start < 0 ? "" : "\n" + string.Join('\n', lines[start..]);
        var placeholders = Placeholder().Matches(stem).Select(m => m.Value).ToList();
        var bare = Regex.Replace(Placeholder().Replace(stem, ""), " {2,}", " ").Trim();
        return new(bare, placeholders, block);
    }

    /// <summary>True when something was protected.</summary>
    public bool Protected => Placeholders.Count > 0 || Block.Length > 0;

    /// <summary>The rewritten stem with the placeholders put back in front of it and the option block after it.</summary>
    public string Join(string rewrittenStem) =>
        (Placeholders.Count == 0 ? rewrittenStem : string.Join(' ', Placeholders) + " " + rewrittenStem) + Block;

    /// <summary>Rewrites the stem's text around the placeholders in place (a rewrite that works piece by piece, such as retokenization).</summary>
    public static string RewriteAround(string question, Func<string, string> rewrite)
    {
        var g = Split(question);
        var stemWithPlaceholders = question[..(question.Length - g.Block.Length)];
        var pieces = Placeholder().Split(stemWithPlaceholders);
        var marks = Placeholder().Matches(stemWithPlaceholders).Select(m => m.Value).ToArray();
        var sb = new System.Text.StringBuilder();
        for (int i = 0; i < pieces.Length; i++)
        {
            var piece = pieces[i];
            var core = piece.Trim();
            if (core.Length == 0) sb.Append(piece);
            else sb.Append(piece[..(piece.Length - piece.TrimStart().Length)]).Append(rewrite(core)).Append(piece[piece.TrimEnd().Length..]);
            if (i < marks.Length) sb.Append(marks[i]);
        }
        return sb + g.Block;
    }
}
