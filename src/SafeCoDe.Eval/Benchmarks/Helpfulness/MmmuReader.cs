namespace SafeCoDe.Eval.Benchmarks.Helpfulness;

/// <summary>
/// MMMU, in either layout: the Hugging Face dataset <c>MMMU/MMMU</c> (one folder per subject holding
/// <c>validation-*.parquet</c>: <c>id</c>, <c>question</c>, <c>options</c> as a Python list literal, <c>answer</c>,
/// <c>question_type</c>, <c>image_1</c>…<c>image_7</c>), or VLMEvalKit's <c>MMMU_DEV_VAL.tsv</c> (base64 images, option
/// columns A…, <c>split</c>, <c>id</c>; its MD5 is checked against VLMEvalKit's and recorded per sample). Only the
/// <c>validation</c> split is read unless <c>--splits</c> names others (<c>dev</c>). Ids are MMMU's own <c>id</c>.
/// </summary>
internal sealed class MmmuReader : BenchmarkReaderBase
{
    /// <summary>VLMEvalKit's file name and MD5 of the MMMU TSV (vlmeval/dataset/image_mcq.py @989e33b, spec §1.1).</summary>
    public const string TsvName = "MMMU_DEV_VAL.tsv", TsvMd5 = "585e8ad75e73f75dcad265dfd0417d64";

    private const int MaxImages = 7;

    public override string Name => "mmmu";
    public override string Layout => "a snapshot of the HF dataset MMMU/MMMU (<Subject>/validation-*.parquet), or VLMEvalKit's MMMU_DEV_VAL.tsv (the file or its folder)";

    protected override IEnumerable<Candidate> Open(string root, ReaderSelection selection)
    {
        var splits = selection.Splits ?? new HashSet<string> { "validation" };
        var protocol = Protocols.Check(selection.Prompts, Name);
        var tsv = File.Exists(root) && root.EndsWith(".tsv", StringComparison.OrdinalIgnoreCase) ? root
            : Directory.Exists(root) && File.Exists(Path.Combine(root, TsvName)) ? Path.Combine(root, TsvName) : null;
        if (tsv is not null) return FromTsv(tsv, splits, protocol);
        var files = Directory.Exists(root)
            ? Directory.EnumerateFiles(root, "*.parquet", SearchOption.AllDirectories)
                .Where(f => splits.Any(s => Path.GetFileName(f).StartsWith(s + "-", StringComparison.Ordinal)))
                .OrderBy(f => Path.GetRelativePath(root, f).Replace('\\', '/'), StringComparer.Ordinal).ToArray()
            : [];
        if (files.Length == 0)
            throw new BenchmarkLayoutException($"'{root}' is not an MMMU copy: expected <Subject>/{string.Join("|", splits)}-*.parquet below it " +
                $"(huggingface-cli download MMMU/MMMU --repo-type dataset), or VLMEvalKit's {TsvName}");
        return FromParquet(root, files, protocol);
    }

    private IEnumerable<Candidate> FromParquet(string root, string[] files, string protocol)
    {
        foreach (var file in files)
        {
            var dir = Path.GetDirectoryName(file)!;
            var split = Path.GetFileName(file).Split('-')[0];
            foreach (var row in ParquetRows.Read(file))
            {
                var position = $"{Rel(root, file)}#{row.Index}";
                if (row.Problem is not null) { yield return Candidate.Bad(null, position, row.Problem); continue; }
                var id = ParquetRows.Text(row, "id", out var problem);
                if (problem is not null) { yield return Candidate.Bad(null, position, problem); continue; }
                var item = ParquetItem(row, id!, split, dir, out problem);
                yield return problem is not null ? Candidate.Bad(id, position, problem) : Build(item!, position, protocol);
            }
        }
    }

