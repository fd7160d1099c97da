using System.Text.RegularExpressions;
using NUnit.Framework;
using SafeCoDe.Eval.Benchmarks;
using SafeCoDe.Eval.Scoring;

namespace SafeCoDe.Eval.Tests.Architecture;

/// <summary>
/// Central evaluation code — the runner and job, scoring, metrics, reports, the run store, and the <c>eval</c>
/// commands — names no benchmark: no benchmark's name as a string to compare or branch on, none of a benchmark's
/// types (its descriptor, its reader, the safety rubric kinds), no benchmark's display name in code. A benchmark lives
/// in <c>SafeCoDe.Eval/Benchmarks/</c>; the six safety benchmarks' rubric texts and reply parsing stay in
/// <c>Scoring/JudgeTexts.cs</c>, where their public API has always been. Central code asks <see cref="EvalBenchmarks"/>.
/// </summary>
public class BenchmarkIsolationTests
{
    /// <summary>The repository's src/ folder (the tests run from a bin folder under the repository).</summary>
    private static string Src
    {
        get
        {
            var d = new DirectoryInfo(AppContext.BaseDirectory);
            while (d is not null && !File.Exists(Path.Combine(d.FullName, "SafeCoDe.Torch.sln"))) d = d.Parent;
            Assert.That(d, Is.Not.Null, "the repository root above the test binaries");
            return Path.Combine(d!.FullName, "src");
        }
    }

    private static readonly string[] OwnFiles = ["SafeCoDe.Eval/Scoring/JudgeTexts.cs"];

    /// <summary>Files of the harness and the eval commands, outside the benchmarks' own folder; SafeScenes (a world that writes benchmark layouts) is not central.</summary>
    private static IEnumerable<(string Rel, string[] Lines)> CentralFiles()
    {
        foreach (var path in Directory.EnumerateFiles(Src, "*.cs", SearchOption.AllDirectories))
        {
            var rel = Path.GetRelativePath(Src, path).Replace('\\', '/');
            if (rel.Contains("/bin/") || rel.Contains("/obj/")) continue;
            bool central = (rel.StartsWith("SafeCoDe.Eval/") && !rel.StartsWith("SafeCoDe.Eval/Benchmarks/") && !rel.StartsWith("SafeCoDe.Eval/SafeScenes/"))
                           || (rel.StartsWith("SafeCoDe.Cli/Eval") && rel.EndsWith(".cs"));
            if (central && !OwnFiles.Contains(rel)) yield return (rel, File.ReadAllLines(path));
        }
    }

    /// <summary>The built-in benchmarks (those of the library's assembly).</summary>
    private static IReadOnlyList<IBenchmark> BuiltIn() =>
        EvalBenchmarks.All.Where(b => b.GetType().Assembly == typeof(IBenchmark).Assembly).ToList();

    /// <summary>Every type that belongs to one benchmark: descriptors, readers, the safety rubric kinds (as <c>JudgeRubric.X</c>).</summary>
    private static Regex TypeRule()
    {
        var names = BuiltIn().SelectMany(b => new[] { b.GetType().Name, b.Reader.GetType().Name }).Distinct().ToList();
        var kinds = Enum.GetNames<JudgeRubric>().Select(k => "JudgeRubric\\." + k);
        return new Regex($"\\b({string.Join('|', names.Select(Regex.Escape).Concat(kinds))})\\b");
    }

    private static IReadOnlyList<(string What, Regex Pattern)> NameRules() =>
        BuiltIn().Select(b => ($"the name \"{b.Name}\"", new Regex($"\"{Regex.Escape(b.Name)}\"", RegexOptions.IgnoreCase)))
            .Append(("a benchmark's display name", new Regex("\\b(MSSBench|MOSSBench|MM-SafetyBench|FigStep|HADES|MSTS|MMMU|MathVista|MM-Vet|MIA-Bench)\\b")))
            .ToArray();

    private static bool IsComment(string line) => line.TrimStart().StartsWith("//");

    /// <summary>A help example (a command line the user may type) necessarily names a benchmark; it is text, not a branch.</summary>
    private static bool IsExample(string line) => line.TrimStart().StartsWith("\"safecode ", StringComparison.Ordinal);

    [Test]
    public void CentralCode_NamesNoBenchmark()
    {
        var types = TypeRule();
        var found = new List<string>();
        int files = 0;
        foreach (var (rel, lines) in CentralFiles())
        {
            files++;
            for (int i = 0; i < lines.Length; i++)
            {
                if (IsComment(lines[i]) || IsExample(lines[i])) continue;
                var line = lines[i];
                if (types.IsMatch(line)) found.Add($"{rel}:{i + 1} a benchmark's type: {line.Trim()}");
                foreach (var (what, pattern) in NameRules())
                    if (pattern.IsMatch(line)) found.Add($"{rel}:{i + 1} {what}: {line.Trim()}");
            }
        }
        Assert.That(files, Is.GreaterThan(20), "the harness and the eval commands were scanned");
        Assert.That(found, Is.Empty);
    }

    [Test]
    public void EachBenchmarkName_IsWrittenInOneFileOfItsOwn()
    {
        var folder = Path.Combine(Src, "SafeCoDe.Eval", "Benchmarks");
        var texts = Directory.EnumerateFiles(folder, "*.cs", SearchOption.AllDirectories)
            .ToDictionary(p => Path.GetRelativePath(folder, p).Replace('\\', '/'), p => string.Join("\n", File.ReadLines(p).Where(l => !IsComment(l))));
        Assert.That(BuiltIn().Count, Is.GreaterThanOrEqualTo(7));
        foreach (var b in BuiltIn())
        {
            var holders = texts.Where(kv => kv.Value.Contains($"\"{b.Name}\"", StringComparison.Ordinal)).Select(kv => kv.Key).ToList();
            Assert.That(holders, Has.Count.EqualTo(1), $"{b.Name}: {string.Join(", ", holders)}");
            Assert.That(texts[holders[0]], Does.Contain($"class {b.Reader.GetType().Name}"), $"{b.Name} is written in its reader's file");
        }
    }

    [Test]
    public void TheRules_CatchWhatTheyAreFor()
    {
        var types = TypeRule();
        foreach (var line in new[] { "if (r == JudgeRubric.MossRefusal) x();", "var m = new MssBenchReader();", "if (b is MmSafetyBench) y();" })
            Assert.That(types.IsMatch(line), Is.True, line);
        foreach (var line in new[] { "case \"mssbench\": Mss(); break;", "if (benchmark == \"hades\") y();", "Description = \"MSTS languages\"" })
            Assert.That(NameRules().Any(r => r.Pattern.IsMatch(line)), Is.True, line);
        Assert.That(NameRules().Any(r => r.Pattern.IsMatch("var dir = \"runs/hades-5\";")), Is.False, "a path that holds a name is no comparison");
        Assert.That(IsComment("    /// <summary>MSSBench: per split</summary>"), Is.True);
        Assert.That(IsExample("            \"safecode eval run -b hades -d ~/data/HADES\","), Is.True);
        Assert.That(IsExample("        Description = \"safecode on MSTS\","), Is.False);
    }
}
