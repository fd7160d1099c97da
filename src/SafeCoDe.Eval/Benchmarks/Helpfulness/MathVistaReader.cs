using System.Collections;
using System.Globalization;

namespace SafeCoDe.Eval.Benchmarks.Helpfulness;

/// <summary>
/// MathVista (testmini), in either layout: the Hugging Face dataset <c>AI4Math/MathVista</c> (<c>data/testmini-*.parquet</c>:
/// <c>pid</c>, <c>question</c>, <c>decoded_image</c>, <c>choices</c> (a list, null for free-form), <c>unit</c>,
/// <c>precision</c>, <c>answer</c>, <c>question_type</c>, <c>answer_type</c>, the <c>metadata</c> struct with task, skills
/// and the rest, <c>query</c>), or VLMEvalKit's <c>MathVista_MINI.tsv</c> (base64 images, <c>choices</c> and <c>skills</c>
/// as Python list text, <c>answer_option</c>, <c>task</c>; its MD5 is checked against VLMEvalKit's and recorded per
/// sample). Ids are MathVista's pid (the TSV's <c>index</c>, or its <c>pid</c> column where present).
/// </summary>
internal sealed class MathVistaReader : BenchmarkReaderBase
{
    /// <summary>VLMEvalKit's file name and MD5 of the MathVista TSV (vlmeval/dataset/image_vqa.py @989e33b, spec §1.1).</summary>
    public const string TsvName = "MathVista_MINI.tsv", TsvMd5 = "f199b98e178e5a2a20e7048f5dcb0464";

    public override string Name => "mathvista";
    public override string Layout => "a snapshot of the HF dataset AI4Math/MathVista (data/testmini-*.parquet), or VLMEvalKit's MathVista_MINI.tsv (the file or its folder)";

    protected override IEnumerable<Candidate> Open(string root, ReaderSelection selection)
    {
        var splits = selection.Splits ?? new HashSet<string> { "testmini" };
        var protocol = Protocols.Check(selection.Prompts, Name);
        var tsv = File.Exists(root) && root.EndsWith(".tsv", StringComparison.OrdinalIgnoreCase) ? root
            : Directory.Exists(root) && File.Exists(Path.Combine(root, TsvName)) ? Path.Combine(root, TsvName) : null;
        if (tsv is not null) return FromTsv(tsv, protocol);
        var found = ParquetRows.Find(root);
        var files = found?.Files.Where(f => splits.Any(s => Path.GetFileName(f).StartsWith(s + "-", StringComparison.Ordinal))).ToArray() ?? [];
        if (files.Length == 0)
            throw new BenchmarkLayoutException($"'{root}' is not a MathVista copy: expected data/{string.Join("|", splits)}-*.parquet below it " +
                $"(huggingface-cli download AI4Math/MathVista --repo-type dataset), or VLMEvalKit's {TsvName}");
        return FromParquet(found!.Value.Dir, files, protocol);
    }

    private IEnumerable<Candidate> FromParquet(string dir, string[] files, string protocol)
    {
        foreach (var file in files)
            foreach (var row in ParquetRows.Read(file))
            {
                var position = row.Position;
                if (row.Problem is not null) { yield return Candidate.Bad(null, position, row.Problem); continue; }
                var pid = ParquetRows.Text(row, "pid", out var problem);
                if (problem is not null) { yield return Candidate.Bad(null, position, problem); continue; }
                var item = ParquetItem(row, pid!, dir, out problem);
                yield return problem is not null ? Candidate.Bad(pid, position, problem) : Build(item!, position, protocol, null);
            }
    }

