using System.Reflection;
using System.Text.RegularExpressions;
using NUnit.Framework;
using SafeCoDe.Torch.Decoding.Methods;
using SafeCoDe.Torch.Decoding.Rules;

namespace SafeCoDe.Torch.Tests.Architecture;

/// <summary>
/// Outside <c>Decoding/Methods/</c>, no code in src/ (the library, the evaluation harness, the command line and its
/// server) names a particular decoding method: none of a method's types (its descriptor, its options record, every
/// type of its own namespace or rules), and no method name as a string to compare or branch on. At most two files
/// under src/ mention <c>Vcd</c>: its method file and the registry. Central code asks <see cref="DecodingMethods"/>.
/// </summary>
public class MethodIsolationTests
{
    private static string Src => Path.GetFullPath(Path.Combine(MethodLengthTests.SourceRoot, ".."));

    /// <summary>Every type that belongs to one built-in method: descriptors, options records, their namespaces' types, their own rules.</summary>
    private static IReadOnlyList<string> MethodTypeNames()
    {
        var assembly = typeof(IDecodingMethod).Assembly;
        var methods = DecodingMethods.All.Where(m => m.GetType().Assembly == assembly).ToList();
        var names = new HashSet<string>();
        foreach (var m in methods)
        {
            names.Add(m.GetType().Name);
            names.Add(m.OptionsType.Name);
            var ns = m.GetType().Namespace!;
            if (ns != typeof(IDecodingMethod).Namespace)
                foreach (var t in assembly.GetTypes().Where(t => t.Namespace == ns && !t.Name.Contains('<'))) names.Add(t.Name);
        }
        // rules declared in the methods' folder belong to the method that uses them
        foreach (var t in assembly.GetTypes().Where(t => t.Namespace == typeof(IDecodingMethod).Namespace && typeof(LogitsRule).IsAssignableFrom(t)))
            names.Add(t.Name);
        return names.Order().ToArray();
    }

    /// <summary>
    /// A built-in method's name as a literal. "safecode" is also the product's name (the command, the request field,
    /// the cache folder), so for it only a comparison of a method or mode with it counts.
    /// </summary>
    private static IReadOnlyList<(string What, Regex Pattern)> NameRules() =>
        DecodingMethods.All.Take(3).Select(m => m.Name == "safecode"
            ? ($"a mode compared with \"{m.Name}\"", new Regex($"\\b([Mm]ethod|[Mm]ode)\\b\\s*(==|!=)\\s*\"{m.Name}\"|\"{m.Name}\"\\s*(==|!=)\\s*[\\w.]*\\b([Mm]ethod|[Mm]ode)\\b"))
            : ($"the name \"{m.Name}\"", new Regex($"\"{Regex.Escape(m.Name)}\""))).ToArray();

    private static IEnumerable<(string Rel, string[] Lines)> CentralFiles()
    {
        foreach (var path in Directory.EnumerateFiles(Src, "*.cs", SearchOption.AllDirectories))
        {
            var rel = Path.GetRelativePath(Src, path).Replace('\\', '/');
            if (rel.Contains("/bin/") || rel.Contains("/obj/") || rel.StartsWith("SafeCoDe.Torch/Decoding/Methods/")) continue;
            yield return (rel, File.ReadAllLines(path));
        }
    }

    [Test]
    public void CentralCode_NamesNoMethod()
    {
        var types = MethodTypeNames();
        Assert.That(types, Is.SupersetOf(new[] { "SafeCoDeMethod", "SafeCoDeOptions", "SafeCoDePlan", "VcdMethod", "VcdOptions", "VcdContrast", "VanillaOptions" }));
        var typeRule = new Regex($"\\b({string.Join('|', types)})\\b");
        var found = new List<string>();
        int files = 0;
        foreach (var (rel, lines) in CentralFiles())
        {
            files++;
            bool block = false;
            for (int i = 0; i < lines.Length; i++)
            {
                var code = MethodLengthTests.Blank(lines[i], ref block);
                if (typeRule.IsMatch(code)) found.Add($"{rel}:{i + 1} a method's type: {lines[i].Trim()}");
                var withStrings = lines[i].TrimStart().StartsWith("///") || lines[i].TrimStart().StartsWith("//") ? "" : lines[i];
                foreach (var (what, pattern) in NameRules())
                    if (pattern.IsMatch(withStrings)) found.Add($"{rel}:{i + 1} {what}: {lines[i].Trim()}");
            }
        }
        Assert.That(files, Is.GreaterThan(100), "the library, the harness and the command line were scanned");
        Assert.That(found, Is.Empty);
    }

    [Test]
    public void AtMostTwoFiles_MentionVcd()
    {
        var files = Directory.EnumerateFiles(Src, "*.cs", SearchOption.AllDirectories)
            .Where(p => !p.Contains("/bin/") && !p.Contains("/obj/") && File.ReadAllText(p).Contains("Vcd", StringComparison.Ordinal))
            .Select(p => Path.GetRelativePath(Src, p).Replace('\\', '/')).Order().ToArray();
        Assert.That(files, Is.EqualTo(new[] { "SafeCoDe.Torch/Decoding/Methods/DecodingMethods.cs", "SafeCoDe.Torch/Decoding/Methods/Vcd.cs" }));
    }

    [Test]
    public void TheRules_CatchWhatTheyAreFor()
    {
        var typeRule = new Regex($"\\b({string.Join('|', MethodTypeNames())})\\b");
        foreach (var line in new[] { "var o = SafeCoDeOptions.For(SafeCoDePreset.Paper);", "if (o is VcdOptions v) x();", "new VcdContrast(1, 0.1)" })
        {
            bool block = false;
            Assert.That(typeRule.IsMatch(MethodLengthTests.Blank(line, ref block)), Is.True, line);
        }
        foreach (var line in new[] { "if (mode == \"vanilla\") x();", "return o.Method == \"safecode\";", "case \"vcd\": y();", "bool s = \"safecode\" != request.Mode;" })
            Assert.That(NameRules().Any(r => r.Pattern.IsMatch(line)), Is.True, line);
        Assert.That(NameRules().Any(r => r.Pattern.IsMatch("var name = \"safecode\";")), Is.False, "the product's name alone is not a method's");
        Assert.That(NameRules().Any(r => r.Pattern.IsMatch("case \"safecode\": ext = Extension(v);")), Is.False, "nor the request's safecode field");
    }
}
