using System.CommandLine;
using System.Globalization;
using SafeCoDe.Eval.Runs;
using SafeCoDe.Eval.Studies;
using SafeCoDe.Torch.Decoding.Methods;

namespace SafeCoDe.Cli;

/// <summary>
/// <c>safecode eval study PLAN</c>: every cell of a plan (model × benchmark × method) as an ordinary <c>eval run</c>
/// into its own RUN folder under the study folder, then the study report. Each cell is run through the very
/// <c>eval run</c> command line, so resume, <c>--shard</c>, merge and re-scoring hold per cell.
/// </summary>
public static class EvalStudyCommand
{
    /// <summary>Builds <c>eval study</c>.</summary>
    public static Command Create()
    {
        var plan = new Argument<string>("PLAN") { Description = "The plan file (.yaml, .yml or .json): name, models, methods (with options), benchmarks (data, scorer, metric_set, metrics, options), generation, baseline, out — see docs/studies.md" };
        var outDir = new Option<string>("--out", "-o") { Description = "The study folder (cells/MODEL/BENCHMARK/METHOD, report.md, report.json, report.html) [default: the plan's out]", HelpName = "DIR" }.Folder();
        var dryRun = new Option<bool>("--dry-run") { Description = "List the cells, their samples and answers, the extra calls each answer costs and how far each cell is; run nothing" };
        var shard = new Option<string>("--shard") { Description = "i/n: run shard i of n of every cell (split by sample, as eval run --shard) into shards/i-of-n/; auto: from a Slurm array or a Kubernetes indexed Job. Then 'eval study PLAN --merge'", HelpName = "i/n|auto" };
        var shardCount = new Option<int>("--shard-count") { Description = "Number of shards for --shard auto in a Kubernetes indexed Job [default: SAFECODE_SHARD_COUNT]", HelpName = "N" };
        var cell = new Option<string[]>("--cell") { Description = "Run only these cells (MODEL/BENCHMARK/METHOD as --dry-run lists them; several allowed); a job array can split a study by cell", HelpName = "NAME", AllowMultipleArgumentsPerToken = true };
        var merge = new Option<bool>("--merge") { Description = "Merge every cell's shard folders (shards/*/) into its cell folder, then write the report" };
        var reportOnly = new Option<bool>("--report") { Description = "Write the report of what the cells hold now; run nothing" };
        var quiet = CliOptions.Quiet();
        var cmd = new Command("study", """
            Run a study: every model × benchmark × method of PLAN as an eval run into STUDY/cells/MODEL/BENCHMARK/METHOD,
            with the plan's one set of generation settings, then STUDY/report.md and report.json: methods × benchmark
            metrics with counts and 95 % intervals, each method's paired change against the baseline with its
            p-value, the cells' unresolved samples and answers, the generation settings, metric sets and scorers.
            report.html shows the same tables and the charts in one file that opens from disk, with a sample browser:
            every method's answer to each sample side by side, filtered by category, outcome, verdict or the answers
            that flipped between two methods. Rerunning resumes every cell. Exits 1 while anything is unresolved
            (failed or missing samples, scoring errors, unscored answers), 2 on a plan error (which names the line
            and field).
            """) { plan, outDir, dryRun, shard, shardCount, cell, merge, reportOnly, quiet };
        Cli.SetExamples(cmd,
            "safecode eval study docs/examples/safescenes-study.yaml --dry-run",
            "safecode eval study plan.yaml --out studies/paper",
            "safecode eval study plan.yaml --shard auto   # in a Slurm array; then: safecode eval study plan.yaml --merge",
            "safecode eval score studies/paper/cells/llava/mssbench/safecode --scorer openai   # re-score one cell, then --report");
        cmd.SetHandler((p, io) =>
        {
            StudyPlan study;
            try { study = StudyPlan.Load(p.GetValue(plan)!); }
            catch (StudyPlanException ex) { throw new UsageException(ex.Message); }
            var dir = p.GetValue(outDir) ?? study.Out ?? throw new UsageException($"{study.File}: no study folder: give --out DIR or out: DIR in the plan");
            ShardSpec? sh = null;
            if (p.GetValue(shard) is { } text)
            {
                try { sh = ShardSpec.Parse(text, p.Given(shardCount) ? p.GetValue(shardCount) : null); }
                catch (FormatException ex) { throw new UsageException(ex.Message); }
            }
            if (sh is not null && (p.GetValue(merge) || p.GetValue(reportOnly))) throw new UsageException("--shard runs one shard; --merge and --report combine the shards afterwards: give one of them");
            var cells = StudyCells.Of(study, dir, sh is null ? null : $"{sh.Index}-of-{sh.Count}");
            var all = StudyCells.Of(study, dir);
            if (p.GetValue(cell) is { Length: > 0 } only)
            {
                foreach (var name in only.Where(n => cells.All(c => c.Name != n)))
                    throw new UsageException($"--cell {name}: the plan has the cells {string.Join(", ", cells.Select(c => c.Name))}");
                cells = cells.Where(c => only.Contains(c.Name)).ToList();
            }
            foreach (var c in all) Check(study, c);
            var steps = study.Methods.ToDictionary(m => m, m => Steps(study, m));
            var selected = new Dictionary<string, List<(string Id, int Answers)>>();
            IReadOnlyList<(string Id, int Answers)> Selected(PlanBenchmark b)
            {
                if (!selected.TryGetValue(b.Name, out var list))
                {
                    try { selected[b.Name] = list = StudyCells.Selected(b, f => IdList.Read(f).Ids, sh); }
                    catch (Eval.Benchmarks.BenchmarkLayoutException ex) { throw new UsageException($"{b.Where}: data {b.Data}: {ex.Message}"); }
                    catch (FormatException ex) { throw new UsageException($"{b.Where}: {ex.Message}"); }
                }
                return list;
            }
            if (p.GetValue(dryRun)) return DryRun(study, dir, cells, steps, Selected, io);
            if (p.GetValue(merge)) Merge(all, dir, io);
            int failedCells = 0;
            if (!p.GetValue(merge) && !p.GetValue(reportOnly))
            {
                foreach (var (c, i) in cells.Select((c, i) => (c, i)))
                {
                    var n = Selected(c.Benchmark).Count;
                    io.Error.WriteLine($"safecode eval study: cell {i + 1}/{cells.Count} {c.Name} — {n} sample(s) → {c.Dir}");
                    int code = Cli.Run([.. c.RunArguments(study, [.. sh is null ? Array.Empty<string>() : ["--shard", sh.ToString()], .. p.GetValue(quiet) ? ["--quiet"] : Array.Empty<string>()])], io.Out, io.Error);
                    if (code == ExitCodes.Failed) { failedCells++; continue; }
                    if (code != ExitCodes.Ok)
                        throw new UsageException($"cell {c.Name} stopped with exit code {code} (its error is above); the plan's options of the cell: {c.Method.Where}, {c.Benchmark.Where}");
                }
            }
            if (sh is not null)
            {
                io.Out.WriteLine($"{dir}: shard {sh} of {cells.Count} cell(s) written under shards/; when every shard is done: safecode eval study {p.GetValue(plan)} --merge");
                return failedCells > 0 ? ExitCodes.Failed : ExitCodes.Ok;
            }
            var results = StudyReport.Collect(study, all, study.Benchmarks.ToDictionary(b => b.Name, b => (IReadOnlyList<string>)Selected(b).Select(x => x.Id).ToList()));
            var (md, json, html) = StudyReport.Write(study, results, dir);
            int unresolved = results.Sum(r => r.Unresolved);
            foreach (var r in results.Where(r => r.Unresolved > 0))
                io.Error.WriteLine($"safecode eval study: {r.Cell.Name}: {(r.Metrics is null ? "not run" : $"{r.Missing} sample(s) without a record, {r.Metrics.ScoreErrors} scoring error(s), {r.Metrics.Unscored} unscored answer(s)")}");
            io.Out.WriteLine($"{dir}: {results.Count(r => r.Metrics is not null)}/{results.Count} cell(s), {unresolved} unresolved — written: {md}, {json}, {html} (open it in a browser)");
            return unresolved > 0 || failedCells > 0 ? ExitCodes.Failed : ExitCodes.Ok;
        });
        return cmd;
    }

