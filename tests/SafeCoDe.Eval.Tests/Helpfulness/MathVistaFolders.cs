using System.Text;
using Parquet.Schema;

namespace SafeCoDe.Eval.Tests.Helpfulness;

/// <summary>
/// Small MathVista copies written here: the Hugging Face layout (<c>data/testmini-00000-of-00001.parquet</c> with the
/// card's columns: choices as a list, precision as a nullable double, the metadata struct with its skills list, the
/// image as the <c>Image</c> struct) and VLMEvalKit's <c>MathVista_MINI.tsv</c>. Problems are made up for the tests,
/// shaped like the card's (a multiple-choice, an integer with a unit, a two-decimal float, a list answer).
/// </summary>
internal static class MathVistaFolders
{
    public const string McQuery = "Hint: Please answer the question and provide the correct option letter, e.g., A, B, C, D, at the end.\nQuestion: What fraction of the shape is blue?\nChoices:\n(A) 3/11\n(B) 8/11\n(C) 6/11\n(D) 3/5";
    public const string IntQuery = "Hint: Please answer the question requiring an integer answer and provide the final value, e.g., 1, 2, 3, at the end.\nQuestion: what is the total volume of the measuring cup? (Unit: g)";
    public const string FloatQuery = "Hint: Please answer the question requiring a floating-point number with two decimal places and provide the final value, e.g., 1.23, 1.34, 1.45, at the end.\nQuestion: How much money does Luca need? (Unit: $)";

    private static readonly ParquetSchema Schema = new(
        new DataField<string>("pid"), new DataField<string>("question"), new DataField<string>("image"),
        new StructField("decoded_image", new DataField<byte[]>("bytes"), new DataField<string>("path")),
        new ListField("choices", new DataField<string>("element")), new DataField<string>("unit"), new DataField<double?>("precision"),
        new DataField<string>("answer"), new DataField<string>("question_type"), new DataField<string>("answer_type"),
        new StructField("metadata", new DataField<string>("category"), new DataField<string>("context"), new DataField<string>("grade"),
            new DataField<long?>("img_height"), new DataField<long?>("img_width"), new DataField<string>("language"),
            new ListField("skills", new DataField<string>("element")), new DataField<string>("source"), new DataField<string>("split"), new DataField<string>("task")),
        new DataField<string>("query"));

    private static List<ReadOnlyMemory<char>?>? Texts(string[]? items) => items?.Select(i => (ReadOnlyMemory<char>?)i.AsMemory()).ToList();

    private static Dictionary<string, object?> Row(string pid, string? query, string[]? choices, string answer, string qtype, string atype, double? precision,
        string task, string[] skills, byte[] image, string? unit = null, string question = "q") => new()
    {
        ["pid"] = pid, ["question"] = question, ["image"] = $"images/{pid}.jpg",
        ["decoded_image"] = new Dictionary<string, object?> { ["bytes"] = (ReadOnlyMemory<byte>?)image, ["path"] = null },
        ["choices"] = Texts(choices), ["unit"] = unit, ["precision"] = precision, ["answer"] = answer, ["question_type"] = qtype, ["answer_type"] = atype,
        ["metadata"] = new Dictionary<string, object?>
        {
            ["category"] = "math-targeted-vqa", ["context"] = "abstract scene", ["grade"] = "elementary school", ["img_height"] = 16L, ["img_width"] = 16L,
            ["language"] = "english", ["skills"] = Texts(skills), ["source"] = "IconQA", ["split"] = "testmini", ["task"] = task,
        },
        ["query"] = query,
    };

