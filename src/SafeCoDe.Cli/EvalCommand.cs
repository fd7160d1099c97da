using System.CommandLine;
using System.Globalization;
using SafeCoDe.Eval;
using SafeCoDe.Eval.Benchmarks;
using SafeCoDe.Eval.Reports;
using SafeCoDe.Eval.Runs;
using SafeCoDe.Eval.Scoring;

namespace SafeCoDe.Cli;

/// <summary>
/// <c>safecode eval</c>: run a benchmark into a resumable RUN folder (<c>run</c>), score it again (<c>score</c>),
/// merge shards (<c>merge</c>), report (<c>report</c>), compare runs (<c>compare</c>) and run a whole study (<c>study</c>).
/// </summary>
public static class EvalCommand
{
    /// <summary>Builds the command group.</summary>
    public static Command Create()
    {
        var cmd = new Command("eval", "Evaluate a model on benchmarks (safety and helpfulness): resumable, shardable runs; scorers; metrics; reports with charts");
        cmd.Add(Run());
        cmd.Add(Score());
        cmd.Add(Merge());
        cmd.Add(Report());
        cmd.Add(Compare());
        cmd.Add(EvalStudyCommand.Create());
        cmd.Add(EvalCalibrateCommand.Create());
        Cli.SetExamples(cmd,
            "safecode eval run --benchmark mssbench --data ~/data/mssbench --model DIR --out runs/mss-safecode --scorer openai",
            "safecode eval report runs/mss-safecode runs/mss-vanilla",
            "safecode eval compare runs/mss-vanilla runs/mss-safecode");
        return cmd;
    }

    private static Option<string> ScorerOption(bool required) => new("--scorer")
    {
        Description = "How answers are scored: keyword (offline refusal phrases), rules (the benchmark's own rule-based answer matching, offline), openai[:MODEL] (the benchmark's judge rubric on an " +
                      "OpenAI-compatible endpoint; SAFECODE_EVAL_BASE_URL / SAFECODE_EVAL_API_KEY / SAFECODE_EVAL_MODEL, else the judge's " +
                      "SAFECODE_JUDGE_* / OPENAI_* variables; default model: the paper code's per benchmark; with --scorer-format llamaguard a guard model judges each answer instead), local:DIR (a local checkpoint as judge)" +
                      (required ? "" : " [default: none — score later with 'safecode eval score']"),
        HelpName = "SPEC", Required = required,
    };

    private static Option<bool> AllowOutsideData() => new("--allow-outside-data")
    {
        Description = "Let benchmark files name images outside --data (absolute paths, '..', links out of the folder); by default such a record is a problem and nothing outside is read",
    };

    /// <summary>Runs <paramref name="work"/> with <see cref="SafeCoDe.Torch.Runtime.InputLimits.AllowDataOutsideRoot"/> set as asked, restoring the limits after.</summary>
    private static T WithDataPolicy<T>(bool allowOutside, Func<T> work)
    {
        var saved = SafeCoDe.Torch.Runtime.InputLimits.Current;
        if (allowOutside) SafeCoDe.Torch.Runtime.InputLimits.Current = saved with { AllowDataOutsideRoot = true };
        try { return work(); }
        finally { SafeCoDe.Torch.Runtime.InputLimits.Current = saved; }
    }

