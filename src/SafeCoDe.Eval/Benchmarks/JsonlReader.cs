using System.Text;
using System.Text.Json;

namespace SafeCoDe.Eval.Benchmarks;

/// <summary>
/// A user's own prompt set: a JSON Lines file, one object per line with <c>id</c>, <c>prompt</c>, <c>image</c> (a path
/// relative to the file, under its folder: see <see cref="DataFiles"/>) and optionally <c>system</c> and <c>language</c>
/// (what the keyword scorer picks its refusal phrases by; absent means English). Blank lines are skipped; a line longer
/// than <see cref="SafeCoDe.Torch.Runtime.InputLimits.MaxJsonlLineBytes"/> is one problem.
/// </summary>
internal sealed class JsonlReader : BenchmarkReaderBase
{
    public override string Name => "jsonl";
    public override string Layout => "a .jsonl file: one JSON object per line with \"id\", \"prompt\", \"image\" (relative to the file) and optional \"system\"";

    protected override IEnumerable<Candidate> Open(string root, ReaderSelection selection)
    {
        var path = Path.GetFullPath(root);
        if (File.Exists(path) && SafeCoDe.Torch.Runtime.BoundedFile.FileKind(path) is { } kind and not "regular file")
            throw new BenchmarkLayoutException($"'{root}' is a {kind}, not a regular file: --data for jsonl is a JSON Lines file");
        if (!File.Exists(path))
            throw new BenchmarkLayoutException(
                $"'{root}' is not a file: --data for jsonl is a JSON Lines file, one object per line with \"id\", \"prompt\", " +
                "\"image\" (a path relative to the file) and optional \"system\".");
        return Records(path);
    }

    private IEnumerable<Candidate> Records(string path)
    {
        var file = Path.GetFileName(path);
        var dir = Path.GetDirectoryName(path)!;
        using var stream = SafeCoDe.Torch.Runtime.BoundedFile.OpenRead(path, "prompt file");
        foreach (var line in SafeCoDe.Torch.Runtime.BoundedLines.Read(stream, SafeCoDe.Torch.Runtime.InputLimits.Current.MaxJsonlLineBytes))
        {
            if (line.Problem is not null) { yield return Candidate.Bad(null, $"{file}#line{line.Number}", line.Problem); continue; }
            if (string.IsNullOrWhiteSpace(line.Text)) continue;
            yield return Record(dir, line.Text, $"{file}#line{line.Number}");
        }
    }

    private Candidate Record(string dir, string line, string position)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(line, JsonFields.Options); }
        catch (JsonException ex) { return Candidate.Bad(null, position, $"not valid JSON: {ex.Message}"); }
        using (doc)
        {
            var r = doc.RootElement;
            if (r.ValueKind != JsonValueKind.Object) return Candidate.Bad(null, position, $"the line holds {JsonFields.Kind(r)}, expected an object");
            string? id = null;
            if (r.TryGetProperty("id", out var idv))
                id = idv.ValueKind switch
                {
                    JsonValueKind.String when !string.IsNullOrWhiteSpace(idv.GetString()) => idv.GetString(),
                    JsonValueKind.Number => idv.GetRawText(), // numeric ids are common in hand-made sets: their text is the id
                    _ => null,
                };
            if (id is null)
                return Candidate.Bad(null, position, idv.ValueKind == JsonValueKind.Undefined ? "field 'id' is missing" : $"field 'id' is {(idv.ValueKind == JsonValueKind.String ? "empty" : JsonFields.Kind(idv))}");
            var prompt = JsonFields.Text(r, "prompt", out var problem);
            var image = problem is null ? JsonFields.Text(r, "image", out problem) : null;
            string? system = null;
            if (problem is null && r.TryGetProperty("system", out var sv) && sv.ValueKind != JsonValueKind.Null)
            {
                if (sv.ValueKind != JsonValueKind.String) problem = $"field 'system' is {JsonFields.Kind(sv)}, expected a string";
                else system = sv.GetString();
            }
            var language = problem is null ? JsonFields.Group(r, SampleKeys.Language, out problem, "the keyword scorer picks its refusal phrases by it") : null;
            if (problem is not null) return Candidate.Bad(id, position, problem);
            var labels = new TextMap().Add(SampleKeys.Language, language).Build();
            string q = prompt!, img = image!, sid = id;
            return Candidate.Ok(id, position, () =>
            {
                var full = DataPaths.Under(dir, img);
                if (ImageCheck.File(full, img, dir) is { } bad) return ReadItem.Bad(sid, $"field 'image': {bad}");
                return ReadItem.Of(new EvalSample(sid, Name,
                    [new EvalPrompt(SampleKeys.Answer, q, new ImageRef.File(full), string.IsNullOrEmpty(system) ? null : system, Framing.Bare)],
                    new Dictionary<string, string>(), labels));
            });
        }
    }
}
