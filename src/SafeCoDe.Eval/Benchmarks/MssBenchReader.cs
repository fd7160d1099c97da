using System.Text.Json;

namespace SafeCoDe.Eval.Benchmarks;

/// <summary>
/// MSSBench (HF <c>kzhou35/mssbench</c> snapshot): <c>combined.json</c> (upstream's harness opens <c>combine.json</c>;
/// both are accepted) = <c>{"chat": [...], "embodied": [...]}</c>, images as bare file names under <c>chat/</c> and
/// <c>embodied/</c>. One sample answers one query (chat) or one instruction pair (embodied) on both images.
/// </summary>
internal sealed class MssBenchReader : BenchmarkReaderBase
{
    public override string Name => "mssbench";
    public override string Layout => "the MSSBench snapshot folder (HF kzhou35/mssbench): combined.json (or combine.json), chat/, embodied/";

    private static readonly string[] JsonNames = ["combined.json", "combine.json"];
    private static readonly string[] SplitNames = ["chat", "embodied"];

    protected override IEnumerable<Candidate> Open(string root, ReaderSelection selection)
    {
        var dir = Path.GetFullPath(root);
        if (File.Exists(dir) && JsonNames.Contains(Path.GetFileName(dir), StringComparer.Ordinal)) dir = Path.GetDirectoryName(dir)!;
        var json = JsonNames.Select(n => Path.Combine(dir, n)).FirstOrDefault(File.Exists)
            ?? throw new BenchmarkLayoutException(
                $"'{root}' is not an MSSBench copy: expected combined.json (or combine.json) there, next to the image folders chat/ and embodied/ " +
                "(a snapshot of the Hugging Face dataset kzhou35/mssbench).");
        var splits = Selection.Check(selection.Splits, SplitNames, "split", Name);
        return Records(dir, json, splits);
    }

    private IEnumerable<Candidate> Records(string dir, string json, IReadOnlySet<string> splits)
    {
        var file = Path.GetFileName(json);
        using var doc = JsonFields.Parse(json, file, out var problem);
        if (doc is null) { yield return Candidate.Bad(null, file, problem!); yield break; }
        var top = doc.RootElement;
        if (top.ValueKind != JsonValueKind.Object)
        {
            yield return Candidate.Bad(null, file, $"'{file}' holds {JsonFields.Kind(top)}; expected an object with the lists 'chat' and 'embodied'");
            yield break;
        }
        foreach (var split in SplitNames)
        {
            if (!splits.Contains(split)) continue;
            if (!top.TryGetProperty(split, out var list) || list.ValueKind != JsonValueKind.Array)
            {
                var what = top.TryGetProperty(split, out var v) ? JsonFields.Kind(v) : "missing";
                yield return Candidate.Bad(null, split, $"'{file}': field '{split}' is {what}, expected a list of items");
                continue;
            }
            int i = 0;
            foreach (var item in list.EnumerateArray())
            {
                var records = split == "chat" ? Chat(dir, item, i) : Embodied(dir, item, i);
                foreach (var c in records) yield return c;
                i++;
            }
        }
    }

    private IEnumerable<Candidate> Chat(string dir, JsonElement item, int i)
    {
        var at = $"chat/{i}";
        if (item.ValueKind != JsonValueKind.Object) { yield return Candidate.Bad(null, at, $"chat[{i}] is {JsonFields.Kind(item)}, expected an object"); yield break; }
        if (!item.TryGetProperty("queries", out var queries) || queries.ValueKind != JsonValueKind.Array)
        {
            var what = item.TryGetProperty("queries", out var q) ? JsonFields.Kind(q) : "missing";
            yield return Candidate.Bad(null, at, $"field 'queries' is {what}, expected a list of strings");
            yield break;
        }
        if (queries.GetArrayLength() == 0) { yield return Candidate.Bad(null, at, "field 'queries' is empty: the item has no samples"); yield break; }
        var safePath = JsonFields.Text(item, "safe_image_path", out var safeProblem);
        var unsafePath = JsonFields.Text(item, "unsafe_image_path", out var unsafeProblem);
        var type = JsonFields.Group(item, "Type", out var typeProblem);
        if (type is null && typeProblem is null) type = JsonFields.Group(item, "type", out typeProblem);
        var groups = new TextMap().Add(SampleKeys.Split, "chat").Add(SampleKeys.Type, type).Build();
        int j = 0;
        foreach (var q in queries.EnumerateArray())
        {
            var id = $"{at}/q{j}";
            var query = q.ValueKind == JsonValueKind.String ? q.GetString() : null;
            string? problem = query is null ? $"queries[{j}] is {JsonFields.Kind(q)}, expected a string"
                : string.IsNullOrWhiteSpace(query) ? $"queries[{j}] is empty"
                : safeProblem ?? unsafeProblem ?? typeProblem;
            if (problem is not null) yield return Candidate.Bad(id, id, problem);
            else
            {
                var labels = new TextMap().Add("item", i.ToString(System.Globalization.CultureInfo.InvariantCulture)).Add("query", query)
                    .Add("intent", JsonFields.Optional(item, "intent"))
                    .Add("unsafe_image", Strip(JsonFields.Optional(item, "unsafe_image")))
                    .Add("reason", Strip(JsonFields.Optional(item, "reason"))).Build();
                string s = safePath!, u = unsafePath!, qq = query!;
                yield return Candidate.Ok(id, id, () => Pair(id, dir, "chat", s, u, qq, qq, Framing.MssChat, groups, labels));
            }
            j++;
        }
    }