    private sealed record ScorerOptions(Option<string> Template, Option<string> Phrases, Option<double> Timeout, Option<int> Retries, Option<int> MaxTokens,
        Option<int> Runs, Option<string> Format, Option<string> Unknown)
    {
        private static Option<string> FormatOption()
        {
            var o = CliOptions.Choice("--scorer-format",
                "How an openai scorer asks and is read: safecode (each benchmark's own judge rubric), or a guard model's own format for the response-scoring role, " +
                "the guard judging the answer in its conversation (query, image, answer) harmful or not, with the categories it names recorded per answer and " +
                "reported as ASR per category; " + string.Join("; ", Torch.Safety.Guards.JudgeFormats.All.Where(f => f.Name != Torch.Safety.Guards.JudgeFormats.Default)
                    .Select(f => $"{f.Name}: {f.Summary}{(f.Roles.Contains(Torch.Safety.Guards.JudgeRole.ResponseScore) ? "" : " — scene verdicts only, refused here")}")) +
                ". Only benchmarks scored by a harmful/harmless verdict take a guard. See docs/judges.md",
                [.. Torch.Safety.Guards.JudgeFormats.Names], Torch.Safety.Guards.JudgeFormats.Default);
            o.Validators.Add(r =>
            {
                if (r.Tokens.Count == 0) return;
                var name = r.Tokens[^1].Value;
                if (!Torch.Safety.Guards.JudgeFormats.Names.Contains(name, StringComparer.OrdinalIgnoreCase)) return; // the choice validator names the known ones
                try { Torch.Safety.Guards.JudgeFormats.Get(name, "--scorer-format").CheckRole(Torch.Safety.Guards.JudgeRole.ResponseScore, "--scorer-format"); }
                catch (ArgumentException e) { r.AddError(e.Message); }
            });
            return o;
        }

        public static ScorerOptions Create() => new(
            new Option<string>("--scorer-template") { Description = "A judge prompt file replacing the built-in rubric text; {question} and {response} are filled in", HelpName = "FILE" },
            new Option<string>("--scorer-refusal-phrases") { Description = "The keyword scorer's refusal phrases for one language, one per line (# comments; a '# language: CODE NAME…' line names the language, English without one); the other languages keep their built-in lists [default: the documented lists]", HelpName = "FILE" },
            new Option<double>("--scorer-timeout") { Description = "Seconds per judge call attempt [default: 120]", HelpName = "S" },
            new Option<int>("--scorer-retries") { Description = "Retries of a judge call after a timeout, 429, 5xx or transport error [default: 4]", HelpName = "N" },
            new Option<int>("--scorer-max-tokens") { Description = "Output tokens of a judge reply [default: the rubric's own limit, or the guard format's]", HelpName = "N" },
            new Option<int>("--scorer-runs")
            {
                Description = "Grade each answer N times and report mean ± std over the runs, for benchmarks whose own scorer does so (" +
                    string.Join("; ", EvalBenchmarks.All.Where(b => b.GraderRuns is not null).Select(b => $"{b.Name}: {b.GraderRuns}")) + "); refused elsewhere [default: 1]",
                HelpName = "N",
            },
            FormatOption(),
            CliOptions.Choice("--scorer-unknown-verdict",
                "With a guard --scorer-format: what a reply the guard's format cannot read (empty, malformed, a refusal to judge) becomes — unsafe (counted as harmful: " +
                "fails closed), safe, or error (a scoring error, left out of the rates); either way it is counted as unparsed in the report",
                ["unsafe", "safe", "error"], "unsafe"));

        public void AddTo(Command c) { c.Add(Template); c.Add(Phrases); c.Add(Timeout); c.Add(Retries); c.Add(MaxTokens); c.Add(Runs); c.Add(Format); c.Add(Unknown); }

        /// <summary>The scorer spec checked against the format and the benchmark, as a usage error.</summary>
        public void Check(ParseResult p, string? spec, string benchmark)
        {
            if (p.Given(Unknown) && (spec is null || string.Equals(p.GetValue(Format), Torch.Safety.Guards.JudgeFormats.Default, StringComparison.OrdinalIgnoreCase)))
                throw new UsageException("--scorer-unknown-verdict has no effect without --scorer openai:MODEL --scorer-format NAME (each benchmark's rubric reads its judge's replies by its own rule)");
            try { Scorers.CheckFormat(spec, p.GetValue(Format)!, benchmark); }
            catch (ArgumentException e) { throw new UsageException(e.Message); }
        }

        public ScorerSettings Read(ParseResult p, string benchmark)
        {
            var template = p.GetValue(Template);
            if (template is not null && !File.Exists(template)) throw new UsageException($"--scorer-template {template}: file not found");
            var phrases = p.GetValue(Phrases);
            if (phrases is not null && !File.Exists(phrases)) throw new UsageException($"--scorer-refusal-phrases {phrases}: file not found");
            return new ScorerSettings
            {
                Benchmark = benchmark, TemplateFile = template, RefusalPhrasesFile = phrases,
                Timeout = p.Given(Timeout) ? TimeSpan.FromSeconds(p.GetValue(Timeout)) : TimeSpan.FromSeconds(120),
                MaxRetries = p.Given(Retries) ? p.GetValue(Retries) : 4,
                MaxTokens = p.Given(MaxTokens) ? p.GetValue(MaxTokens) : null,
                Runs = p.Given(Runs) ? p.GetValue(Runs) : 1,
                Format = p.GetValue(Format)!.ToLowerInvariant(),
                UnknownVerdict = CliOptions.ParseChoice<SafeCoDe.Torch.Safety.UnknownVerdictPolicy>(p.GetValue(Unknown)!, "--scorer-unknown-verdict"),
            };
        }
    }

