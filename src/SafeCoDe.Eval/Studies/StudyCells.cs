using System.Globalization;
using SafeCoDe.Eval.Benchmarks;
using SafeCoDe.Eval.Runs;

namespace SafeCoDe.Eval.Studies;

/// <summary>One cell of a study: a model, a benchmark and a method, and the RUN folder it writes.</summary>
/// <param name="Model">The plan's model.</param>
/// <param name="Benchmark">The plan's benchmark.</param>
/// <param name="Method">The plan's method.</param>
/// <param name="Dir">The cell's RUN folder.</param>
public sealed record StudyCell(PlanModel Model, PlanBenchmark Benchmark, PlanMethod Method, string Dir)
{
    /// <summary>"model/benchmark/method": the cell's name and its folder under <c>cells/</c>.</summary>
    public string Name => $"{Model.Name}/{Benchmark.Name}/{Method.Name}";

    /// <summary>
    /// The <c>eval run</c> command line of the cell: benchmark, data, model and RUN folder, the plan's shared generation
    /// settings, the method's options, the benchmark's options and scorer; <paramref name="extra"/> at the end.
    /// </summary>
    public List<string> RunArguments(StudyPlan plan, IEnumerable<string> extra)
    {
        var args = new List<string> { "eval", "run", "--benchmark", Benchmark.Benchmark, "--data", Benchmark.Data, "--model", Model.Path, "--out", Dir };
        foreach (var o in plan.Generation.Concat(Method.Options).Concat(Benchmark.Options)) args.AddRange(o.Words);
        if (Benchmark.Scorer is { } s) args.AddRange(["--scorer", s]);
        args.AddRange(extra);
        return args;
    }
}

/// <summary>Where a study's cells live and which samples each selects.</summary>
public static class StudyCells
{
    /// <summary>The cells' RUN folders: <c>STUDY/cells/MODEL/BENCHMARK/METHOD</c>.</summary>
    public static List<StudyCell> Of(StudyPlan plan, string studyDir, string? shardFolder = null) =>
        plan.Cells.Select(c => new StudyCell(c.Model, c.Benchmark, c.Method,
            Path.Combine(studyDir, shardFolder is null ? "cells" : Path.Combine("shards", shardFolder), c.Model.Name, c.Benchmark.Name, c.Method.Name))).ToList();

    /// <summary>
    /// The sample ids a benchmark of the plan selects, in reader order, as <c>eval run</c> selects them from the same
    /// options (splits, steps, kinds, subset, prompts, ids, limit; then the shard). <paramref name="readIds"/> reads an
    /// <c>ids</c> list file. Also the answers (prompts) each sample has.
    /// </summary>
    public static List<(string Id, int Answers)> Selected(PlanBenchmark b, Func<string, IReadOnlySet<string>> readIds, ShardSpec? shard = null)
    {
        string? One(string name) => b.Options.LastOrDefault(o => o.Name == name)?.Values.SingleOrDefault();
        IReadOnlySet<string>? Many(string name) => b.Options.LastOrDefault(o => o.Name == name) is { } o ? o.Values.ToHashSet() : null;
        var reader = BenchmarkReaders.Get(b.Benchmark);
        var subset = One("subset") is { } sn ? reader.Subsets.FirstOrDefault(s => string.Equals(s, sn.Trim(), StringComparison.OrdinalIgnoreCase)) ?? sn : null;
        var selection = new ReaderSelection(Many("splits"), Many("steps")?.Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToHashSet(), Many("kinds"),
            Subset: subset, Ids: One("ids") is { } file ? readIds(file) : null, Prompts: One("prompts"));
        int? limit = One("limit") is { } l ? int.Parse(l, CultureInfo.InvariantCulture) : null;
        var answers = new Dictionary<string, int>(StringComparer.Ordinal);
        var items = reader.Read(b.Data, selection).Select(i =>
        {
            if (i.Sample is { } s) answers[s.Id] = s.Prompts.Count;
            return i;
        });
        return new RunSelection(limit, shard).Ids(items).Select(id => (id, answers.GetValueOrDefault(id))).ToList();
    }
}
