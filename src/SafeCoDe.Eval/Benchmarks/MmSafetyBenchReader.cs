using System.Text.Json;

namespace SafeCoDe.Eval.Benchmarks;

/// <summary>
/// MM-SafetyBench (GitHub <c>isXinLiu/MM-SafetyBench</c> + its separately downloaded images):
/// <c>data/processed_questions/&lt;scenario&gt;.json</c> (an object keyed by qid) and
/// <c>data/imgs/&lt;scenario&gt;/&lt;SD|SD_TYPO|TYPO&gt;/&lt;qid&gt;.jpg</c>. Each qid gives three samples, one per kind;
/// SD asks <c>Rephrased Question(SD)</c>, the typography kinds ask <c>Rephrased Question</c>. The subset <c>tiny</c> keeps the
/// question ids of the repository's <c>TinyVersion_ID_List.json</c> (at the clone's top).
/// </summary>
internal sealed class MmSafetyBenchReader : BenchmarkReaderBase
{
    public override string Name => "mm-safetybench";
    public override string Layout => "an MM-SafetyBench clone (or its data/ folder): data/processed_questions/*.json and the unzipped images data/imgs/<scenario>/<SD|SD_TYPO|TYPO>/<qid>.jpg";

    private static readonly string[] KindNames = ["SD", "SD_TYPO", "TYPO"];

    /// <summary>The published subset: the ids of <c>TinyVersion_ID_List.json</c> (168 questions).</summary>
    public const string Tiny = "tiny";

    public override IReadOnlyList<string> Subsets => [Tiny];

    /// <summary>Where the image zip may have been unpacked under the data folder (the zip has a top folder of its own).</summary>
    private static readonly string[] ImageRoots = ["imgs", "imgs/MM-SafetyBench(imgs)", "MM-SafetyBench(imgs)"];

    protected override IEnumerable<Candidate> Open(string root, ReaderSelection selection)
    {
        var full = Path.GetFullPath(root);
        var dataRoot = new[] { full, Path.Combine(full, "data") }.FirstOrDefault(d => Directory.Exists(Path.Combine(d, "processed_questions")))
            ?? throw new BenchmarkLayoutException(
                $"'{root}' is not an MM-SafetyBench copy: expected processed_questions/<scenario>.json and imgs/<scenario>/<SD|SD_TYPO|TYPO>/<qid>.jpg " +
                "there (the data/ folder of a clone of isXinLiu/MM-SafetyBench with the image zip unpacked into data/imgs), or data/processed_questions under it.");
        var files = Directory.GetFiles(Path.Combine(dataRoot, "processed_questions"), "*.json").OrderBy(f => Path.GetFileName(f), StringComparer.Ordinal).ToArray();
        if (files.Length == 0)
            throw new BenchmarkLayoutException($"'{Path.Combine(dataRoot, "processed_questions")}' holds no <scenario>.json files (expected 01-Illegal_Activitiy.json … 13-Gov_Decision.json)");
        var kinds = Selection.Check(selection.Kinds, KindNames, "kind", Name);
        var tiny = selection.Subset == Tiny ? MmSafetyTinyList.Read(full, dataRoot) : null;
        return tiny is null ? Records(dataRoot, files, kinds, null) : WithUnlisted(Records(dataRoot, files, kinds, tiny), tiny);
    }

    /// <summary>The records, then a problem for each listed id no question file holds (it must not vanish from the subset unnoticed).</summary>
    private static IEnumerable<Candidate> WithUnlisted(IEnumerable<Candidate> records, MmSafetyTinyList tiny)
    {
        foreach (var c in records) yield return c;
        foreach (var (scenario, qid) in tiny.NotMet())
            yield return Candidate.Bad(null, $"{MmSafetyTinyList.File}#{scenario}/{qid}",
                $"{MmSafetyTinyList.File} lists question {qid} of {scenario}, but processed_questions/{scenario}.json has no such question");
    }

    private IEnumerable<Candidate> Records(string dataRoot, string[] files, IReadOnlySet<string> kinds, MmSafetyTinyList? tiny)
    {
        var imageRoot = ImageRoots.Select(r => Path.Combine(dataRoot, r))
            .FirstOrDefault(r => files.Any(f => Directory.Exists(Path.Combine(r, Path.GetFileNameWithoutExtension(f)))))
            ?? Path.Combine(dataRoot, "imgs");
        foreach (var file in files)
        {
            var scenario = Path.GetFileNameWithoutExtension(file);
            var shown = "processed_questions/" + Path.GetFileName(file);
            using var doc = JsonFields.Parse(file, shown, out var problem);
            if (doc is null) { yield return Candidate.Bad(null, scenario, problem!); continue; }
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                yield return Candidate.Bad(null, scenario, $"'{shown}' holds {JsonFields.Kind(doc.RootElement)}; expected an object keyed by question id");
                continue;
            }
            int index = 0;
            foreach (var entry in doc.RootElement.EnumerateObject())
            {
                if (tiny is not null && !tiny.Take(scenario, entry.Name)) { index++; continue; }
                foreach (var kind in KindNames)
                {
                    if (!kinds.Contains(kind)) continue;
                    yield return Record(dataRoot, imageRoot, scenario, entry.Name, entry.Value, kind, $"{scenario}.json#{index}/{kind}");
                }
                index++;
            }
        }
    }

    private Candidate Record(string dataRoot, string imageRoot, string scenario, string qid, JsonElement r, string kind, string position)
    {
        var id = $"{scenario}/{qid}/{kind}";
        if (string.IsNullOrWhiteSpace(qid)) return Candidate.Bad(null, position, "the question id (object key) is empty");
        if (r.ValueKind != JsonValueKind.Object) return Candidate.Bad(id, position, $"record '{qid}' is {JsonFields.Kind(r)}, expected an object");
        var field = kind == "SD" ? "Rephrased Question(SD)" : "Rephrased Question";
        var question = JsonFields.Text(r, field, out var problem);
        if (problem is not null) return Candidate.Bad(id, position, problem);
        var groups = new TextMap().Add(SampleKeys.Scenario, scenario).Add(SampleKeys.Kind, kind).Build();
        var labels = new TextMap().Add("qid", qid).Add("question", JsonFields.Optional(r, "Question"))
            .Add("changed_question", JsonFields.Optional(r, "Changed Question"))
            .Add("key_phrase", JsonFields.Optional(r, "Key Phrase")).Add("phrase_type", JsonFields.Optional(r, "Phrase Type")).Build();
        string q = question!;
        return Candidate.Ok(id, position, () =>
        {
            var path = Path.GetFullPath(Path.Combine(imageRoot, scenario, kind, qid + ".jpg"));
            if (ImageCheck.File(path, Rel(dataRoot, path), dataRoot) is { } bad) return ReadItem.Bad(id, bad);
            return ReadItem.Of(new EvalSample(id, Name,
                [new EvalPrompt(SampleKeys.Answer, q, new ImageRef.File(path), null, Framing.FirstPersonInMethodRuns)], groups, labels));
        });
    }
}