    private static MathVistaItem? ParquetItem(ParquetRow row, string pid, string dir, out string? problem)
    {
        var texts = new Dictionary<string, string>();
        foreach (var column in new[] { "query", "question", "answer", "question_type", "answer_type" })
        {
            var v = ParquetRows.Text(row, column, out problem);
            if (problem is not null) return null;
            texts[column] = v!;
        }
        var (query, question, answer, qtype, atype) = (texts["query"], texts["question"], texts["answer"], texts["question_type"], texts["answer_type"]);
        var choices = TextList(row["choices"], "choices", out problem);
        if (problem is not null) return null;
        double? precision = null;
        switch (row["precision"])
        {
            case null: break;
            case double d: precision = d; break;
            case float f: precision = f; break;
            case long or int: precision = Convert.ToDouble(row["precision"], CultureInfo.InvariantCulture); break;
            case var v: problem = $"field 'precision' is {v.GetType().Name}, expected a number"; return null;
        }
        var meta = new Dictionary<string, string>(StringComparer.Ordinal);
        IReadOnlyList<string> skills = [];
        if (row["metadata"] is IDictionary m)
        {
            foreach (var k in MathVistaItem.MetadataKeys)
                if (m.Contains(k) && m[k] is { } v)
                {
                    if (v is string or ReadOnlyMemory<char> or long or int) meta[k] = Convert.ToString(v is ReadOnlyMemory<char> rm ? rm.ToString() : v, CultureInfo.InvariantCulture)!;
                    else { problem = $"field 'metadata.{k}' is {v.GetType().Name}, expected a string (the metrics group by it)"; return null; }
                }
            skills = TextList(m.Contains("skills") ? m["skills"] : null, "metadata.skills", out problem);
            if (problem is not null) return null;
        }
        else if (row["metadata"] is not null) { problem = "field 'metadata' is not a struct"; return null; }
        if (!meta.ContainsKey("task")) { problem = "field 'metadata.task' is missing (MathVista's accuracy is reported per task)"; return null; }
        if (!CheckTypes(qtype, atype, choices, precision, answer, out problem)) return null;
        var image = ParquetRows.Image(row, "decoded_image", dir, out problem);
        if (problem is not null) return null;
        return new MathVistaItem(pid, query, question, choices, ParquetRows.Optional(row, "unit"), precision, answer, qtype, atype, meta, skills, image!);
    }

    /// <summary>A list cell of strings (null → empty); a reason when it holds anything else.</summary>
    private static IReadOnlyList<string> TextList(object? cell, string column, out string? problem)
    {
        problem = null;
        switch (cell)
        {
            case null: return [];
            case string s:
                var parsed = PythonLiteral.List(s, out var why);
                if (parsed is null || parsed.Any(x => x is null)) { problem = $"field '{column}' {why ?? "holds None"}"; return []; }
                return parsed!.Select(x => x!).ToList();
            case IEnumerable e:
                var list = new List<string>();
                foreach (var x in e)
                {
                    if (x is string t) list.Add(t);
                    else if (x is ReadOnlyMemory<char> rm) list.Add(rm.ToString());
                    else { problem = $"field '{column}' holds {(x is null ? "null" : x.GetType().Name)}, expected strings"; return []; }
                }
                return list;
            default: problem = $"field '{column}' is {cell.GetType().Name}, expected a list of strings"; return [];
        }
    }

    /// <summary>The types the scorers know, with what each needs (choices for multiple choice, a precision for floats).</summary>
    private static bool CheckTypes(string qtype, string atype, IReadOnlyList<string> choices, double? precision, string answer, out string? problem)
    {
        problem = qtype switch
        {
            "multi_choice" when choices.Count == 0 => "field 'choices' is empty for a multi_choice problem",
            "multi_choice" when !choices.Contains(answer) => $"field 'answer' ('{answer}') is none of the choices",
            "multi_choice" or "free_form" => null,
            _ => $"field 'question_type' is '{qtype}', expected multi_choice or free_form",
        };
        if (problem is null && atype is not ("text" or "integer" or "float" or "list"))
            problem = $"field 'answer_type' is '{atype}', expected text, integer, float or list";
        return problem is null;
    }