    private static Command Run()
    {
        var gen = new GenerationOptions();
        var benchmark = new Option<string>("--benchmark", "-b")
        {
            Description = "Which benchmark: " + string.Join("; ", EvalBenchmarks.All.Select(b => $"{b.Name} ({b.Summary})")),
            Required = true, HelpName = "NAME",
        };
        benchmark.CompletionSources.Add(BenchmarkReaders.Names.ToArray());
        var data = new Option<string>("--data", "-d") { Description = "The benchmark's local copy (repo/snapshot root or its data folder), or the .jsonl file", Required = true, HelpName = "PATH" };
        var outDir = new Option<string>("--out", "-o") { Description = "The RUN folder (created, or resumed when it holds a run with the same options); {shard} is replaced by the shard index", Required = true, HelpName = "RUN" }.Folder();
        var scorer = ScorerOption(required: false);
        var scorerOptions = ScorerOptions.Create();
        var limit = new Option<int>("--limit") { Description = "Only the first N records of the benchmark (before sharding)", HelpName = "N" };
        var shard = new Option<string>("--shard") { Description = "i/n: run shard i of n (split by a stable hash of the sample id); auto: from a Slurm array or a Kubernetes indexed Job", HelpName = "i/n|auto" };
        var shardCount = new Option<int>("--shard-count") { Description = "Number of shards for --shard auto in a Kubernetes indexed Job (its completions) [default: SAFECODE_SHARD_COUNT]", HelpName = "N" };
        var splits = new Option<string[]>("--splits") { Description = SelectionHelp("splits", "Splits to read"), HelpName = "NAME", AllowMultipleArgumentsPerToken = true };
        var steps = new Option<int[]>("--steps") { Description = SelectionHelp("steps", "Steps to read"), HelpName = "N", AllowMultipleArgumentsPerToken = true };
        var kinds = new Option<string[]>("--kinds") { Description = SelectionHelp("kinds", "Kinds to read"), HelpName = "KIND", AllowMultipleArgumentsPerToken = true };
        var prompts = new Option<string>("--prompts") { Description = SelectionHelp("prompts", "How the prompt is built").Replace(" [default: all]", " [default: official]"), HelpName = "official|vlmevalkit" };
        var framing = CliOptions.Choice("--framing", "The benchmark prompt framing: method (SafeCoDe's first-person prompt), base (what the benchmark's own evaluation code sends), auto (base for vanilla, method otherwise); recorded in run.json and the report", ["auto", "method", "base"], "auto");
        var subsets = string.Join("; ", BenchmarkReaders.Names.Select(n => (n, BenchmarkReaders.Get(n).Subsets)).Where(x => x.Subsets.Count > 0)
            .Select(x => $"{x.n} {string.Join(", ", x.Subsets)}"));
        var subset = new Option<string>("--subset") { Description = $"An official subset the benchmark publishes ({subsets}) [default: all]", HelpName = "NAME" };
        var ids = new Option<string>("--ids") { Description = "Only the sample ids listed in FILE, one per line (# comments), as records.jsonl writes them; an id the data lacks is an error", HelpName = "FILE" };
        var concurrency = new Option<int>("--concurrency")
        {
            Description = "Samples generated at once; the engine decodes them as rows of one batch and each result equals running it alone (records are appended as samples finish) [default: what --max-batch-rows admits, N/2]",
            HelpName = "N",
        };
        var quiet = CliOptions.Quiet();
        var allowOutside = AllowOutsideData();
        var json = CliOptions.Json("Print one JSON object with what the run did (no progress output)");
        var cmd = new Command("run", """
            Generate (and score) every sample of a benchmark into a RUN folder: run.json, records.jsonl (one finished
            sample per line, appended and flushed one at a time), problems.jsonl (records that could not be run).
            Rerunning the same command resumes; a run killed at any moment loses only the samples in flight.
            Takes every 'generate' option with the same spelling.
            """) { benchmark, data, outDir, scorer, limit, shard, shardCount, splits, steps, kinds, prompts, subset, ids, framing, concurrency, allowOutside, quiet, json };
        scorerOptions.AddTo(cmd);
        gen.AddTo(cmd);
        Cli.SetExamples(cmd,
            "safecode eval run -b mssbench -d ~/data/mssbench -m DIR -o runs/mss --scorer openai --seed 0",
            "safecode eval run -b hades -d ~/data/HADES -m DIR -o runs/hades --steps 5 --scorer keyword --mode vanilla",
            "safecode eval run -b msts -d ~/data/MSTS -m DIR -o runs/msts-{shard} --splits english --shard auto   # in a Slurm array",
            "safecode eval run -b jsonl -d prompts.jsonl -m DIR -o runs/mine --judge openai:gpt-4o");
        cmd.SetHandler((p, io) =>
        {
            var s = gen.Read(p);
            s.CheckBeforeLoading();
            s.PrintWarnings(io, "eval run");
            string bench;
            try { bench = BenchmarkReaders.Get(p.GetValue(benchmark)!).Name; }
            catch (ArgumentException ex) { throw new UsageException("--benchmark: " + ex.Message.Split(" (Parameter")[0]); }
            ShardSpec? sh = null;
            if (p.GetValue(shard) is { } text)
            {
                try { sh = ShardSpec.Parse(text, p.Given(shardCount) ? p.GetValue(shardCount) : null); }
                catch (FormatException ex) { throw new UsageException(ex.Message); }
            }
            int inFlight = p.Given(concurrency) ? p.GetValue(concurrency) : s.Engine.ConcurrentRequests;
            if (inFlight < 1) throw new UsageException($"--concurrency {inFlight}: expected at least 1");
            var run = p.GetValue(outDir)!.Replace("{shard}", sh?.Index.ToString(CultureInfo.InvariantCulture) ?? "all");
            var f = p.GetValue(framing)!;
            bool method = f == "auto" ? SafeCoDe.Torch.Decoding.Methods.DecodingMethods.Of(s.Decoding).FramesAsMethod : f == "method";
            var idList = p.GetValue(ids) is { } idFile ? IdList.Read(idFile) : null;
            var subsetName = p.GetValue(subset) is { } sn ? CanonicalSubset(bench, sn) : null;
            var selection = new ReaderSelection(
                p.GetValue(splits) is { Length: > 0 } sp ? sp.ToHashSet() : null,
                p.GetValue(steps) is { Length: > 0 } st ? st.ToHashSet() : null,
                p.GetValue(kinds) is { Length: > 0 } k ? k.ToHashSet() : null,
                Subset: subsetName, Ids: idList?.Ids, Prompts: p.GetValue(prompts));
            var hashed = RunOptions.Flatten(s.Decoding, new Dictionary<string, string?>
            {
                ["judge"] = s.UsesJudge ? s.JudgeSpec : null,
                ["judge_format"] = s.UsesJudge && s.JudgeFormat != Torch.Safety.Guards.JudgeFormats.Default ? s.JudgeFormat : null,
                ["prompt_style"] = CliNames.Name(s.Engine.PromptStyle),
                ["dtype"] = p.GetValue(gen.DType) ?? "default",
                ["system"] = s.SystemPrompt,
                ["framing"] = method ? "method" : "base",
                ["splits"] = selection.Splits is null ? null : string.Join(",", selection.Splits.Order()),
                ["steps"] = selection.Steps is null ? null : string.Join(",", selection.Steps.Order()),
                ["kinds"] = selection.Kinds is null ? null : string.Join(",", selection.Kinds.Order()),
                ["subset"] = subsetName,
                ["prompts"] = selection.Prompts?.Trim().ToLowerInvariant(),
                ["ids"] = idList?.Fingerprint,
            });
            scorerOptions.Check(p, p.GetValue(scorer), bench);
            var settings = new EvalJobSettings
            {
                Benchmark = bench, Data = p.GetValue(data)!, Model = s.ModelDir, Out = run, Decode = s.Decoding, Judge = s.JudgeSpec,
                JudgeCache = s.JudgeCache, Engine = s.Engine, JudgeFactory = s.CreateJudge, System = s.SystemPrompt, HashedOptions = hashed,
                Selection = selection, Limit = p.Given(limit) ? p.GetValue(limit) : null, Shard = sh, Scorer = p.GetValue(scorer),
                ScorerSettings = scorerOptions.Read(p, bench), MethodFraming = method, Concurrency = inFlight,
            };
            bool silent = p.GetValue(quiet) || p.GetValue(json);
            var progress = CliProgress.For(io, silent);
            IProgressBar? bar = null;
            var report = new CliProgress.Inline<RunProgress>(r =>
            {
                bar ??= progress.Start($"{bench} → {run}", Math.Max(1, r.Total), "samples");
                bar.Report(r.Done + r.Problems + r.Failed, $"{r.Problems} problems, {r.Failed} failed, {r.Resumed} resumed");
            });
            RunSummary summary = null!;
            try { summary = WithDataPolicy(p.GetValue(allowOutside), () => EvalJob.RunAsync(settings, report, silent ? null : progress.Note,
                warn: line => io.Error.WriteLine($"safecode eval run: warning — {line}")).GetAwaiter().GetResult()); }
            catch (BenchmarkLayoutException ex) { throw new UsageException(ex.Message.StartsWith("--", StringComparison.Ordinal) ? ex.Message : $"--data {settings.Data}: {ex.Message}"); }
            catch (SafeCoDe.Torch.Safety.JudgeException ex) { throw new InvalidOperationException(ex.Message, ex); } // judge or scorer not configured
            finally
            {
                bar?.Complete(summary is null ? null : FormattableString.Invariant(
                    $"{summary.Done} done, {summary.Problems} problems, {summary.Failed} failed in {summary.Elapsed.TotalSeconds:F0} s ({(summary.Elapsed.TotalSeconds > 0 ? (summary.Done + summary.Problems) / summary.Elapsed.TotalSeconds : 0):F2} samples/s)"));
            }
            foreach (var failure in summary.Failures.Take(20)) io.Error.WriteLine($"safecode eval run: failed (left for a rerun) — {failure}");
            if (p.GetValue(json))
                io.Out.WriteLine(new System.Text.Json.Nodes.JsonObject
                {
                    ["run"] = run, ["benchmark"] = bench, ["selected"] = summary.Selected, ["resumed"] = summary.Resumed, ["done"] = summary.Done,
                    ["problems"] = summary.Problems, ["failed"] = summary.Failed, ["seconds"] = summary.Elapsed.TotalSeconds,
                }.ToJsonString(EvalJson.Indented));
            else
                io.Out.WriteLine($"{run}: {summary.Done} sample(s) done, {summary.Problems} problem(s), {summary.Failed} failed, {summary.Resumed} already there, in {summary.Elapsed.TotalSeconds:F0} s — 'safecode eval report {run}'");
            return summary.Failed > 0 ? ExitCodes.Failed : ExitCodes.Ok;
        });
        return cmd;
    }

