using System.Text;
using System.Text.Json;

namespace SafeCoDe.Eval.Tests.Helpfulness;

/// <summary>
/// Small MM-Vet copies written here: the release layout (<c>mm-vet/mm-vet.json</c> keyed <c>v1_0</c>… and
/// <c>mm-vet/images/</c>) and VLMEvalKit's <c>MMVet.tsv</c>. Questions and answers are made up for the tests.
/// </summary>
internal static class MmVetFolders
{
    /// <summary>
    /// v1_0 (rec), v1_1 (ocr + math, non-ASCII question, an &lt;AND&gt; answer), v1_2 (rec + know + gen); when broken
    /// v1_3 (its image file is missing), v1_4 (capability is no list), v1_5 (no question).
    /// </summary>
    public static (string Root, string[] Valid, Dictionary<string, string> Problems) WriteRelease(string dir, bool broken = false)
    {
        var root = Path.Combine(dir, "mm-vet");
        var images = Path.Combine(root, "images");
        Directory.CreateDirectory(images);
        var data = new Dictionary<string, object>
        {
            ["v1_0"] = new { imagename = "v1_0.png", capability = new[] { "rec" }, question = "What is the main object?", answer = "a teddy bear" },
            ["v1_1"] = new { imagename = "v1_1.jpg", capability = new[] { "ocr", "math" }, question = "What is x in the equation? " + BenchmarkFolders.NonAscii, answer = "-1<AND>-5" },
            ["v1_2"] = new { imagename = "v1_2.png", capability = new[] { "rec", "know", "gen" }, question = "Can you explain this meme?", answer = "It is a joke<OR>A pun" },
        };
        File.WriteAllBytes(Path.Combine(images, "v1_0.png"), BenchmarkFolders.Png(1));
        File.WriteAllBytes(Path.Combine(images, "v1_1.jpg"), BenchmarkFolders.Jpeg(2));
        File.WriteAllBytes(Path.Combine(images, "v1_2.png"), BenchmarkFolders.Png(3));
        var problems = new Dictionary<string, string>();
        if (broken)
        {
            data["v1_3"] = new { imagename = "v1_3.png", capability = new[] { "rec" }, question = "Where is it?", answer = "here" };
            problems["v1_3"] = "imagename";
            data["v1_4"] = new { imagename = "v1_0.png", capability = "rec", question = "Q?", answer = "a" };
            problems["v1_4"] = "capability";
            data["v1_5"] = new { imagename = "v1_0.png", capability = new[] { "rec" }, answer = "a" };
            problems["v1_5"] = "question";
        }
        File.WriteAllText(Path.Combine(root, "mm-vet.json"), JsonSerializer.Serialize(data, new JsonSerializerOptions { WriteIndented = true }), Encoding.UTF8);
        return (dir, ["v1_0", "v1_1", "v1_2"], problems);
    }

    /// <summary>MMVet.tsv: index 0 (rec), 1 (ocr,math), 2 (rec,know,gen); when broken 3 (no image).</summary>
    public static (string File, string[] Valid, Dictionary<string, string> Problems) WriteTsv(string dir, bool broken = false)
    {
        string B(byte[] b) => Convert.ToBase64String(b);
        var rows = new List<string>
        {
            "index\timage\tquestion\tanswer\tcategory",
            $"0\t{B(BenchmarkFolders.Png(1))}\tWhat is the main object?\ta teddy bear\trec",
            $"1\t{B(BenchmarkFolders.Jpeg(2))}\tWhat is x in the equation?\t-1<AND>-5\t\"ocr,math\"",
            $"2\t{B(BenchmarkFolders.Png(3))}\tCan you explain this meme?\tIt is a joke<OR>A pun\t\"rec,know,gen\"",
        };
        var problems = new Dictionary<string, string>();
        if (broken) { rows.Add("3\t\tNo image?\ta\trec"); problems["3"] = "image"; }
        var file = Path.Combine(dir, "MMVet.tsv");
        File.WriteAllText(file, string.Join('\n', rows) + "\n");
        return (file, ["0", "1", "2"], problems);
    }
}