    /// <summary>Parses a cell's <c>eval run</c> command line before anything runs; an option it does not take is a plan error naming where the plan wrote it.</summary>
    private static void Check(StudyPlan plan, StudyCell cell)
    {
        var parse = Cli.BuildRoot().Parse(cell.RunArguments(plan, []));
        if (parse.Errors.Count == 0) return;
        var options = plan.Generation.Concat(cell.Method.Options).Concat(cell.Benchmark.Options).ToList();
        var bad = parse.UnmatchedTokens.Select(t => options.FirstOrDefault(o => "--" + o.Name == t || o.Values.Contains(t))).FirstOrDefault(o => o is not null)
            ?? options.FirstOrDefault(o => parse.Errors.Any(e => e.Message.Contains("--" + o.Name, StringComparison.Ordinal)));
        var where = bad?.Where ?? $"{cell.Method.Where}, {cell.Benchmark.Where}";
        var what = bad is not null && parse.UnmatchedTokens.Contains("--" + bad.Name) ? $"'{bad.Name}' is not an option of eval run" : parse.Errors[0].Message;
        throw new UsageException($"{where}: {what} (cell {cell.Name}; 'safecode eval run --help' lists the options)");
    }

    /// <summary>The request-level steps a method runs around each answer (each makes at least one extra call), from its options as the plan gives them.</summary>
    private static IReadOnlyList<string> Steps(StudyPlan plan, PlanMethod method)
    {
        var gen = new GenerationOptions();
        var probe = new Command("cell");
        gen.AddTo(probe);
        var words = plan.Generation.Concat(method.Options).Where(o => probe.Options.Any(x => x.Name == "--" + o.Name || x.Aliases.Contains("--" + o.Name))).SelectMany(o => o.Words).ToArray();
        var parse = probe.Parse(["--model", plan.Models[0].Path, .. words]);
        if (parse.Errors.Count > 0) throw new UsageException($"{method.Where}: {parse.Errors[0].Message}");
        GenerationSettings s;
        try { s = gen.Read(parse); }
        catch (UsageException ex) { throw new UsageException($"{method.Where}: {ex.Message}"); }
        var m = DecodingMethods.Of(s.Decoding);
        return [.. m.Before(s.Decoding).Select(x => x.Name + " (before)"), .. m.After(s.Decoding).Select(x => x.Name + " (after)")];
    }

