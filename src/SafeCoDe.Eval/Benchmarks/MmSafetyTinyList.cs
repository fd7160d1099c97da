using System.Globalization;
using System.Text.Json;

namespace SafeCoDe.Eval.Benchmarks;

/// <summary>
/// MM-SafetyBench's tiny subset: <c>TinyVersion_ID_List.json</c> at the top of a clone, a list of
/// <c>{"Scenario": "&lt;file stem&gt;", "Sampled_ID_List": [qid, …]}</c> (qids as numbers; text is accepted too).
/// </summary>
internal sealed class MmSafetyTinyList
{
    /// <summary>The file's name as the repository ships it.</summary>
    public const string File = "TinyVersion_ID_List.json";

    private readonly List<(string Scenario, string Qid)> _listed = [];
    private readonly HashSet<(string, string)> _wanted = [];
    private readonly HashSet<(string, string)> _met = [];

    /// <summary>
    /// Reads the list from <paramref name="root"/> (what <c>--data</c> named) or the data folder under it; a missing or
    /// malformed file is a <see cref="BenchmarkLayoutException"/> saying what was expected.
    /// </summary>
    public static MmSafetyTinyList Read(string root, string dataRoot)
    {
        var path = new[] { root, dataRoot }.Select(d => Path.Combine(d, File)).FirstOrDefault(System.IO.File.Exists)
            ?? throw new BenchmarkLayoutException(
                $"--subset tiny needs {File} (at the top of a clone of isXinLiu/MM-SafetyBench); it is not in '{root}'. " +
                "Pass the clone itself as --data, or give the ids with --ids FILE.");
        using var doc = JsonFields.Parse(path, File, out var problem) ?? throw new BenchmarkLayoutException(problem!);
        if (doc.RootElement.ValueKind != JsonValueKind.Array)
            throw new BenchmarkLayoutException($"'{File}' holds {JsonFields.Kind(doc.RootElement)}; expected a list of {{\"Scenario\", \"Sampled_ID_List\"}} objects");
        var list = new MmSafetyTinyList();
        int i = 0;
        foreach (var entry in doc.RootElement.EnumerateArray())
        {
            if (entry.ValueKind != JsonValueKind.Object)
                throw new BenchmarkLayoutException($"'{File}' entry {i} is {JsonFields.Kind(entry)}, expected an object");
            var scenario = JsonFields.Text(entry, "Scenario", out var ps);
            if (ps is not null) throw new BenchmarkLayoutException($"'{File}' entry {i}: {ps}");
            if (!entry.TryGetProperty("Sampled_ID_List", out var ids) || ids.ValueKind != JsonValueKind.Array)
                throw new BenchmarkLayoutException($"'{File}' entry {i} ({scenario}): field 'Sampled_ID_List' is missing or not a list of question ids");
            foreach (var id in ids.EnumerateArray()) list.Add(scenario!, Qid(id, i, scenario!));
            i++;
        }
        return list;
    }

    private static string Qid(JsonElement id, int entry, string scenario) => id.ValueKind switch
    {
        JsonValueKind.Number when id.TryGetInt64(out var n) => n.ToString(CultureInfo.InvariantCulture),
        JsonValueKind.String when !string.IsNullOrWhiteSpace(id.GetString()) => id.GetString()!,
        _ => throw new BenchmarkLayoutException($"'{File}' entry {entry} ({scenario}): Sampled_ID_List holds {JsonFields.Kind(id)} '{id.GetRawText()}', expected a question id"),
    };

    private void Add(string scenario, string qid)
    {
        if (_wanted.Add((scenario, qid))) _listed.Add((scenario, qid));
    }

    /// <summary>Whether the question is in the subset (and notes that it was found).</summary>
    public bool Take(string scenario, string qid)
    {
        if (!_wanted.Contains((scenario, qid))) return false;
        _met.Add((scenario, qid));
        return true;
    }

    /// <summary>The listed questions no question file held, in list order.</summary>
    public IEnumerable<(string Scenario, string Qid)> NotMet() => _listed.Where(x => !_met.Contains(x));
}
