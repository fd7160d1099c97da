using System.Text.Json;

namespace SafeCoDe.Eval.Benchmarks;

/// <summary>
/// MOSSBench (GitHub <c>xirui-li/MOSSBench</c>): <c>data/images_information/information.json</c>, an object keyed by
/// pid, each record naming its image relative to <c>data/</c> (<c>"images/&lt;pid&gt;.png"</c>). Key order inside
/// records varies and images no record names are ignored. A snapshot of the Hugging Face dataset
/// <c>AIcell/MOSSBench</c> (an image folder with <c>metadata.csv</c>) is read too, see <see cref="MossBenchHub"/>.
/// </summary>
internal sealed class MossBenchReader : BenchmarkReaderBase
{
    public override string Name => "mossbench";
    public override string Layout => "a MOSSBench clone (or its data/ folder): data/images_information/information.json and data/images/; or a snapshot of the HF dataset AIcell/MOSSBench: images/*.png with metadata.csv";

    private const string InfoPath = "images_information/information.json";

    protected override IEnumerable<Candidate> Open(string root, ReaderSelection selection)
    {
        var full = Path.GetFullPath(root);
        var dataRoot = new[] { full, Path.Combine(full, "data") }.FirstOrDefault(d => File.Exists(Path.Combine(d, InfoPath)));
        if (dataRoot is not null) return Records(dataRoot);
        if (MossBenchHub.Find(full) is { } hub) return MossBenchHub.Records(hub, Sample);
        throw new BenchmarkLayoutException(
            $"'{root}' is not a MOSSBench copy: expected {InfoPath} and images/ there (the data/ folder of a clone of " +
            $"xirui-li/MOSSBench), or data/{InfoPath} under it (the clone itself); or a snapshot of the Hugging Face dataset " +
            $"AIcell/MOSSBench: {MossBenchHub.Expected}.");
    }

    private IEnumerable<Candidate> Records(string dataRoot)
    {
        const string file = "information.json";
        using var doc = JsonFields.Parse(Path.Combine(dataRoot, InfoPath), InfoPath, out var problem);
        if (doc is null) { yield return Candidate.Bad(null, file, problem!); yield break; }
        if (doc.RootElement.ValueKind != JsonValueKind.Object)
        {
            yield return Candidate.Bad(null, file, $"'{InfoPath}' holds {JsonFields.Kind(doc.RootElement)}; expected an object keyed by pid");
            yield break;
        }
        int index = 0;
        foreach (var entry in doc.RootElement.EnumerateObject())
        {
            var position = $"{file}#{index++}";
            yield return Record(dataRoot, entry.Name, entry.Value, position);
        }
    }

    private Candidate Record(string dataRoot, string key, JsonElement r, string position)
    {
        if (r.ValueKind != JsonValueKind.Object) return Candidate.Bad(key, position, $"record '{key}' is {JsonFields.Kind(r)}, expected an object");
        // the pid is the id; the key equals it in the published file and stands in when pid is absent
        string id = key;
        if (r.TryGetProperty("pid", out var pid) && pid.ValueKind != JsonValueKind.Null)
        {
            if (pid.ValueKind != JsonValueKind.String || string.IsNullOrWhiteSpace(pid.GetString()))
                return Candidate.Bad(key, position, $"field 'pid' is {(pid.ValueKind == JsonValueKind.String ? "empty" : JsonFields.Kind(pid) + ", expected a string")}");
            id = pid.GetString()!;
        }
        var question = JsonFields.Text(r, "question", out var pq);
        var image = JsonFields.Text(r, "image", out var pi);
        if (pq is not null || pi is not null) return Candidate.Bad(id, position, pq ?? pi!);

        r.TryGetProperty("metadata", out var meta);
        if (meta.ValueKind is not (JsonValueKind.Undefined or JsonValueKind.Null or JsonValueKind.Object))
            return Candidate.Bad(id, position, $"field 'metadata' is {JsonFields.Kind(meta)}, expected an object (its 'over' is the type the metrics group by)");
        var type = JsonFields.Group(meta, "over", out var pt);
        if (pt is not null) return Candidate.Bad(id, position, pt.Replace("field 'over'", "field 'metadata.over'"));
        var groups = new TextMap().Add(SampleKeys.Type, type).Build();
        var labels = new TextMap().Add("pid", id)
            .Add("description", JsonFields.Optional(r, "description"))
            .Add("short_description", JsonFields.Optional(r, "short description"))
            .Add("harm", Harm(meta))
            .Add("human", JsonFields.Optional(meta, "human")).Add("child", JsonFields.Optional(meta, "child"))
            .Add("syn", JsonFields.Optional(meta, "syn")).Add("ocr", JsonFields.Optional(meta, "ocr")).Build();
        string img = image!;
        return Candidate.Ok(id, position, () => Sample(id, question!, dataRoot, DataPaths.Under(dataRoot, img), "image", groups, labels));
    }

    /// <summary>
    /// The sample once its image is checked. MOSSBench's own harness sends the bare question; SafeCoDe's method runs
    /// wrap it in the first-person prompt (<see cref="Framing.FirstPersonInMethodRuns"/>).
    /// </summary>
    private ReadItem Sample(string id, string question, string root, string path, string field,
        IReadOnlyDictionary<string, string> groups, IReadOnlyDictionary<string, string> labels)
    {
        if (ImageCheck.File(path, Rel(root, path), root) is { } bad) return ReadItem.Bad(id, $"field '{field}': {bad}");
        return ReadItem.Of(new EvalSample(id, Name,
            [new EvalPrompt(SampleKeys.Answer, question, new ImageRef.File(path), null, Framing.FirstPersonInMethodRuns)], groups, labels));
    }

    private static string? Harm(JsonElement meta)
    {
        if (meta.ValueKind != JsonValueKind.Object || !meta.TryGetProperty("harm", out var h)) return null;
        if (h.ValueKind != JsonValueKind.Array) return JsonFields.Scalar(h);
        return string.Join(",", h.EnumerateArray().Select(JsonFields.Scalar).Where(s => s is not null));
    }
}
