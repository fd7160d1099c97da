using System.Text;
using System.Text.RegularExpressions;
using NUnit.Framework;

namespace SafeCoDe.Torch.Tests.Architecture;

/// <summary>
/// No method, constructor or local function in src/SafeCoDe.Torch runs over 60 lines (signature to closing brace),
/// except the few named in <c>src/SafeCoDe.Torch/long-methods.allow</c> with their reasons. A line counter, not a
/// parser: strings, characters and comments are blanked, then each member signature's body is measured by its braces
/// (or, for <c>=&gt;</c> bodies, up to the terminating semicolon).
/// </summary>
public class MethodLengthTests
{
    public const int MaxLines = 60;
    public const int MaxAllowed = 5;

    private static readonly Regex Signature = new(
        @"^\s*(?:\[[^\]]*\]\s*)*(?:(?:public|private|protected|internal|static|override|virtual|abstract|sealed|async|unsafe|extern|new|partial|readonly)\s+)*" +
        @"(?:[\w\.<>\[\],\?\(\) ]+\s+)?(?<name>~?\w+)\s*(?:<[^>]*>)?\s*\(", RegexOptions.Compiled);

    private static readonly HashSet<string> Keywords =
        ["if", "for", "foreach", "while", "switch", "catch", "using", "lock", "return", "else", "new", "await", "throw", "when", "fixed", "yield",
         "nameof", "typeof", "sizeof", "default", "var", "base", "this", "checked", "unchecked"];

    public sealed record Member(string File, string Name, int Line, int Lines);

