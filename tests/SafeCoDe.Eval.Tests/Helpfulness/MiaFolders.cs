using System.Text;
using System.Text.Json;

namespace SafeCoDe.Eval.Tests.Helpfulness;

/// <summary>
/// Small MIA-Bench copies written here: Apple's layout (<c>instruction_benchmark_all.json</c>, a list of items whose
/// <c>image</c> is a URL, the images downloaded into <c>images/</c>) and VLMEvalKit's TSV under its legacy name
/// <c>Mia-Bench.tsv</c>. Instructions are made up, shaped like the published ones.
/// </summary>
internal static class MiaFolders
{
    private static object Item(string url, string instruction, string type, string[] components, int[] weights, string[] types) => new
    {
        image = url, instruction, type, num_of_component = components.Length, components, component_weight = weights, component_type = types,
    };

    /// <summary>
    /// Items 0 (two components), 1 (three, non-ASCII instruction), 2 (five); when broken 3 (its image was not
    /// downloaded), 4 (weights and components disagree in number), 5 (no instruction).
    /// </summary>
    public static (string Root, string[] Valid, Dictionary<string, string> Problems) WriteApple(string dir, bool broken = false)
    {
        var images = Path.Combine(dir, "images");
        Directory.CreateDirectory(images);
        File.WriteAllBytes(Path.Combine(images, "000000000139.jpg"), BenchmarkFolders.Jpeg(1));
        File.WriteAllBytes(Path.Combine(images, "000000397133.jpg"), BenchmarkFolders.Jpeg(2));
        var list = new List<object>
        {
            Item("http://images.cocodataset.org/val2017/000000000139.jpg", "Describe the activities of the two individuals in the image without mentioning the color of their clothing.", "basic",
                ["Describe the activities of the two individuals in the image", "without mentioning the color of their clothing"], [6, 4], ["describe", "mention"]),
            Item("http://images.cocodataset.org/val2017/000000397133.jpg", "Explain the activity taking place in the image using exactly two sentences, including one metaphor. " + BenchmarkFolders.NonAscii, "intermediate",
                ["Explain the activity taking place in the image", "using exactly two sentences", "including one metaphor"], [4, 3, 3], ["describe", "length_limit", "linguistics"]),
            Item("http://images.cocodataset.org/val2017/000000000139.jpg", "Five things.", "complex", ["a", "b", "c", "d", "e"], [2, 2, 2, 2, 2], ["describe", "mention", "grammar", "math", "textual"]),
        };
        var problems = new Dictionary<string, string>();
        if (broken)
        {
            list.Add(Item("http://images.cocodataset.org/val2017/000000999999.jpg", "Describe it.", "basic", ["Describe it"], [10], ["describe"]));
            problems["3"] = "download the image";
            list.Add(Item("http://images.cocodataset.org/val2017/000000000139.jpg", "Describe it.", "basic", ["Describe it", "briefly"], [10], ["describe", "length_limit"]));
            problems["4"] = "component_weight";
            list.Add(new { image = "http://images.cocodataset.org/val2017/000000000139.jpg", type = "basic", num_of_component = 1, components = new[] { "x" }, component_weight = new[] { 10 }, component_type = new[] { "describe" } });
            problems["5"] = "instruction";
        }
        File.WriteAllText(Path.Combine(dir, "instruction_benchmark_all.json"), JsonSerializer.Serialize(list, new JsonSerializerOptions { WriteIndented = true }), Encoding.UTF8);
        return (dir, ["0", "1", "2"], problems);
    }

    /// <summary>Mia-Bench.tsv: index 0 (two components), 1 (one); when broken 2 (components that are no list).</summary>
    public static (string File, string[] Valid, Dictionary<string, string> Problems) WriteTsv(string dir, bool broken = false)
    {
        string B(byte[] b) => Convert.ToBase64String(b);
        var rows = new List<string>
        {
            "index\timage\tquestion\ttype\tnum_of_component\tcomponents\tcomponent_weight\tcomponent_type",
            $"0\t{B(BenchmarkFolders.Jpeg(1))}\tDescribe the activities without mentioning colours.\tbasic\t2\t['Describe the activities', 'without mentioning colours']\t[6, 4]\t['describe', 'mention']",
            $"1\t{B(BenchmarkFolders.Png(2))}\tDescribe it.\tbasic\t1\t['Describe it']\t[10]\t['describe']",
        };
        var problems = new Dictionary<string, string>();
        if (broken) { rows.Add($"2\t{B(BenchmarkFolders.Png(3))}\tQ?\tbasic\t1\tDescribe it\t[10]\t['describe']"); problems["2"] = "components"; }
        var file = Path.Combine(dir, "Mia-Bench.tsv");
        File.WriteAllText(file, string.Join('\n', rows) + "\n");
        return (file, ["0", "1"], problems);
    }
}
