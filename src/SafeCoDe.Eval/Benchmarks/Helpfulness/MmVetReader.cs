using System.Text.Json;

namespace SafeCoDe.Eval.Benchmarks.Helpfulness;

/// <summary>
/// MM-Vet (v1), in either layout: the release zip unpacked (<c>mm-vet/mm-vet.json</c>, an object keyed <c>v1_0</c>…
/// whose values hold <c>imagename</c>, <c>capability</c> (a list of rec, ocr, know, gen, spat, math), <c>question</c>,
/// <c>answer</c>; images in <c>mm-vet/images/</c>), or VLMEvalKit's <c>MMVet.tsv</c> (base64 images, <c>category</c> with the
/// capabilities comma-joined; its MD5 is checked against VLMEvalKit's and recorded per sample). Ids are the json's keys
/// (the TSV's <c>index</c>). The prompt is the question under either protocol.
/// </summary>
internal sealed class MmVetReader : BenchmarkReaderBase
{
    /// <summary>VLMEvalKit's file name and MD5 of the MM-Vet TSV (vlmeval/dataset/image_vqa.py @989e33b, spec §1.1).</summary>
    public const string TsvName = "MMVet.tsv", TsvMd5 = "748aa6d4aa9d4de798306a63718455e3";

    private const string JsonName = "mm-vet.json";

    public override string Name => "mm-vet";
    public override string Layout => "the unpacked mm-vet.zip (mm-vet/mm-vet.json + mm-vet/images/), or VLMEvalKit's MMVet.tsv (the file or its folder)";

    protected override IEnumerable<Candidate> Open(string root, ReaderSelection selection)
    {
        var protocol = Protocols.Check(selection.Prompts, Name);
        var tsv = File.Exists(root) && root.EndsWith(".tsv", StringComparison.OrdinalIgnoreCase) ? root
            : Directory.Exists(root) && File.Exists(Path.Combine(root, TsvName)) ? Path.Combine(root, TsvName) : null;
        if (tsv is not null) return FromTsv(tsv, protocol);
        var json = File.Exists(root) && Path.GetFileName(root) == JsonName ? Path.GetFullPath(root)
            : new[] { Path.Combine(root, JsonName), Path.Combine(root, "mm-vet", JsonName) }.FirstOrDefault(File.Exists);
        if (json is null)
            throw new BenchmarkLayoutException($"'{root}' is not an MM-Vet copy: expected {JsonName} (with images/ beside it) in it or in its mm-vet/ folder " +
                $"(unzip mm-vet.zip from github.com/yuweihao/MM-Vet/releases), or VLMEvalKit's {TsvName}");
        return FromJson(Path.GetFullPath(json), protocol);
    }

    private IEnumerable<Candidate> FromJson(string path, string protocol)
    {
        var dir = Path.GetDirectoryName(path)!;
        using var doc = JsonFields.Parse(path, JsonName, out var problem);
        if (doc is null) throw new BenchmarkLayoutException(problem!);
        if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new BenchmarkLayoutException($"{JsonName} is {JsonFields.Kind(doc.RootElement)}, expected an object keyed by sample id");
        var list = new List<Candidate>();
        foreach (var p in doc.RootElement.EnumerateObject())
        {
            var id = p.Name;
            var position = $"{JsonName}#{id}";
            if (p.Value.ValueKind != JsonValueKind.Object) { list.Add(Candidate.Bad(id, position, $"value is {JsonFields.Kind(p.Value)}, expected an object")); continue; }
            var v = p.Value;
            var question = JsonFields.Text(v, "question", out var pq);
            var answer = pq is null ? JsonFields.Text(v, "answer", out pq) : null;
            var image = pq is null ? JsonFields.Text(v, "imagename", out pq) : null;
            var caps = pq is null ? Capabilities(v, out pq) : null;
            if (pq is not null) { list.Add(Candidate.Bad(id, position, pq)); continue; }
            var file = DataPaths.Under(Path.Combine(dir, "images"), image!);
            var item = new MmVetItem(id, question!, answer!, caps!, new ImageRef.File(file));
            list.Add(Candidate.Ok(id, position, () =>
                ImageCheck.File(file, Rel(dir, file), dir) is { } bad ? ReadItem.Bad(id, $"field 'imagename': {bad}") : ReadItem.Of(item.Sample(Name, protocol))));
        }
        return list;
    }

