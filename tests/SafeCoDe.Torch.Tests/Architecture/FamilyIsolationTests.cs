using System.Text.RegularExpressions;
using NUnit.Framework;
using SafeCoDe.Torch.Checkpoints;

namespace SafeCoDe.Torch.Tests.Architecture;

/// <summary>
/// Outside the family folders (<c>Models/&lt;Family&gt;/</c>) and the registry (<c>Models/ModelFamilies.cs</c>), no
/// library code names a particular family: no <c>ModelFamilies.&lt;X&gt;</c>, no <c>is/case &lt;X&gt;Config</c>, no
/// <c>&lt;X&gt;Format</c> type test, no model_type comparison. Central code asks the family's descriptor instead.
/// </summary>
public class FamilyIsolationTests
{
    private static readonly string[] FamilyFolders = ["Models/Llava/", "Models/Qwen/", "Models/InstructBlip/", "Models/Idefics/", "Models/Idefics3/"];

    private static readonly (string What, Regex Pattern)[] Rules =
    [
        ("a family constant", new(@"ModelFamilies\.(Llava|LlavaNext|Qwen2VL|Qwen25VL|InstructBlip|Idefics|Idefics3)\b")),
        ("a family config type test", new(@"\b(is|case|as)\s+(Llava|QwenVL|InstructBlip|Idefics|Idefics3)Config\b")),
        ("a chat format type test", new(@"\b(is|case|as)\s+(Llava|Qwen|InstructBlip|Idefics|Idefics3)Format\b")),
        ("a model_type comparison", new(@"(ModelType|Family)\s*(==|!=)|(ModelType|Family)\.StartsWith\(")),
        ("a family name literal", new("\"(llava|llava_next|qwen2_vl|qwen2_5_vl|qwen|instructblip|idefics|idefics3)\"")),
    ];

    [Test]
    public void CentralCode_DoesNotBranchOnTheFamily()
    {
        var root = MethodLengthTests.SourceRoot;
        var found = new List<string>();
        int files = 0;
        foreach (var path in Directory.EnumerateFiles(root, "*.cs", SearchOption.AllDirectories))
        {
            var rel = Path.GetRelativePath(root, path).Replace('\\', '/');
            if (rel.StartsWith("bin/") || rel.StartsWith("obj/") || rel == "Models/ModelFamilies.cs" || FamilyFolders.Any(rel.StartsWith)) continue;
            files++;
            bool block = false;
            var lines = File.ReadAllLines(path);
            for (int i = 0; i < lines.Length; i++)
            {
                var raw = lines[i];
                var code = MethodLengthTests.Blank(raw, ref block);
                foreach (var (what, pattern) in Rules)
                    if (pattern.IsMatch(what == "a family name literal" ? StripComment(raw) : code))
                        found.Add($"{rel}:{i + 1} {what}: {raw.Trim()}");
            }
        }
        Assert.That(files, Is.GreaterThan(50));
        Assert.That(found, Is.Empty);
    }

    private static string StripComment(string line) => line.Contains("///") ? "" : line;

    [Test]
    public void TheRules_CatchWhatTheyAreFor()
    {
        string[] bad =
        [
            "if (family == ModelFamilies.Qwen25VL) x();", "if (config is LlavaConfig l) y();", "case IdeficsConfig i:",
            "if (Format is InstructBlipFormat)", "bool q = c.ModelType == \"qwen2_vl\";", "if (family.StartsWith(\"qwen\"))",
        ];
        foreach (var line in bad)
        {
            bool block = false;
            var code = MethodLengthTests.Blank(line, ref block);
            Assert.That(Rules.Any(r => r.Pattern.IsMatch(r.What == "a family name literal" ? line : code)), Is.True, line);
        }
        Assert.That(ModelFamilies.All, Has.Count.EqualTo(7));
    }
}
