using System.CommandLine;
using System.Text.RegularExpressions;
using NUnit.Framework;

namespace SafeCoDe.Torch.Tests.Cli;

/// <summary>The docs a newcomer reads: README's links resolve, and the commands and variables troubleshooting.md names exist.</summary>
public class DocsTests
{
    private static string Root => SafeCoDe.Torch.Tests.Serve.ServeTestServer.RepoRoot();

    /// <summary>Every relative link of README.md and of the docs it links, and every docs/*.md it names in text, is a file or folder of the repository.</summary>
    [Test]
    public void ReadmeLinksAndNamedDocs_Resolve()
    {
        var link = new Regex(@"\]\(([^)\s#]+)(#[^)]*)?\)");
        var named = new Regex(@"(?<![\w/])(docs/[\w./-]+\.md|CHANGELOG\.md)");
        var missing = new List<string>();
        var files = new[] { "README.md", "CHANGELOG.md", "docs/models.md", "docs/troubleshooting.md" };
        foreach (var file in files)
        {
            var path = Path.Combine(Root, file);
            Assert.That(File.Exists(path), Is.True, file);
            var text = File.ReadAllText(path);
            var dir = Path.GetDirectoryName(path)!;
            foreach (Match m in link.Matches(text))
            {
                var target = m.Groups[1].Value;
                if (target.Contains("://") || target.StartsWith("mailto:", StringComparison.Ordinal)) continue;
                var full = Path.GetFullPath(Path.Combine(dir, target));
                if (!File.Exists(full) && !Directory.Exists(full)) missing.Add($"{file}: ({target})");
            }
            foreach (Match m in named.Matches(text))
                if (!File.Exists(Path.Combine(Root, m.Groups[1].Value))) missing.Add($"{file}: {m.Groups[1].Value}");
        }
        Assert.That(missing, Is.Empty);
        var readme = File.ReadAllText(Path.Combine(Root, "README.md"));
        Assert.That(readme, Does.Contain("(docs/models.md)").And.Contain("(docs/troubleshooting.md)").And.Contain("(CHANGELOG.md)"));
    }

    /// <summary>
    /// Each <c>safecode …</c> command line in troubleshooting.md parses (its commands and flags exist), and each
    /// SAFECODE_* variable it names is one the tool reads (listed in <c>safecode --help</c> or read by the scorer).
    /// </summary>
    [Test]
    public void TroubleshootingCommandsAndVariables_Exist()
    {
        var text = File.ReadAllText(Path.Combine(Root, "docs", "troubleshooting.md"));
        var commands = text.Split('\n').Select(l => l.Trim()).Where(l => l.StartsWith("safecode ", StringComparison.Ordinal))
            .Select(l => Regex.Replace(l, @"\s+#.*$", "")).ToList();
        Assert.That(commands, Has.Count.GreaterThanOrEqualTo(3));
        foreach (var line in commands)
        {
            var args = Regex.Matches(line, "\"[^\"]*\"|\\S+").Select(m => m.Value.Trim('"')).Skip(1).ToArray();
            var parse = SafeCoDe.Cli.Cli.BuildRoot().Parse(args);
            Assert.That(parse.Errors.Select(e => e.Message), Is.Empty, line);
        }
        foreach (var flag in Regex.Matches(text, @"`(--[a-z][a-z0-9-]*)").Select(m => m.Groups[1].Value).Distinct())
        {
            var owners = AllCommands(SafeCoDe.Cli.Cli.BuildRoot()).Where(c => c.Options.Any(o => o.Name == flag || o.Aliases.Contains(flag)));
            Assert.That(owners, Is.Not.Empty, $"{flag} is no option of any command");
        }
        var sources = string.Join('\n', Directory.GetFiles(Path.Combine(Root, "src"), "*.cs", SearchOption.AllDirectories).Select(File.ReadAllText));
        foreach (var v in Regex.Matches(text, @"SAFECODE_[A-Z_]+[A-Z]").Select(m => m.Value).Distinct())
            Assert.That(sources, Does.Contain($"\"{v}\""), $"{v} is read nowhere");
    }

    private static IEnumerable<Command> AllCommands(Command c) => c.Subcommands.SelectMany(AllCommands).Prepend(c);
}