    private static IReadOnlyList<string>? Capabilities(JsonElement v, out string? problem)
    {
        problem = null;
        if (!v.TryGetProperty("capability", out var c) || c.ValueKind != JsonValueKind.Array)
        {
            problem = $"field 'capability' is {(v.TryGetProperty("capability", out c) ? JsonFields.Kind(c) : "missing")}, expected a list of capability codes";
            return null;
        }
        var caps = new List<string>();
        foreach (var x in c.EnumerateArray())
        {
            if (x.ValueKind != JsonValueKind.String || x.GetString() is not { Length: > 0 } s) { problem = "field 'capability' holds a non-text item"; return null; }
            caps.Add(s);
        }
        if (caps.Count == 0) { problem = "field 'capability' is empty (MM-Vet reports scores per capability)"; return null; }
        return caps;
    }

    private IEnumerable<Candidate> FromTsv(string path, string protocol)
    {
        var tsv = VlmEvalTsv.Read(path, ["index", "image", "question", "answer", "category"]);
        var md5 = VlmEvalTsv.Md5(path);
        var md5Note = md5 == TsvMd5 ? $"{md5} (VLMEvalKit's {TsvName})" : $"{md5} (differs from VLMEvalKit's {TsvMd5}: VLMEvalKit itself would download its file again)";
        var name = Path.GetFileName(path);
        foreach (var (line, cells) in tsv.Rows)
        {
            var position = $"{name}#line{line}";
            var id = tsv.Cell(cells, "index");
            if (id.Length == 0) { yield return Candidate.Bad(null, position, "field 'index' is empty"); continue; }
            var images = tsv.Images(cells, out var problem);
            if (problem is null && images!.Count != 1) problem = images.Count == 0 ? "field 'image' is empty (VLMEvalKit drops rows without an image)" : $"field 'image' holds {images.Count} images, MM-Vet has one";
            if (problem is null && tsv.Cell(cells, "question").Trim().Length == 0) problem = "field 'question' is empty";
            var caps = tsv.Cell(cells, "category").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            if (problem is null && caps.Length == 0) problem = "field 'category' is empty (MM-Vet reports scores per capability)";
            if (problem is not null) { yield return Candidate.Bad(id, position, problem); continue; }
            var item = new MmVetItem(id, tsv.Cell(cells, "question"), tsv.Cell(cells, "answer"), caps, new ImageRef.Embedded(images![0], $"{position} image"));
            yield return Candidate.Ok(id, position, () =>
            {
                if (ParquetRows.Check(item.Image, "image") is { } bad) return ReadItem.Bad(id, bad);
                var sample = item.Sample(Name, protocol);
                return ReadItem.Of(sample with { Labels = new Dictionary<string, string>(sample.Labels) { ["tsv_md5"] = md5Note } });
            });
        }
    }
}

/// <summary>One MM-Vet sample: id, question, answer (with &lt;AND&gt; / &lt;OR&gt;), capabilities in file order, image.</summary>
internal sealed record MmVetItem(string Id, string Question, string Answer, IReadOnlyList<string> Capabilities, ImageRef Image)
{
    /// <summary>The sample: the question with the image (MM-Vet's inference and VLMEvalKit's dataset prompt alike), the capability set as its group.</summary>
    public EvalSample Sample(string benchmark, string protocol)
    {
        var prompt = new EvalPrompt(SampleKeys.Answer, Question, Image, null, Framing.FirstPersonInMethodRuns);
        var groups = new TextMap().Add("capabilities", string.Join(",", Capabilities)).Build();
        var labels = new TextMap().Add("answer", Answer).Add("question", Question).Add("capability", JsonSerializer.Serialize(Capabilities)).Add("prompts", protocol).Build();
        return new EvalSample(Id, benchmark, [prompt], groups, labels);
    }
}