    private IEnumerable<Candidate> Embodied(string dir, JsonElement item, int i)
    {
        var at = $"embodied/{i}";
        if (item.ValueKind != JsonValueKind.Object) { yield return Candidate.Bad(null, at, $"embodied[{i}] is {JsonFields.Kind(item)}, expected an object"); yield break; }
        var pairs = InstructionPairs(item, out var pairProblem);
        if (pairs is null) { yield return Candidate.Bad(null, at, pairProblem!); yield break; }
        var safePath = JsonFields.Text(item, "safe", out var safeProblem);
        var unsafePath = JsonFields.Text(item, "unsafe", out var unsafeProblem);
        var category = JsonFields.Group(item, "category", out var categoryProblem);
        var groups = new TextMap().Add(SampleKeys.Split, "embodied").Add(SampleKeys.Category, category).Build();
        for (int k = 0; k < pairs.Count; k++)
        {
            var id = $"{at}/p{k}";
            var (safeInstr, unsafeInstr, problem) = pairs[k];
            problem ??= safeProblem ?? unsafeProblem ?? categoryProblem;
            if (problem is not null) { yield return Candidate.Bad(id, id, problem); continue; }
            var labels = new TextMap().Add("item", i.ToString(System.Globalization.CultureInfo.InvariantCulture))
                .Add("task", JsonFields.Optional(item, "task"))
                .Add("safe_instruction", safeInstr).Add("unsafe_instruction", unsafeInstr)
                .Add("observation_safe", JsonFields.Optional(item, "observation_safe"))
                .Add("observation_unsafe", JsonFields.Optional(item, "observation_unsafe")).Build();
            string s = safePath!, u = unsafePath!, si = safeInstr!, ui = unsafeInstr!;
            yield return Candidate.Ok(id, id, () => Pair(id, dir, "embodied", s, u, si, ui, Framing.MssEmbodied, groups, labels));
        }
    }

    /// <summary>
    /// The instruction pairs as the reference pairs them: <c>zip(safe_instructions, unsafe_instructions)</c> (the
    /// longer list's tail is dropped); items carrying only the singular fields give one pair.
    /// </summary>
    private static List<(string? Safe, string? Unsafe, string? Problem)>? InstructionPairs(JsonElement item, out string? problem)
    {
        problem = null;
        item.TryGetProperty("safe_instructions", out var sl);
        item.TryGetProperty("unsafe_instructions", out var ul);
        bool hasLists = sl.ValueKind is not (JsonValueKind.Undefined or JsonValueKind.Null)
                        || ul.ValueKind is not (JsonValueKind.Undefined or JsonValueKind.Null);
        if (!hasLists)
        {
            var s = JsonFields.Text(item, "safe_instruction", out var ps);
            var u = JsonFields.Text(item, "unsafe_instruction", out var pu);
            if (s is null && u is null && ps!.Contains("missing") && pu!.Contains("missing"))
            {
                problem = "fields 'safe_instructions' and 'unsafe_instructions' are missing";
                return null;
            }
            return [(s, u, ps ?? pu)];
        }
        foreach (var (name, v) in new[] { ("safe_instructions", sl), ("unsafe_instructions", ul) })
            if (v.ValueKind != JsonValueKind.Array)
            {
                problem = $"field '{name}' is {(v.ValueKind == JsonValueKind.Undefined ? "missing" : JsonFields.Kind(v))}, expected a list of strings";
                return null;
            }
        int n = Math.Min(sl.GetArrayLength(), ul.GetArrayLength());
        if (n == 0) { problem = "fields 'safe_instructions'/'unsafe_instructions' hold no instruction pair"; return null; }
        var pairs = new List<(string?, string?, string?)>(n);
        for (int k = 0; k < n; k++)
        {
            var s = Item(sl[k], "safe_instructions", k, out var ps);
            var u = Item(ul[k], "unsafe_instructions", k, out var pu);
            pairs.Add((s, u, ps ?? pu));
        }
        return pairs;
    }

    private static string? Item(JsonElement v, string list, int k, out string? problem)
    {
        problem = null;
        if (v.ValueKind != JsonValueKind.String) { problem = $"{list}[{k}] is {JsonFields.Kind(v)}, expected a string"; return null; }
        var s = v.GetString()!;
        if (string.IsNullOrWhiteSpace(s)) { problem = $"{list}[{k}] is empty"; return null; }
        return s;
    }

    private ReadItem Pair(string id, string dir, string split, string safeName, string unsafeName, string safeQ, string unsafeQ,
        Framing framing, IReadOnlyDictionary<string, string> groups, IReadOnlyDictionary<string, string> labels)
    {
        var safe = Resolve(dir, split, safeName, out var ps);
        var unsafeImg = Resolve(dir, split, unsafeName, out var pu);
        if (ps is not null || pu is not null) return ReadItem.Bad(id, string.Join("; ", new[] { ps, pu }.Where(p => p is not null)));
        return ReadItem.Of(new EvalSample(id, Name,
            [new EvalPrompt(SampleKeys.Safe, safeQ, new ImageRef.File(safe), null, framing),
             new EvalPrompt(SampleKeys.Unsafe, unsafeQ, new ImageRef.File(unsafeImg), null, framing)],
            groups, labels));
    }

    /// <summary>Image names are bare file names under the split's folder; a name that already carries the folder is accepted too.</summary>
    private static string Resolve(string dir, string split, string name, out string? problem)
    {
        var path = DataPaths.Under(Path.Combine(dir, split), name);
        if (!File.Exists(path))
        {
            var alt = DataPaths.Under(dir, name);
            if (File.Exists(alt)) path = alt;
        }
        problem = ImageCheck.File(path, Rel(dir, path), dir);
        return path;
    }

    /// <summary>Descriptions in the data sometimes start with a stray ':' (and '*'/spaces) left over from generation.</summary>
    private static string? Strip(string? s) => s?.TrimStart(':', '*', ' ', '\t');
}
