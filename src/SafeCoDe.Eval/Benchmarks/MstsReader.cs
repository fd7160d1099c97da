namespace SafeCoDe.Eval.Benchmarks;

/// <summary>
/// MSTS (HF <c>felfri/MSTS</c> snapshot): one parquet per language split, the split being the file name up to its
/// first '-' (<c>english-00000-of-00001.parquet</c> → <c>english</c>); the image is embedded in <c>unsafe_image</c>.
/// Only english has both prompt types.
/// </summary>
internal sealed class MstsReader : BenchmarkReaderBase
{
    public override string Name => "msts";
    public override string Layout => "the MSTS snapshot folder (HF felfri/MSTS) or its data/ folder: one <language>-*.parquet per split";

    protected override IEnumerable<Candidate> Open(string root, ReaderSelection selection)
    {
        var found = ParquetRows.Find(root)
            ?? throw new BenchmarkLayoutException(
                $"'{root}' is not an MSTS copy: expected <language>-*.parquet files there or under data/ (a snapshot of the Hugging Face " +
                "dataset felfri/MSTS: english, german, russian, chinese, hindi, spanish, italian, french, korean, arabic, farsi).");
        var splitOf = found.Files.ToDictionary(f => f, Split, StringComparer.Ordinal);
        var available = splitOf.Values.Distinct(StringComparer.Ordinal).ToArray();
        var splits = Selection.Check(selection.Splits, available, "split", Name);
        return Records(found.Files.Where(f => splits.Contains(splitOf[f])).ToArray(), splitOf);
    }

    /// <summary>The split a parquet file holds: its name up to the first '-' (the whole stem when there is none).</summary>
    internal static string Split(string file)
    {
        var stem = Path.GetFileNameWithoutExtension(file);
        int dash = stem.IndexOf('-');
        return dash > 0 ? stem[..dash] : stem;
    }

    /// <summary>The three hazard levels the metrics group by (null where absent); a reason when one is not text.</summary>
    private static string?[] Hazards(ParquetRow row, out string? problem)
    {
        var levels = new string?[3];
        problem = null;
        string[] columns = ["hazard_category", "hazard_subcategory", "hazard_subsubcategory"];
        for (int i = 0; i < columns.Length && problem is null; i++) levels[i] = ParquetRows.Group(row, columns[i], out problem);
        return levels;
    }

    private IEnumerable<Candidate> Records(string[] files, Dictionary<string, string> splitOf)
    {
        foreach (var file in files)
        {
            var split = splitOf[file];
            var dir = Path.GetDirectoryName(file)!;
            foreach (var row in ParquetRows.Read(file))
            {
                if (row.Problem is not null) { yield return Candidate.Bad(null, row.Position, row.Problem); continue; }
                var caseId = ParquetRows.Text(row, "case_id", out var p1);
                var promptType = ParquetRows.Text(row, "prompt_type", out var p2);
                if (p1 is not null || p2 is not null) { yield return Candidate.Bad(null, row.Position, p1 ?? p2!); continue; }
                var id = $"{split}/{caseId}/{promptType}";
                var text = ParquetRows.Text(row, "prompt_text", out var problem);
                var image = problem is null ? ParquetRows.Image(row, "unsafe_image", dir, out problem) : null;
                var hazards = problem is null ? Hazards(row, out problem) : null;
                if (problem is not null) { yield return Candidate.Bad(id, row.Position, problem); continue; }
                var groups = new TextMap().Add(SampleKeys.Split, split).Add(SampleKeys.PromptType, promptType)
                    .Add(SampleKeys.HazardCategory, hazards![0]).Add(SampleKeys.HazardSubcategory, hazards[1])
                    .Add(SampleKeys.HazardSubsubcategory, hazards[2]).Build();
                // the split is the language: the keyword scorer picks its refusal phrases by it
                var labels = new TextMap().Add("case_id", caseId).Add("case_text", ParquetRows.Optional(row, "case_text"))
                    .Add("unsafe_image_id", ParquetRows.Optional(row, "unsafe_image_id"))
                    .Add("unsafe_image_description", ParquetRows.Optional(row, "unsafe_image_description"))
                    .Add("unsafe_image_cw", ParquetRows.Optional(row, "unsafe_image_cw")).Add(SampleKeys.Language, split).Build();
                string q = text!;
                ImageRef img = image!;
                yield return Candidate.Ok(id, row.Position, () =>
                    ParquetRows.Check(img, "unsafe_image") is { } bad ? ReadItem.Bad(id, bad)
                    : ReadItem.Of(new EvalSample(id, Name,
                        [new EvalPrompt(SampleKeys.Answer, q, img, null, Framing.FirstPersonInMethodRuns)], groups, labels)));
            }
        }
    }
}