    /// <summary>A line with string and character literals emptied and // comments removed (block comments handled by the caller).</summary>
    public static string Blank(string line, ref bool inBlockComment)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < line.Length; i++)
        {
            if (inBlockComment)
            {
                if (line[i] == '*' && i + 1 < line.Length && line[i + 1] == '/') { inBlockComment = false; i++; }
                continue;
            }
            char c = line[i];
            if (c == '/' && i + 1 < line.Length && line[i + 1] == '/') break;
            if (c == '/' && i + 1 < line.Length && line[i + 1] == '*') { inBlockComment = true; i++; continue; }
            if (c == '"')
            {
                int j = i + 1;
                while (j < line.Length && line[j] != '"') j += line[j] == '\\' ? 2 : 1;
                sb.Append("\"\"");
                i = j;
                continue;
            }
            if (c == '\'')
            {
                // a character literal: 'x' or an escape such as '\'' or '\u0041'
                int close = i + 1 < line.Length && line[i + 1] == '\\' ? line.IndexOf('\'', i + 3) : i + 2 < line.Length && line[i + 2] == '\'' ? i + 2 : -1;
                sb.Append("' '");
                i = close < 0 ? i : close;
                continue;
            }
            sb.Append(c);
        }
        return sb.ToString();
    }

    /// <summary>Every member with a body in <paramref name="source"/>, with its length in lines.</summary>
    public static List<Member> Measure(string file, string[] source)
    {
        bool block = false;
        var lines = source.Select(l => Blank(l, ref block)).ToArray();
        var members = new List<Member>();
        for (int i = 0; i < lines.Length; i++)
        {
            var m = Signature.Match(lines[i]);
            if (!m.Success || Keywords.Contains(m.Groups["name"].Value)) continue;
            var before = lines[i][..m.Groups["name"].Index];
            if (Regex.IsMatch(lines[i], @"\b(class|record|struct|interface|delegate)\b") || before.Contains('(') || before.Contains('=')) continue;
            if (Body(lines, i, m.Index + m.Length - 1) is not { } end) continue;
            members.Add(new Member(file, m.Groups["name"].Value, i + 1, end - i + 1));
        }
        return members;
    }

    /// <summary>The last line of the member whose parameter list opens at (<paramref name="row"/>, <paramref name="col"/>); null for a declaration without a body.</summary>
    private static int? Body(string[] lines, int row, int col)
    {
        int depth = 0;
        for (int r = row; r < lines.Length; r++)
            for (int c = r == row ? col : 0; c < lines[r].Length; c++)
            {
                char ch = lines[r][c];
                if (ch == '(') depth++;
                else if (ch == ')') depth--;
                else if (depth == 0 && ch == ';') return null;
                else if (depth == 0 && ch == '{') return Close(lines, r, c, '{', '}', stopAtSemicolon: false);
                else if (depth == 0 && ch == '=' && c + 1 < lines[r].Length && lines[r][c + 1] == '>') return Close(lines, r, c + 2, '(', ')', stopAtSemicolon: true);
            }
        return null;
    }

    private static int? Close(string[] lines, int row, int col, char open, char close, bool stopAtSemicolon)
    {
        int depth = 0;
        for (int r = row; r < lines.Length; r++)
            for (int c = r == row ? col : 0; c < lines[r].Length; c++)
            {
                char ch = lines[r][c];
                if (ch is '(' or '{' or '[') depth++;
                else if (ch is ')' or '}' or ']')
                {
                    depth--;
                    if (!stopAtSemicolon && depth == 0) return r;
                }
                else if (stopAtSemicolon && depth == 0 && ch == ';') return r;
            }
        return null;
    }

    internal static string SourceRoot
    {
        get
        {
            var d = new DirectoryInfo(TestPaths.Root);
            while (d is not null && !File.Exists(Path.Combine(d.FullName, "SafeCoDe.Torch.sln"))) d = d.Parent;
            Assert.That(d, Is.Not.Null, "the repository root (SafeCoDe.Torch.sln) above the test binaries");
            return Path.Combine(d!.FullName, "src", "SafeCoDe.Torch");
        }
    }

    private static IEnumerable<(string File, string Name, string Reason)> AllowList() =>
        File.ReadAllLines(Path.Combine(SourceRoot, "long-methods.allow"))
            .Where(l => l.Trim().Length > 0 && !l.TrimStart().StartsWith('#'))
            .Select(l =>
            {
                var (where, reason) = (l.Split('|')[0], l.Contains('|') ? l[(l.IndexOf('|') + 1)..].Trim() : "");
                var parts = where.Split(':');
                return (parts[0].Trim(), parts.Length > 1 ? parts[1].Trim() : "", reason);
            });

    private static List<Member> All() =>
        Directory.EnumerateFiles(SourceRoot, "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}") && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}"))
            .SelectMany(f => Measure(Path.GetRelativePath(SourceRoot, f).Replace('\\', '/'), File.ReadAllLines(f)))
            .ToList();

    [Test]
    public void NoMethodIsLongerThan60Lines_OutsideTheAllowList()
    {
        var allowed = AllowList().ToList();
        Assert.That(allowed, Has.Count.LessThanOrEqualTo(MaxAllowed));
        Assert.That(allowed.Select(a => a.Reason), Has.All.Length.GreaterThan(20), "each entry says why");
        var members = All();
        Assert.That(members, Has.Count.GreaterThan(500), "the counter finds the members of the library");
        var tooLong = members.Where(m => m.Lines > MaxLines && !allowed.Any(a => a.File == m.File && a.Name == m.Name))
            .Select(m => $"{m.File}:{m.Line} {m.Name} ({m.Lines} lines)").ToList();
        Assert.That(tooLong, Is.Empty);
        foreach (var a in allowed)
            Assert.That(members.Any(m => m.File == a.File && m.Name == a.Name && m.Lines > MaxLines), Is.True,
                $"allow-list entry {a.File}:{a.Name} no longer needed: remove it");
    }

    [Test]
    public void TheCounter_MeasuresBracesArrowsStringsAndSkipsDeclarations()
    {
        string[] src =
        [
            "class A",                                   // 1
            "{",                                         // 2
            "    public int F(int x)",                   // 3
            "    {",                                     // 4
            "        var s = \"}}}\"; // }",             // 5
            "        char c = '{';",                     // 6
            "        if (x > 0) { return 1; }",          // 7
            "        return 2;",                         // 8
            "    }",                                     // 9
            "    private static string G(",              // 10
            "        int a) =>",                         // 11
            "        a.ToString(",                       // 12
            "            );",                            // 13
            "    public abstract void H(int a);",        // 14
            "    /* void Hidden() { } */",               // 15
            "}",
        ];
        var m = Measure("a.cs", src);
        Assert.That(m.Select(x => (x.Name, x.Line, x.Lines)), Is.EqualTo(new[] { ("F", 3, 7), ("G", 10, 4) }));
    }
}
