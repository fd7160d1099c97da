using System.Text;
using Microsoft.VisualBasic.FileIO;

namespace SafeCoDe.Eval.Benchmarks;

/// <summary>Makes a MOSSBench sample once its image is checked (the reader's own builder, shared by both layouts).</summary>
internal delegate ReadItem MossSampleBuilder(string id, string question, string root, string path, string field,
    IReadOnlyDictionary<string, string> groups, IReadOnlyDictionary<string, string> labels);

/// <summary>
/// MOSSBench as the Hugging Face dataset <c>AIcell/MOSSBench</c> ships it (config <c>oversensitivity</c>): an image
/// folder, <c>images/&lt;pid&gt;.png</c>, described by a <c>metadata.csv</c> whose <c>file_name</c> column names each
/// image (the <c>datasets</c> image-folder convention) and whose other columns are the card's features: <c>pid</c>,
/// <c>question</c>, <c>short description</c>, <c>description</c>, <c>metadata_over</c>, <c>metadata_human</c>,
/// <c>metadata_child</c>, <c>metadata_syn</c>, <c>metadata_ocr</c>, <c>metadata_harm</c>.
/// </summary>
/// <remarks>
/// What the card does not pin: whether <c>metadata.csv</c> sits in <c>images/</c> or at the top (both are looked for;
/// <c>file_name</c> is taken relative to the CSV's folder, and from a top-level CSV also under <c>images/</c>), and what
/// <c>metadata_over</c> holds (the card types it <c>bool</c>; the GitHub files hold <c>"type 1"</c>… in the JSON and
/// the type names in their CSV). Type names and <c>"type N"</c> are accepted; anything else makes the record a problem
/// naming what was expected, since the per-type rates depend on it.
/// </remarks>
internal static class MossBenchHub
{
    /// <summary>What this layout needs, for layout errors.</summary>
    public const string Expected =
        "images/metadata.csv (or metadata.csv at the top) with the columns file_name, pid and question, next to images/<pid>.png";

    private static readonly string[] Required = ["file_name", "pid", "question"];

    /// <summary>The MOSSBench type names (the GitHub CSV's <c>meta_data_over</c>) and the type each stands for.</summary>
    private static readonly Dictionary<string, string> TypeNames = new(StringComparer.OrdinalIgnoreCase)
    {
        ["Exaggerated Risk"] = "type 1", ["Negated Harm"] = "type 2", ["Counterintuitive Interpretation"] = "type 3",
    };

    /// <summary>A found snapshot: the CSV, its header (column → index) and the snapshot root.</summary>
    public sealed record Hub(string Csv, string Root, IReadOnlyDictionary<string, int> Columns);

    /// <summary>
    /// The snapshot under <paramref name="root"/>, or null when there is no metadata.csv; a metadata.csv without the
    /// required columns is a layout error naming them.
    /// </summary>
    public static Hub? Find(string root)
    {
        var csv = new[] { Path.Combine(root, "images", "metadata.csv"), Path.Combine(root, "metadata.csv") }.FirstOrDefault(File.Exists);
        if (csv is null) return null;
        using var parser = Parser(csv);
        string[]? header = null;
        try { header = parser.ReadFields(); }
        catch (MalformedLineException) { }
        var columns = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; header is not null && i < header.Length; i++) columns.TryAdd(header[i].Trim().TrimStart('\uFEFF'), i);
        var missing = Required.Where(c => !columns.ContainsKey(c)).ToList();
        if (missing.Count > 0)
            throw new BenchmarkLayoutException(
                $"'{csv}' is not the metadata of a MOSSBench image folder (Hugging Face AIcell/MOSSBench): expected the columns " +
                $"{string.Join(", ", Required)}; missing {string.Join(", ", missing)} (columns found: {(header is null ? "none" : string.Join(", ", header))}).");
        return new Hub(csv, root, columns);
    }

    /// <summary>The records of the CSV in file order; bad rows become problems under <c>metadata.csv#row&lt;n&gt;</c>.</summary>
    public static IEnumerable<Candidate> Records(Hub hub, MossSampleBuilder build)
    {
        using var parser = Parser(hub.Csv);
        try { parser.ReadFields(); } catch (MalformedLineException) { }
        int row = 0;
        while (!parser.EndOfData)
        {
            row++;
            var position = $"metadata.csv#row{row}";
            string[]? fields;
            string? malformed = null;
            try { fields = parser.ReadFields(); }
            catch (MalformedLineException ex) { fields = null; malformed = $"line {ex.LineNumber} is not valid CSV: {ex.Message}"; }
            if (fields is null)
            {
                if (malformed is not null) yield return Candidate.Bad(null, position, malformed);
                continue;
            }
            yield return Record(hub, fields, position, build);
        }
    }

    private static Candidate Record(Hub hub, string[] fields, string position, MossSampleBuilder build)
    {
        string? Get(string name) => hub.Columns.TryGetValue(name, out var i) && i < fields.Length && fields[i].Trim().Length > 0 ? fields[i] : null;
        var pid = Get("pid");
        if (pid is null) return Candidate.Bad(null, position, "field 'pid' is missing or empty");
        var question = Get("question");
        var file = Get("file_name");
        if (question is null || file is null) return Candidate.Bad(pid, position, $"field '{(question is null ? "question" : "file_name")}' is missing or empty");
        var type = Type(Get("metadata_over"), out var problem);
        if (problem is not null) return Candidate.Bad(pid, position, problem);
        var groups = new TextMap().Add(SampleKeys.Type, type).Build();
        var labels = new TextMap().Add("pid", pid).Add("description", Get("description")).Add("short_description", Get("short description"))
            .Add("harm", Get("metadata_harm")).Add("human", Get("metadata_human")).Add("child", Get("metadata_child"))
            .Add("syn", Get("metadata_syn")).Add("ocr", Get("metadata_ocr")).Build();
        return Candidate.Ok(pid, position, () => build(pid, question, hub.Root, Image(hub, file), "file_name", groups, labels));
    }

    /// <summary><c>file_name</c> relative to the CSV's folder; from a top-level CSV a bare name is also looked for under images/.</summary>
    private static string Image(Hub hub, string file)
    {
        var dir = Path.GetDirectoryName(hub.Csv)!;
        var path = DataPaths.Under(dir, file);
        if (!File.Exists(path) && dir == hub.Root)
        {
            var alt = DataPaths.Under(Path.Combine(dir, "images"), file);
            if (File.Exists(alt)) return alt;
        }
        return path;
    }

    /// <summary>The type group: "type N" as written, a type name as its "type N", empty as absent; anything else is a problem.</summary>
    private static string? Type(string? over, out string? problem)
    {
        problem = null;
        if (over is null) return null;
        var t = over.Trim();
        if (t.StartsWith("type ", StringComparison.OrdinalIgnoreCase) && int.TryParse(t[5..], out _)) return over;
        if (TypeNames.TryGetValue(t, out var type)) return type;
        problem = $"field 'metadata_over' is '{over}', expected the MOSSBench type the metrics group by: 'type 1'…'type 3' or " +
                  $"{string.Join(", ", TypeNames.Keys.Select(k => $"'{k}'"))} (a GitHub clone's information.json has it for every record)";
        return null;
    }

    private static TextFieldParser Parser(string csv)
    {
        var parser = new TextFieldParser(DataFiles.Open(csv, "CSV file"), Encoding.UTF8, detectEncoding: true)
        {
            TextFieldType = FieldType.Delimited,
            HasFieldsEnclosedInQuotes = true,
            TrimWhiteSpace = false,
        };
        parser.SetDelimiters(",");
        return parser;
    }
}