    private static int DryRun(StudyPlan plan, string dir, List<StudyCell> cells, Dictionary<PlanMethod, IReadOnlyList<string>> steps,
        Func<PlanBenchmark, IReadOnlyList<(string Id, int Answers)>> selected, CliIO io)
    {
        io.Out.WriteLine($"study {plan.Name}: {cells.Count} cell(s), baseline {plan.Baseline}, folder {dir}");
        io.Out.WriteLine($"shared generation settings: {string.Join(" ", plan.Generation.SelectMany(o => o.Words))}");
        io.Out.WriteLine();
        io.Out.WriteLine("| cell | samples | answers | steps around each answer | done | folder |");
        io.Out.WriteLine("|---|---:|---:|---|---:|---|");
        var absent = plan.Benchmarks.Where(b => !Path.Exists(b.Data)).ToHashSet();
        foreach (var c in cells)
        {
            var st = steps[c.Method];
            if (absent.Contains(c.Benchmark))
            {
                io.Out.WriteLine($"| {c.Name} | – | – | {(st.Count == 0 ? "none" : string.Join(", ", st))} | data not found: {c.Benchmark.Data} | {Path.GetRelativePath(dir, c.Dir).Replace('\\', '/')} |");
                continue;
            }
            var sel = selected(c.Benchmark);
            string done = "not started";
            if (File.Exists(Path.Combine(c.Dir, RunStore.ManifestFile)))
            {
                var have = RunStore.ReadRecords(c.Dir).Select(r => r.Id).Concat(RunStore.ReadProblems(c.Dir).Select(x => x.Id)).ToHashSet(StringComparer.Ordinal);
                done = $"{sel.Count(x => have.Contains(x.Id))}/{sel.Count}";
            }
            io.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {c.Name} | {sel.Count} | {sel.Sum(x => x.Answers)} | {(st.Count == 0 ? "none" : string.Join(", ", st))} | {done} | {Path.GetRelativePath(dir, c.Dir).Replace('\\', '/')} |"));
        }
        io.Out.WriteLine();
        io.Out.WriteLine($"{cells.Where(c => !absent.Contains(c.Benchmark)).Sum(c => selected(c.Benchmark).Sum(x => x.Answers))} answer(s) to generate in all{(absent.Count == 0 ? "" : " (cells whose data is present)")}. Extra calls per answer: a step that asks a model (a scene judge, a paraphraser, a harm check, a re-answer) makes one or more, a step that only rewrites the prompt makes none; the report counts the calls each cell made.");
        if (absent.Count == 0) return ExitCodes.Ok;
        foreach (var b in absent) io.Error.WriteLine($"safecode eval study: {b.Where}: data not found: {b.Data} (a run of the study refuses until it is there)");
        return ExitCodes.Failed;
    }

    private static void Merge(List<StudyCell> cells, string dir, CliIO io)
    {
        var shardRoot = Path.Combine(dir, "shards");
        if (!Directory.Exists(shardRoot)) throw new UsageException($"{shardRoot}: no shard folders to merge (run 'eval study PLAN --shard i/n' first)");
        foreach (var c in cells)
        {
            var rel = Path.GetRelativePath(Path.Combine(dir, "cells"), c.Dir);
            var parts = Directory.GetDirectories(shardRoot).Order(StringComparer.Ordinal).Select(s => Path.Combine(s, rel))
                .Where(s => File.Exists(Path.Combine(s, RunStore.ManifestFile))).ToList();
            if (parts.Count == 0) { io.Error.WriteLine($"safecode eval study: {c.Name}: no shard holds this cell"); continue; }
            if (File.Exists(Path.Combine(c.Dir, RunStore.ManifestFile)))
                throw new UsageException($"{c.Dir} already holds a run: move it away to merge the shards into it (a finished record is never overwritten)");
            var r = RunMerge.Merge(parts, c.Dir);
            foreach (var w in r.Warnings) io.Error.WriteLine($"safecode eval study: {c.Name}: warning — {w}");
            io.Error.WriteLine($"safecode eval study: {c.Name}: merged {parts.Count} shard(s), {r.Records} record(s), {r.Problems} problem(s)");
        }
    }
}