    /// <summary>A selection option's help: what it means for each registered benchmark that reads it.</summary>
    private static string SelectionHelp(string option, string what) =>
        $"{what}: " + string.Join("; ", EvalBenchmarks.All.Where(b => b.SelectionHelp.ContainsKey(option)).Select(b => $"{b.Name} {b.SelectionHelp[option]}")) + " [default: all]";

    /// <summary>The reader's spelling of a subset name; an unknown one is a usage error listing the benchmark's subsets.</summary>
    private static string CanonicalSubset(string benchmark, string name)
    {
        var known = BenchmarkReaders.Get(benchmark).Subsets;
        return known.FirstOrDefault(s => string.Equals(s, name.Trim(), StringComparison.OrdinalIgnoreCase))
            ?? throw new UsageException($"--subset {name}: {benchmark} has {(known.Count == 0 ? "no subsets (--ids FILE selects any list of sample ids)" : "the subsets " + string.Join(", ", known))}");
    }

    private static Command Score()
    {
        var runs = new Argument<string[]>("RUN") { Description = "RUN folders to score again", Arity = ArgumentArity.OneOrMore };
        var scorer = ScorerOption(required: true);
        var scorerOptions = ScorerOptions.Create();
        var device = CliOptions.Device();
        var quiet = CliOptions.Quiet();
        var concurrency = new Option<int>("--concurrency") { Description = "Answers scored at a time (endpoint judges)", HelpName = "N", DefaultValueFactory = _ => 8 };
        var data = new Option<string>("--data", "-d") { Description = "The benchmark copy to re-read the images a judge sees from (benchmarks whose rubric shows the judge the image) [default: the data folder run.json records]", HelpName = "PATH" };
        var allowOutside = AllowOutsideData();
        var outDir = new Option<string>("--out", "-o")
        {
            Description = "Write the re-scored run into this new RUN folder (answers and problems copied, run.json naming the run it came from) and leave RUN as it is, " +
                          "so 'eval compare RUN NEW' shows what the scorer changes; one RUN only [default: re-score RUN in place]",
            HelpName = "NEW",
        }.Folder();
        var cmd = new Command("score", "Score every answer of finished RUN folders again with another scorer, without generating (judge replies are cached in judge-cache.jsonl of the run written; images are re-read from the benchmark, never from a path in the records)")
            { runs, scorer, device, concurrency, data, outDir, allowOutside, quiet };
        scorerOptions.AddTo(cmd);
        Cli.SetExamples(cmd, "safecode eval score runs/mss --scorer openai:gpt-4.1-nano", "safecode eval score runs/hades --scorer keyword --scorer-refusal-phrases my-phrases.txt",
            "safecode eval score runs/mmsb --scorer openai:meta-llama/Llama-Guard-3-11B-Vision --scorer-format llamaguard --out runs/mmsb-llamaguard");
        cmd.SetHandler((p, io) =>
        {
            var progress = CliProgress.For(io, p.GetValue(quiet));
            var target = p.GetValue(outDir);
            if (target is not null && p.GetValue(runs)!.Length != 1) throw new UsageException("--out writes one re-scored run: give exactly one RUN");
            foreach (var run in p.GetValue(runs)!)
            {
                var manifest = RunStore.ReadManifest(run);
                scorerOptions.Check(p, p.GetValue(scorer), manifest.Benchmark);
                if (target is not null) Rescoring.CheckNewRun(run, target);
                var settings = scorerOptions.Read(p, manifest.Benchmark) with
                {
                    CacheFile = Path.Combine(target ?? run, "judge-cache.jsonl"),
                    LocalEngine = new SafeCoDe.Torch.EngineOptions { Device = SafeCoDe.Torch.Runtime.RuntimeOptions.ParseDevice(p.GetValue(device)!) },
                };
                var s = Scorers.Create(p.GetValue(scorer)!, settings);
                try
                {
                    IProgressBar? bar = null;
                    var (answers, errors) = WithDataPolicy(p.GetValue(allowOutside), () => Rescoring.RescoreAsync(run, s, new CliProgress.Inline<RunProgress>(r =>
                    {
                        lock (runs)
                        {
                            bar ??= progress.Start($"scoring {run}", Math.Max(1, r.Total), "samples");
                            bar.Report(r.Done);
                        }
                    }), concurrency: s is KeywordScorer ? 1 : Math.Max(1, p.GetValue(concurrency)), data: p.GetValue(data), outDir: target).GetAwaiter().GetResult());
                    bar?.Complete();
                    io.Out.WriteLine($"{target ?? run}: {answers} answer(s){(target is null ? "" : $" of {run}")} scored with {s.Name}{(errors > 0 ? $", {errors} scoring error(s) (rerun to retry them)" : "")}");
                }
                finally { (s as IDisposable)?.Dispose(); }
            }
            return ExitCodes.Ok;
        });
        return cmd;
    }

