using System.Globalization;

namespace SafeCoDe.Eval.Benchmarks;

/// <summary>
/// HADES (HF <c>Monosail/HADES</c> snapshot): <c>data/test-*.parquet</c>, one row per (instruction, optimisation
/// step) with the image embedded as the <c>Image</c> struct. Rows are keyed by (scenario, id, step): the same <c>id</c>
/// recurs across steps, and whether it also recurs across scenarios is not known from the published data, so the
/// scenario is part of the key; a repeated key is a problem naming both rows.
/// </summary>
internal sealed class HadesReader : BenchmarkReaderBase
{
    public override string Name => "hades";
    public override string Layout => "the HADES snapshot folder (HF Monosail/HADES) or its data/ folder: data/test-*.parquet";

    protected override IEnumerable<Candidate> Open(string root, ReaderSelection selection)
    {
        var found = ParquetRows.Find(root)
            ?? throw new BenchmarkLayoutException(
                $"'{root}' is not a HADES copy: expected data/*.parquet there (a snapshot of the Hugging Face dataset Monosail/HADES: " +
                "data/test-00000-of-00002.parquet, data/test-00001-of-00002.parquet), or the parquet files themselves.");
        return Records(found.Files, selection.Steps);
    }

    private IEnumerable<Candidate> Records(string[] files, IReadOnlySet<int>? steps)
    {
        foreach (var file in files)
        {
            var dir = Path.GetDirectoryName(file)!;
            foreach (var row in ParquetRows.Read(file))
            {
                if (row.Problem is not null) { yield return Candidate.Bad(null, row.Position, row.Problem); continue; }
                var step = ParquetRows.Integer(row, "step", out var stepProblem);
                if (step is long st && steps is not null && !(st is >= int.MinValue and <= int.MaxValue && steps.Contains((int)st))) continue;
                var id = ParquetRows.Text(row, "id", out var idProblem);
                var scenario = ParquetRows.Text(row, "scenario", out var scenarioProblem);
                if ((idProblem ?? scenarioProblem ?? stepProblem) is { } keyProblem) { yield return Candidate.Bad(null, row.Position, keyProblem); continue; }
                var stepText = step!.Value.ToString(CultureInfo.InvariantCulture);
                var sampleId = $"{scenario}/{id}/step{stepText}";
                var category = ParquetRows.Group(row, "category", out var problem);
                var instruction = problem is null ? ParquetRows.Text(row, "instruction", out problem) : null;
                var image = problem is null ? ParquetRows.Image(row, "image", dir, out problem) : null;
                if (problem is not null) { yield return Candidate.Bad(sampleId, row.Position, problem); continue; }
                var groups = new TextMap().Add(SampleKeys.Scenario, scenario).Add(SampleKeys.Step, stepText)
                    .Add(SampleKeys.Category, category).Build();
                var labels = new TextMap().Add("id", id).Add("keywords", ParquetRows.Optional(row, "keywords")).Add("instruction", instruction).Build();
                string q = instruction!;
                ImageRef img = image!;
                yield return Candidate.Ok(sampleId, row.Position, () =>
                    ParquetRows.Check(img, "image") is { } bad ? ReadItem.Bad(sampleId, bad)
                    : ReadItem.Of(new EvalSample(sampleId, Name,
                        [new EvalPrompt(SampleKeys.Answer, q, img, null, Framing.FirstPersonInMethodRuns)], groups, labels)));
            }
        }
    }
}
