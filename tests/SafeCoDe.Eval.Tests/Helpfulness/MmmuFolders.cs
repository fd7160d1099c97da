using System.Text;
using Parquet.Schema;

namespace SafeCoDe.Eval.Tests.Helpfulness;

/// <summary>
/// Small MMMU copies written here: the Hugging Face layout (<c>&lt;Subject&gt;/validation-00000-of-00001.parquet</c>, the
/// card's columns, images as the <c>Image</c> struct) and VLMEvalKit's <c>MMMU_DEV_VAL.tsv</c> (base64 images, option
/// columns, a multi-image list cell, an index reference). Questions and options are made up for the tests.
/// </summary>
internal static class MmmuFolders
{
    public static readonly ParquetSchema Schema = new(
        new Field[] { new DataField<string>("id"), new DataField<string>("question"), new DataField<string>("options"), new DataField<string>("explanation") }
            .Concat(Enumerable.Range(1, 7).Select(k => (Field)new StructField($"image_{k}", new DataField<byte[]>("bytes"), new DataField<string>("path"))))
            .Concat([new DataField<string>("img_type"), new DataField<string>("answer"), new DataField<string>("topic_difficulty"),
                     new DataField<string>("question_type"), new DataField<string>("subfield")]).ToArray());

    private static Dictionary<string, object?> Row(string id, string? question, string options, string answer, string type, params byte[][] images)
    {
        var row = new Dictionary<string, object?>
        {
            ["id"] = id, ["question"] = question, ["options"] = options, ["explanation"] = "", ["img_type"] = "['Diagrams']",
            ["answer"] = answer, ["topic_difficulty"] = "Easy", ["question_type"] = type, ["subfield"] = "x",
        };
        for (int k = 1; k <= 7; k++)
            row[$"image_{k}"] = k <= images.Length ? new Dictionary<string, object?> { ["bytes"] = (ReadOnlyMemory<byte>?)images[k - 1], ["path"] = null } : null;
        return row;
    }

    /// <summary>
    /// Accounting (a one-image MC question, a three-image MC question with non-ASCII text) and Math (an open question,
    /// and when broken: a null question, an undecodable image, options that are no list). Valid ids in reader order.
    /// </summary>
    public static (string Root, string[] Valid, Dictionary<string, string> Problems) WriteHub(string dir, bool broken = false)
    {
        var acc = new List<IDictionary<string, object?>>
        {
            Row("validation_Accounting_1", "How much is <image 1> worth?", "['$6', '$7', '$8', '$9']", "B", "multiple-choice", BenchmarkFolders.Png(1)),
            Row("validation_Accounting_2", $"Compare <image 1>, <image 3> and <image 2>. {BenchmarkFolders.NonAscii}", "['eins', 'zwei']", "A", "multiple-choice",
                BenchmarkFolders.Png(2, 16), BenchmarkFolders.Png(3, 8), BenchmarkFolders.Jpeg(4, 12)),
        };
        var math = new List<IDictionary<string, object?>> { Row("validation_Math_1", "What is x in <image 1>?", "[]", "42", "open", BenchmarkFolders.Png(5)) };
        var problems = new Dictionary<string, string>();
        if (broken)
        {
            math.Add(Row("validation_Math_2", null, "[]", "1", "open", BenchmarkFolders.Png(6)));
            problems["validation_Math_2"] = "question";
            math.Add(Row("validation_Math_3", "Broken image?", "[]", "1", "open", BenchmarkFolders.Garbage));
            problems["validation_Math_3"] = "image_1";
            math.Add(Row("validation_Math_4", "Options?", "A, B", "A", "multiple-choice", BenchmarkFolders.Png(7)));
            problems["validation_Math_4"] = "options";
        }
        BenchmarkFolders.WriteParquet(Path.Combine(dir, "Accounting", "validation-00000-of-00001.parquet"), Schema, acc, null);
        BenchmarkFolders.WriteParquet(Path.Combine(dir, "Math", "validation-00000-of-00001.parquet"), Schema, math, null);
        // a dev split file is not read by default
        BenchmarkFolders.WriteParquet(Path.Combine(dir, "Math", "dev-00000-of-00001.parquet"), Schema,
            [Row("dev_Math_1", "Dev question?", "[]", "1", "open", BenchmarkFolders.Png(8))], null);
        return (dir, ["validation_Accounting_1", "validation_Accounting_2", "validation_Math_1"], problems);
    }

    private static string Tsv(string cell) =>
        cell.Contains('\t') || cell.Contains('\n') || cell.Contains('"') ? "\"" + cell.Replace("\"", "\"\"") + "\"" : cell;

    /// <summary>
    /// MMMU_DEV_VAL.tsv: index 1 (MC, one image), 2 (MC, a list of two images, a question over two lines), 3 (open,
    /// the image of index 1 by reference), 4 (dev split, skipped), and when broken 5 (no image) and 6 (not base64).
    /// </summary>
    public static (string File, string[] Valid, Dictionary<string, string> Problems) WriteTsv(string dir, bool broken = false)
    {
        string B(byte[] b) => Convert.ToBase64String(b);
        var header = new[] { "index", "question", "hint", "A", "B", "C", "D", "answer", "category", "l2-category", "image", "split", "id" };
        var rows = new List<string[]>
        {
            new[] { "1", "How much is <image 1> worth?", "", "$6", "$7", "$8", "$9", "B", "Accounting", "Business", B(BenchmarkFolders.Png(1)), "validation", "validation_Accounting_1" },
            new[] { "2", "Compare <image 2> with\n<image 1>.", "", "eins", "zwei", "", "", "A", "Accounting", "Business",
                    $"['{B(BenchmarkFolders.Png(2, 16))}', '{B(BenchmarkFolders.Jpeg(3, 8))}']", "validation", "validation_Accounting_2" },
            new[] { "3", "What is x in <image 1>?", "", "", "", "", "", "42", "Math", "Science", "1", "validation", "validation_Math_1" },
            new[] { "4", "Dev question?", "", "a", "b", "", "", "A", "Math", "Science", B(BenchmarkFolders.Png(9)), "dev", "dev_Math_1" },
        };
        var problems = new Dictionary<string, string>();
        if (broken)
        {
            rows.Add(["5", "No image?", "", "a", "b", "", "", "A", "Math", "Science", "", "validation", "validation_Math_5"]);
            problems["validation_Math_5"] = "image";
            rows.Add(["6", "Bad image?", "", "a", "b", "", "", "A", "Math", "Science", new string('!', 80), "validation", "validation_Math_6"]);
            problems["validation_Math_6"] = "base64";
        }
        var sb = new StringBuilder(string.Join('\t', header)).Append('\n');
        foreach (var r in rows) sb.Append(string.Join('\t', r.Select(Tsv))).Append('\n');
        var file = Path.Combine(dir, "MMMU_DEV_VAL.tsv");
        File.WriteAllText(file, sb.ToString());
        return (file, ["validation_Accounting_1", "validation_Accounting_2", "validation_Math_1"], problems);
    }
}
