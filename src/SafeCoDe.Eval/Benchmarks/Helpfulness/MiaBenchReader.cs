using System.Globalization;
using System.Text.Json;

namespace SafeCoDe.Eval.Benchmarks.Helpfulness;

/// <summary>
/// MIA-Bench, in either layout: Apple's <c>instruction_benchmark_all.json</c> (a list of 400 objects: <c>image</c> (a
/// URL), <c>instruction</c>, <c>type</c>, <c>num_of_component</c>, <c>components</c>, <c>component_weight</c>,
/// <c>component_type</c>) with the images downloaded into <c>images/</c> beside it under the URL's file name, or
/// VLMEvalKit's <c>MIA-Bench.tsv</c> (also its legacy name <c>Mia-Bench.tsv</c>; base64 images, the lists as Python list
/// text; its MD5 is checked against VLMEvalKit's and recorded per sample). Ids are the position in the json list (the
/// TSV's <c>index</c>): MIA-Bench's own notebook pairs answers with items by position.
/// </summary>
internal sealed class MiaBenchReader : BenchmarkReaderBase
{
    /// <summary>VLMEvalKit's file names and MD5 of the MIA-Bench TSV (vlmeval/dataset/miabench.py @989e33b, spec §1.1).</summary>
    public const string TsvName = "MIA-Bench.tsv", LegacyTsvName = "Mia-Bench.tsv", TsvMd5 = "0b9de595f4dd40af18a69b94d89aba82";

    private const string JsonName = "instruction_benchmark_all.json";

    public override string Name => "mia-bench";
    public override string Layout => "a clone of apple/ml-mia-bench (instruction_benchmark_all.json) with the images downloaded into images/ beside it, or VLMEvalKit's MIA-Bench.tsv (the file or its folder)";

    protected override IEnumerable<Candidate> Open(string root, ReaderSelection selection)
    {
        var protocol = Protocols.Check(selection.Prompts, Name);
        var tsv = File.Exists(root) && root.EndsWith(".tsv", StringComparison.OrdinalIgnoreCase) ? root
            : Directory.Exists(root) ? new[] { TsvName, LegacyTsvName }.Select(n => Path.Combine(root, n)).FirstOrDefault(File.Exists) : null;
        if (tsv is not null) return FromTsv(tsv, protocol);
        var json = File.Exists(root) && Path.GetFileName(root) == JsonName ? root : Path.Combine(root, JsonName);
        if (!File.Exists(json))
            throw new BenchmarkLayoutException($"'{root}' is not a MIA-Bench copy: expected {JsonName} in it (git clone https://github.com/apple/ml-mia-bench, " +
                $"then download every item's image URL into images/), or VLMEvalKit's {TsvName}");
        return FromJson(Path.GetFullPath(json), protocol);
    }

    private IEnumerable<Candidate> FromJson(string path, string protocol)
    {
        var dir = Path.GetDirectoryName(path)!;
        var images = Path.Combine(dir, "images");
        using var doc = JsonFields.Parse(path, JsonName, out var problem);
        if (doc is null) throw new BenchmarkLayoutException(problem!);
        if (doc.RootElement.ValueKind != JsonValueKind.Array) throw new BenchmarkLayoutException($"{JsonName} is {JsonFields.Kind(doc.RootElement)}, expected a list of items");
        var list = new List<Candidate>();
        int k = 0;
        foreach (var v in doc.RootElement.EnumerateArray())
        {
            var id = (k++).ToString(CultureInfo.InvariantCulture);
            var position = $"{JsonName}#{id}";
            if (v.ValueKind != JsonValueKind.Object) { list.Add(Candidate.Bad(id, position, $"item is {JsonFields.Kind(v)}, expected an object")); continue; }
            var instruction = JsonFields.Text(v, "instruction", out var p);
            var url = p is null ? JsonFields.Text(v, "image", out p) : null;
            var components = p is null ? Texts(v, "components", out p) : null;
            var types = p is null ? Texts(v, "component_type", out p) : null;
            var weights = p is null ? Weights(v, out p) : null;
            if (p is not null) { list.Add(Candidate.Bad(id, position, p)); continue; }
            var declared = v.TryGetProperty("num_of_component", out var n) && n.TryGetInt32(out var nn) ? nn : components!.Count;
            var item = MiaItem.Create(id, instruction!, components!, weights!, types!, declared, JsonFields.Optional(v, "type"), url, out p);
            if (p is not null) { list.Add(Candidate.Bad(id, position, p)); continue; }
            var name = Uri.TryCreate(url, UriKind.Absolute, out var u) ? Path.GetFileName(u.LocalPath) : Path.GetFileName(url!);
            var file = DataPaths.Under(images, name);
            list.Add(Candidate.Ok(id, position, () =>
                ImageCheck.File(file, $"images/{name}", dir) is { } bad
                    ? ReadItem.Bad(id, $"field 'image' ({url}): {bad} (download the image into images/ under its file name)")
                    : ReadItem.Of((item! with { Image = new ImageRef.File(file) }).Sample(Name, protocol))));
        }
        return list;
    }

    private static IReadOnlyList<string>? Texts(JsonElement v, string field, out string? problem)
    {
        problem = null;
        if (!v.TryGetProperty(field, out var a) || a.ValueKind != JsonValueKind.Array) { problem = $"field '{field}' is {(v.TryGetProperty(field, out a) ? JsonFields.Kind(a) : "missing")}, expected a list"; return null; }
        var list = new List<string>();
        foreach (var x in a.EnumerateArray())
        {
            if (x.ValueKind != JsonValueKind.String) { problem = $"field '{field}' holds {JsonFields.Kind(x)}, expected text"; return null; }
            list.Add(x.GetString()!);
        }
        return list;
    }