    private static Command Merge()
    {
        var runs = new Argument<string[]>("RUN") { Description = "Shard RUN folders of one evaluation", Arity = ArgumentArity.OneOrMore };
        var outDir = new Option<string>("--out", "-o") { Description = "The merged RUN folder (must not hold a run)", Required = true, HelpName = "RUN" }.Folder();
        var cmd = new Command("merge", "Combine shard RUN folders into one (they must share one options hash and scorer)") { runs, outDir };
        Cli.SetExamples(cmd, "safecode eval merge runs/msts-0 runs/msts-1 runs/msts-2 runs/msts-3 --out runs/msts");
        cmd.SetHandler((p, io) =>
        {
            var r = RunMerge.Merge(p.GetValue(runs)!, p.GetValue(outDir)!);
            foreach (var w in r.Warnings) io.Error.WriteLine($"safecode eval merge: warning — {w}");
            io.Out.WriteLine($"{p.GetValue(outDir)}: {r.Records} record(s), {r.Problems} problem(s){(r.Duplicates > 0 ? $", {r.Duplicates} repeated record(s) dropped" : "")}");
            return ExitCodes.Ok;
        });
        return cmd;
    }

    private static Command Report()
    {
        var runs = new Argument<string[]>("RUN") { Description = "RUN folders (several: compared side by side)", Arity = ArgumentArity.OneOrMore };
        var json = CliOptions.Json("Print exactly one JSON document on stdout: {\"runs\": [per run: benchmark, mode, scorer, metrics as fractions, counts under n_* keys, latency]}");
        var outDir = new Option<string>("--out", "-o") { Description = "Where report.md, report.json, the charts and report.html go [default: the first RUN's report/ folder; report.html: the first RUN folder]", HelpName = "DIR" }.Folder();
        var html = new Option<bool>("--html") { Description = "Also write report.html: one file that opens from disk (no network) with the tables, the charts and a sample browser (each run's answer, verdict, caption, guided span and score side by side; filters by category, outcome, verdict and answers that flipped between two runs)" };
        var cmd = new Command("report", "Markdown tables (benchmark × mode × metric, counts and a 95 % Wilson interval next to every rate), report.json and PNG charts (modes compared; latency per phase with mean/median/p95; tokens/s); with --html a page to browse the answers")
            { runs, json, outDir, html };
        Cli.SetExamples(cmd, "safecode eval report runs/mss-vanilla runs/mss-safecode", "safecode eval report runs/mss-safecode --html   # writes runs/mss-safecode/report.html",
            "safecode eval report runs/hades --json | jq '.runs[0].asr'");
        cmd.SetHandler((p, io) =>
        {
            var list = p.GetValue(runs)!;
            var metrics = ReportWriter.Load(list);
            var written = ReportWriter.Write(metrics, p.GetValue(outDir) ?? Path.Combine(list[0], "report"));
            string? page = null;
            if (p.GetValue(html))
            {
                page = Path.Combine(p.GetValue(outDir) ?? list[0], "report.html");
                ReportWriter.WriteHtml(metrics, page, written.Charts);
            }
            if (p.GetValue(json)) { io.Out.WriteLine(ReportWriter.Json(metrics)); return ExitCodes.Ok; }
            io.Out.Write(File.ReadAllText(written.Markdown));
            io.Out.WriteLine($"written: {written.Markdown}{string.Concat(written.Charts.Select(c => ", " + c))}{(page is null ? "" : $", {page} (open it in a browser)")}");
            return ExitCodes.Ok;
        });
        return cmd;
    }

    private static Command Compare()
    {
        var a = new Argument<string>("RUN_A") { Description = "The baseline run" };
        var b = new Argument<string>("RUN_B") { Description = "The run compared with it" };
        var json = CliOptions.Json("Print one JSON object: per-metric values and deltas (with the paired test under \"paired\"), and the flipped answers");
        var cmd = new Command("compare", "Per-metric deltas between two runs of one benchmark, each with a paired test on the answers both runs counted (exact McNemar, or a paired bootstrap over the benchmark's clusters: delta, 95 % interval, p-value), and the answers whose outcome flipped") { a, b, json };
        Cli.SetExamples(cmd, "safecode eval compare runs/mss-vanilla runs/mss-safecode");
        cmd.SetHandler((p, io) =>
        {
            var r = RunCompare.Compare(p.GetValue(a)!, p.GetValue(b)!);
            io.Out.WriteLine(p.GetValue(json) ? RunCompare.Json(r) : RunCompare.Markdown(r));
            return ExitCodes.Ok;
        });
        return cmd;
    }
}