    /// <summary>
    /// pid 1 (multiple choice), 2 (integer with a unit), 3 (float, precision 2, non-ASCII question), 4 (a list answer);
    /// when broken 5 (null query), 6 (undecodable image), 7 (an answer that is none of the choices). A test-split file
    /// is not read by default.
    /// </summary>
    public static (string Root, string[] Valid, Dictionary<string, string> Problems) WriteHub(string dir, bool broken = false)
    {
        var rows = new List<IDictionary<string, object?>>
        {
            Row("1", McQuery, ["3/11", "8/11", "6/11", "3/5"], "8/11", "multi_choice", "text", null, "textbook question answering", ["arithmetic reasoning", "algebraic reasoning"], BenchmarkFolders.Png(1)),
            Row("2", IntQuery, null, "1000", "free_form", "integer", null, "visual question answering", ["numeric commonsense", "arithmetic reasoning"], BenchmarkFolders.Jpeg(2), "g"),
            Row("3", FloatQuery + " " + BenchmarkFolders.NonAscii, null, "1.45", "free_form", "float", 2.0, "math word problem", ["arithmetic reasoning"], BenchmarkFolders.Png(3), "$",
                question: BenchmarkFolders.NonAscii),
            Row("4", "Hint: Please answer the question requiring a Python list as an answer and provide the final list, e.g., [1, 2, 3], [1.2, 1.3, 1.4], at the end.\nQuestion: Between which two years?",
                null, "[2007, 2008]", "free_form", "list", null, "figure question answering", ["statistical reasoning"], BenchmarkFolders.Png(4)),
        };
        var problems = new Dictionary<string, string>();
        if (broken)
        {
            rows.Add(Row("5", null, null, "1", "free_form", "integer", null, "math word problem", [], BenchmarkFolders.Png(5)));
            problems["5"] = "query";
            rows.Add(Row("6", IntQuery, null, "1", "free_form", "integer", null, "math word problem", [], BenchmarkFolders.Garbage));
            problems["6"] = "decoded_image";
            rows.Add(Row("7", McQuery, ["a", "b"], "c", "multi_choice", "text", null, "math word problem", [], BenchmarkFolders.Png(7)));
            problems["7"] = "none of the choices";
        }
        BenchmarkFolders.WriteParquet(Path.Combine(dir, "data", "testmini-00000-of-00001.parquet"), Schema, rows, null);
        BenchmarkFolders.WriteParquet(Path.Combine(dir, "data", "test-00000-of-00001.parquet"), Schema,
            [Row("1001", IntQuery, null, "7", "free_form", "integer", null, "math word problem", [], BenchmarkFolders.Png(8))], null);
        return (dir, ["1", "2", "3", "4"], problems);
    }

    private static string Tsv(string cell) =>
        cell.Contains('\t') || cell.Contains('\n') || cell.Contains('"') ? "\"" + cell.Replace("\"", "\"\"") + "\"" : cell;

    /// <summary>
    /// MathVista_MINI.tsv: index 1 (multiple choice, answer_option B), 2 (integer), 3 (float with a precision column);
    /// when broken 4 (no image) and 5 (choices that are no list).
    /// </summary>
    public static (string File, string[] Valid, Dictionary<string, string> Problems) WriteTsv(string dir, bool broken = false)
    {
        string B(byte[] b) => Convert.ToBase64String(b);
        var header = new[] { "index", "image", "question", "answer", "question_type", "answer_type", "choices", "answer_option", "precision", "unit", "task", "skills", "category" };
        var rows = new List<string[]>
        {
            new[] { "1", B(BenchmarkFolders.Png(1)), McQuery, "8/11", "multi_choice", "text", "['3/11', '8/11', '6/11', '3/5']", "B", "", "", "textbook question answering", "['arithmetic reasoning', 'algebraic reasoning']", "math-targeted-vqa" },
            new[] { "2", B(BenchmarkFolders.Jpeg(2)), IntQuery, "1000", "free_form", "integer", "None", "", "", "g", "visual question answering", "['numeric commonsense']", "general-vqa" },
            new[] { "3", B(BenchmarkFolders.Png(3)), FloatQuery, "1.45", "free_form", "float", "None", "", "2.0", "$", "math word problem", "['arithmetic reasoning']", "math-targeted-vqa" },
        };
        var problems = new Dictionary<string, string>();
        if (broken)
        {
            rows.Add(["4", "", IntQuery, "1", "free_form", "integer", "None", "", "", "", "math word problem", "[]", "x"]);
            problems["4"] = "image";
            rows.Add(["5", B(BenchmarkFolders.Png(5)), McQuery, "a", "multi_choice", "text", "a, b", "A", "", "", "math word problem", "[]", "x"]);
            problems["5"] = "choices";
        }
        var sb = new StringBuilder(string.Join('\t', header)).Append('\n');
        foreach (var r in rows) sb.Append(string.Join('\t', r.Select(Tsv))).Append('\n');
        var file = Path.Combine(dir, "MathVista_MINI.tsv");
        File.WriteAllText(file, sb.ToString());
        return (file, ["1", "2", "3"], problems);
    }
}