    private static IReadOnlyList<string>? Weights(JsonElement v, out string? problem)
    {
        problem = null;
        if (!v.TryGetProperty("component_weight", out var a) || a.ValueKind != JsonValueKind.Array) { problem = "field 'component_weight' is not a list"; return null; }
        var list = new List<string>();
        foreach (var x in a.EnumerateArray())
        {
            // the prompt prints a weight as Python's str() does (JSON integers as integers)
            if (x.ValueKind != JsonValueKind.Number) { problem = $"field 'component_weight' holds {JsonFields.Kind(x)}, expected numbers"; return null; }
            list.Add(x.TryGetInt64(out var i) ? i.ToString(CultureInfo.InvariantCulture) : MathVistaAnswers.PyRepr(x.GetDouble()));
        }
        return list;
    }

    private IEnumerable<Candidate> FromTsv(string path, string protocol)
    {
        var tsv = VlmEvalTsv.Read(path, ["index", "image", "question", "components", "component_weight", "component_type", "num_of_component"]);
        var md5 = VlmEvalTsv.Md5(path);
        var md5Note = md5 == TsvMd5 ? $"{md5} (VLMEvalKit's {TsvName})" : $"{md5} (differs from VLMEvalKit's {TsvMd5}: VLMEvalKit itself would download its file again)";
        var name = Path.GetFileName(path);
        foreach (var (line, cells) in tsv.Rows)
        {
            var position = $"{name}#line{line}";
            var id = tsv.Cell(cells, "index");
            if (id.Length == 0) { yield return Candidate.Bad(null, position, "field 'index' is empty"); continue; }
            var item = TsvItem(tsv, cells, id, position, out var problem);
            if (problem is not null) { yield return Candidate.Bad(id, position, problem); continue; }
            yield return Candidate.Ok(id, position, () =>
            {
                if (ParquetRows.Check(item!.Image!, "image") is { } bad) return ReadItem.Bad(id, bad);
                var sample = item.Sample(Name, protocol);
                return ReadItem.Of(sample with { Labels = new Dictionary<string, string>(sample.Labels) { ["tsv_md5"] = md5Note } });
            });
        }
    }

    private static MiaItem? TsvItem(VlmEvalTsv tsv, string[] cells, string id, string position, out string? problem)
    {
        var images = tsv.Images(cells, out problem);
        if (problem is not null) return null;
        if (images!.Count != 1) { problem = images.Count == 0 ? "field 'image' is empty (VLMEvalKit drops rows without an image)" : $"field 'image' holds {images.Count} images, MIA-Bench has one"; return null; }
        var question = tsv.Cell(cells, "question");
        if (question.Trim().Length == 0) { problem = "field 'question' is empty"; return null; }
        var lists = new Dictionary<string, IReadOnlyList<string>>();
        foreach (var col in new[] { "components", "component_weight", "component_type" })
        {
            var l = PythonLiteral.List(tsv.Cell(cells, col), out var why);
            if (l is null || l.Any(x => x is null)) { problem = $"field '{col}' {why ?? "holds None"}"; return null; }
            lists[col] = l.Select(x => x!).ToList();
        }
        if (!int.TryParse(tsv.Cell(cells, "num_of_component"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var n)) { problem = $"field 'num_of_component' is '{tsv.Cell(cells, "num_of_component")}', expected an integer"; return null; }
        var item = MiaItem.Create(id, question, lists["components"], lists["component_weight"], lists["component_type"], n, tsv.Cell(cells, "type") is { Length: > 0 } t ? t : null, null, out problem);
        return item is null ? null : item with { Image = new ImageRef.Embedded(images[0], $"{position} image") };
    }
}

/// <summary>
/// One MIA-Bench item: the instruction, its components with their weights (as the prompt prints them) and types, the
/// declared number of components, the instruction type (basic … creative) and the image.
/// </summary>
internal sealed record MiaItem(string Id, string Instruction, IReadOnlyList<string> Components, IReadOnlyList<string> Weights,
    IReadOnlyList<string> Types, int Declared, string? Type, string? Url)
{
    /// <summary>The image (set once the layout has found it).</summary>
    public ImageRef? Image { get; init; }

    /// <summary>An item whose lists agree in length and whose component count both graders can phrase (1-5); else null and why.</summary>
    public static MiaItem? Create(string id, string instruction, IReadOnlyList<string> components, IReadOnlyList<string> weights, IReadOnlyList<string> types,
        int declared, string? type, string? url, out string? problem)
    {
        problem = components.Count is < 1 or > 5 ? $"field 'components' has {components.Count} items; the graders phrase 1 to 5"
            : weights.Count != components.Count ? $"field 'component_weight' has {weights.Count} items for {components.Count} components"
            : types.Count != components.Count ? $"field 'component_type' has {types.Count} items for {components.Count} components"
            : declared != components.Count ? $"field 'num_of_component' is {declared} for {components.Count} components"
            : null;
        return problem is null ? new MiaItem(id, instruction, components, weights, types, declared, type, url) : null;
    }

    /// <summary>The sample: the instruction with the image, the instruction type as its group, the grader's labels.</summary>
    public EvalSample Sample(string benchmark, string protocol)
    {
        var prompt = new EvalPrompt(SampleKeys.Answer, Instruction, Image, null, Framing.FirstPersonInMethodRuns);
        var groups = new TextMap().Add(SampleKeys.Type, Type).Build();
        var labels = new TextMap().Add("instruction", Instruction).Add("components", JsonSerializer.Serialize(Components))
            .Add("component_weight", JsonSerializer.Serialize(Weights)).Add("component_type", JsonSerializer.Serialize(Types))
            .Add("url", Url).Add("prompts", protocol).Build();
        return new EvalSample(Id, benchmark, [prompt], groups, labels);
    }
}