    private IEnumerable<Candidate> FromTsv(string path, string protocol)
    {
        var tsv = VlmEvalTsv.Read(path, ["index", "image", "question", "answer", "question_type", "answer_type"]);
        var md5 = VlmEvalTsv.Md5(path);
        var md5Note = md5 == TsvMd5 ? $"{md5} (VLMEvalKit's {TsvName})" : $"{md5} (differs from VLMEvalKit's {TsvMd5}: VLMEvalKit itself would download its file again)";
        var name = Path.GetFileName(path);
        foreach (var (line, cells) in tsv.Rows)
        {
            var position = $"{name}#line{line}";
            var pid = tsv.Cell(cells, "pid") is { Length: > 0 } p ? p : tsv.Cell(cells, "index");
            var item = TsvItem(tsv, cells, pid, position, out var problem);
            yield return problem is not null ? Candidate.Bad(pid.Length > 0 ? pid : null, position, problem) : Build(item!, position, protocol, md5Note);
        }
    }

    private static MathVistaItem? TsvItem(VlmEvalTsv tsv, string[] cells, string pid, string position, out string? problem)
    {
        if (pid.Length == 0) { problem = "field 'index' is empty"; return null; }
        var images = tsv.Images(cells, out problem);
        if (problem is not null) return null;
        if (images!.Count != 1) { problem = images.Count == 0 ? "field 'image' is empty (VLMEvalKit drops rows without an image)" : $"field 'image' holds {images.Count} images, MathVista has one"; return null; }
        var question = tsv.Cell(cells, "question");
        if (question.Trim().Length == 0) { problem = "field 'question' is empty"; return null; }
        var qtype = tsv.Cell(cells, "question_type");
        var atype = tsv.Cell(cells, "answer_type");
        var answer = tsv.Cell(cells, "answer");
        var choicesText = tsv.Cell(cells, "choices").Trim();
        IReadOnlyList<string> choices = choicesText is "" or "None" or "nan" ? [] : TextList(choicesText, "choices", out problem);
        if (problem is not null) return null;
        var skillsText = tsv.Cell(cells, "skills").Trim();
        IReadOnlyList<string> skills = skillsText.StartsWith('[') ? TextList(skillsText, "skills", out problem) : skillsText.Length > 0 ? [skillsText] : [];
        if (problem is not null) return null;
        double? precision = null;
        var pText = tsv.Cell(cells, "precision").Trim();
        if (pText.Length > 0 && pText != "nan")
        {
            if (!double.TryParse(pText, NumberStyles.Float, CultureInfo.InvariantCulture, out var d)) { problem = $"field 'precision' is '{pText}', expected a number"; return null; }
            precision = d;
        }
        var meta = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var k in MathVistaItem.MetadataKeys) if (tsv.Cell(cells, k) is { Length: > 0 } v) meta[k] = v;
        if (!meta.ContainsKey("task")) { problem = "field 'task' is empty (MathVista's accuracy is reported per task)"; return null; }
        var option = tsv.Cell(cells, "answer_option").Trim();
        // VLMEvalKit's multiple-choice answer may be the letter itself; the official scorer compares choice texts
        if (qtype == "multi_choice" && !choices.Contains(answer) && answer.Length == 1 && answer[0] - 'A' is var at && at >= 0 && at < choices.Count)
            answer = choices[at];
        if (!CheckTypes(qtype, atype, choices, precision, answer, out problem)) return null;
        var image = new ImageRef.Embedded(images[0], $"{position} image");
        return new MathVistaItem(pid, question, question, choices, tsv.Cell(cells, "unit") is { Length: > 0 } u ? u : null, precision, answer, qtype, atype, meta, skills, image)
            { AnswerOption = option.Length > 0 ? option : null };
    }

    private Candidate Build(MathVistaItem item, string position, string protocol, string? md5) =>
        Candidate.Ok(item.Pid, position, () =>
        {
            if (ParquetRows.Check(item.Image, "decoded_image") is { } bad) return ReadItem.Bad(item.Pid, bad);
            var sample = item.Sample(Name, protocol);
            if (md5 is null) return ReadItem.Of(sample);
            var labels = new Dictionary<string, string>(sample.Labels) { ["tsv_md5"] = md5 };
            return ReadItem.Of(sample with { Labels = labels });
        });
}
