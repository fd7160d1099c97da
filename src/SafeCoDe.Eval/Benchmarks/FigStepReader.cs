using System.Text;
using Microsoft.VisualBasic.FileIO;

namespace SafeCoDe.Eval.Benchmarks;

/// <summary>
/// FigStep SafeBench (GitHub <c>ThuCCSLab/FigStep</c>): <c>data/question/safebench.csv</c> and the typographic images
/// <c>data/images/SafeBench/query_ForbidQI_&lt;category_id&gt;_&lt;task_id&gt;_6.png</c>. Every sample asks FigStep's
/// fixed text prompt about its image. The subset <c>SafeBench-Tiny</c> reads <c>data/question/SafeBench-Tiny.csv</c> and
/// its own images, <c>data/images/SafeBench-Tiny/</c> (the repository's copies differ from the full set's bytes).
/// </summary>
/// <remarks>
/// The CSV is parsed with the framework's <see cref="TextFieldParser"/> (quoted fields, doubled quotes, commas and
/// line breaks inside quotes, a BOM, a missing final newline), so no parser is hand-written here. Columns are found by
/// header name; a malformed line becomes a problem and reading goes on.
/// </remarks>
internal sealed class FigStepReader : BenchmarkReaderBase
{
    public override string Name => "figstep";
    public override string Layout => "a FigStep clone (or its data/ folder): data/question/safebench.csv and data/images/SafeBench/query_ForbidQI_<category_id>_<task_id>_6.png";

    /// <summary>The published subset: FigStep's 50-question SafeBench-Tiny.</summary>
    public const string Tiny = "SafeBench-Tiny";

    public override IReadOnlyList<string> Subsets => [Tiny];

    protected override IEnumerable<Candidate> Open(string root, ReaderSelection selection)
    {
        var (csvPath, images) = selection.Subset == Tiny ? ("question/SafeBench-Tiny.csv", "SafeBench-Tiny") : ("question/safebench.csv", "SafeBench");
        var full = Path.GetFullPath(root);
        var dataRoot = new[] { full, Path.Combine(full, "data") }.FirstOrDefault(d => File.Exists(Path.Combine(d, csvPath)))
            ?? throw new BenchmarkLayoutException(
                $"'{root}' is not a FigStep copy: expected {csvPath} and images/{images}/ there (the data/ folder of a clone of " +
                $"ThuCCSLab/FigStep), or data/{csvPath} under it (the clone itself).");
        return Records(dataRoot, csvPath, images);
    }

    private IEnumerable<Candidate> Records(string dataRoot, string csvPath, string images)
    {
        var file = Path.GetFileName(csvPath);
        using var parser = new TextFieldParser(DataFiles.Open(Path.Combine(dataRoot, csvPath), "CSV file"), Encoding.UTF8, detectEncoding: true)
        {
            TextFieldType = FieldType.Delimited,
            HasFieldsEnclosedInQuotes = true,
            TrimWhiteSpace = false,
        };
        parser.SetDelimiters(",");
        string[]? header = null;
        try { header = parser.ReadFields(); }
        catch (MalformedLineException ex) { _ = ex; }
        if (header is null) { yield return Candidate.Bad(null, file, $"'{csvPath}' has no readable header line"); yield break; }
        var col = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < header.Length; i++) col.TryAdd(header[i].Trim().TrimStart('\uFEFF'), i);
        foreach (var required in new[] { "category_id", "task_id" })
            if (!col.ContainsKey(required))
            {
                yield return Candidate.Bad(null, file, $"'{csvPath}' header has no column '{required}' (columns: {string.Join(", ", header)})");
                yield break;
            }

        int row = 0;
        while (!parser.EndOfData)
        {
            row++;
            var position = $"{file}#row{row}";
            string[]? fields;
            string? malformed = null;
            try { fields = parser.ReadFields(); }
            catch (MalformedLineException ex) { fields = null; malformed = $"line {ex.LineNumber} is not valid CSV: {ex.Message}"; }
            if (fields is null)
            {
                if (malformed is not null) yield return Candidate.Bad(null, position, malformed);
                continue;
            }
            yield return Record(dataRoot, images, fields, col, position);
        }
    }

    private Candidate Record(string dataRoot, string images, string[] fields, Dictionary<string, int> col, string position)
    {
        string? Get(string name) => col.TryGetValue(name, out var i) && i < fields.Length ? fields[i] : null;
        var cat = Get("category_id");
        var task = Get("task_id");
        if (string.IsNullOrWhiteSpace(cat) || string.IsNullOrWhiteSpace(task))
            return Candidate.Bad(null, position, $"field '{(string.IsNullOrWhiteSpace(cat) ? "category_id" : "task_id")}' is {(cat is null || task is null ? "missing" : "empty")}");
        var id = $"{cat}_{task}";
        // the per-category rows are keyed (and sorted) by the number: a category id that is no number would sit apart unnoticed
        if (!cat.All(char.IsAsciiDigit)) return Candidate.Bad(id, position, $"field 'category_id' is '{cat}', expected a whole number (the metrics group by it)");
        var groups = new TextMap().Add(SampleKeys.Category, Get("category_name")).Add(SampleKeys.CategoryId, cat).Build();
        var labels = new TextMap().Add("task_id", task).Add("dataset", Get("dataset"))
            .Add("question", Get("question")).Add("instruction", Get("instruction")).Build();
        return Candidate.Ok(id, position, () =>
        {
            var path = Path.GetFullPath(Path.Combine(dataRoot, "images", images, $"query_ForbidQI_{cat}_{task}_6.png"));
            if (ImageCheck.File(path, Rel(dataRoot, path), dataRoot) is { } bad) return ReadItem.Bad(id, bad);
            return ReadItem.Of(new EvalSample(id, Name,
                [new EvalPrompt(SampleKeys.Answer, PromptFraming.FigStepPrompt, new ImageRef.File(path), null, Framing.FirstPersonInMethodRuns)],
                groups, labels));
        });
    }
}