    private static MmmuItem? ParquetItem(ParquetRow row, string id, string split, string dir, out string? problem)
    {
        var question = ParquetRows.Text(row, "question", out problem);
        var answer = problem is null ? ParquetRows.Text(row, "answer", out problem) : null;
        var optionsText = problem is null ? ParquetRows.Text(row, "options", out problem, allowEmpty: true) : null;
        if (problem is not null) return null;
        var options = PythonLiteral.List(optionsText!, out var why);
        if (options is null || options.Any(o => o is null)) { problem = $"field 'options' {why ?? "holds None"}"; return null; }
        var images = new List<ImageRef>();
        for (int k = 1; k <= MaxImages; k++)
        {
            var column = $"image_{k}";
            if (row[column] is null) continue;
            var image = ParquetRows.Image(row, column, dir, out problem);
            if (problem is not null) return null;
            images.Add(image!);
        }
        if (images.Count == 0) { problem = "no image in image_1…image_7"; return null; }
        return new MmmuItem(id, question!, options!, Answers(answer!), ParquetRows.Optional(row, "question_type") ?? "", split, images);
    }

    /// <summary>A gold answer, or a Python list of acceptable answers (three validation questions have one).</summary>
    private static IReadOnlyList<string> Answers(string answer) =>
        answer.TrimStart().StartsWith('[') && PythonLiteral.List(answer, out _) is { } list ? list.Select(a => a ?? "").ToList() : [answer];

    private IEnumerable<Candidate> FromTsv(string path, IReadOnlySet<string> splits, string protocol)
    {
        var tsv = VlmEvalTsv.Read(path, ["index", "image", "question", "answer"]);
        var md5 = VlmEvalTsv.Md5(path);
        var md5Note = md5 == TsvMd5 ? $"{md5} (VLMEvalKit's {TsvName})" : $"{md5} (differs from VLMEvalKit's {TsvMd5}: VLMEvalKit itself would download its file again)";
        var letters = Enumerable.Range(0, 26).Select(i => ((char)('A' + i)).ToString()).Where(tsv.Has).ToList();
        var name = Path.GetFileName(path);
        foreach (var (line, cells) in tsv.Rows)
        {
            var position = $"{name}#line{line}";
            var split = tsv.Cell(cells, "split");
            if (split.Length > 0 && !splits.Contains(split)) continue;
            var id = tsv.Cell(cells, "id") is { Length: > 0 } i ? i : $"{name}#index{tsv.Cell(cells, "index")}";
            var images = tsv.Images(cells, out var problem);
            if (problem is null && images!.Count == 0) problem = "field 'image' is empty (VLMEvalKit drops rows without an image)";
            if (problem is null && tsv.Cell(cells, "question").Trim().Length == 0) problem = "field 'question' is empty";
            if (problem is not null) { yield return Candidate.Bad(id, position, problem); continue; }
            var options = letters.Select(l => tsv.Cell(cells, l)).TakeWhile(o => o.Length > 0).ToList();
            var refs = images!.Select((b, k) => (ImageRef)new ImageRef.Embedded(b, $"{position} image {k + 1}")).ToList();
            var item = new MmmuItem(id, tsv.Cell(cells, "question"), options, Answers(tsv.Cell(cells, "answer")),
                options.Count > 0 ? "multiple-choice" : "open", split.Length > 0 ? split : "validation", refs);
            yield return Build(item, position, protocol, md5Note);
        }
    }

    private Candidate Build(MmmuItem item, string position, string? protocol = null, string? md5 = null) =>
        Candidate.Ok(item.Id, position, () =>
        {
            foreach (var (image, k) in item.Images.Select((im, k) => (im, k)))
                if (ParquetRows.Check(image, $"image_{k + 1}") is { } bad) return ReadItem.Bad(item.Id, bad);
            var sample = item.Sample(Name, protocol ?? MmmuItem.Official);
            if (md5 is null) return ReadItem.Of(sample);
            var labels = new Dictionary<string, string>(sample.Labels) { ["tsv_md5"] = md5 };
            return ReadItem.Of(sample with { Labels = labels });
        });
}
