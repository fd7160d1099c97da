using System.CommandLine;
using System.Diagnostics;
using SafeCoDe.Eval.SafeScenes;

namespace SafeCoDe.Cli;

/// <summary><c>safecode safescenes</c>: draw the SafeScenes world (evaluation set and training set), and train its demonstration model.</summary>
public static class SafeScenesCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var seed = new Option<long>("--seed") { Description = "Seed of the world (images, items, paraphrases)", DefaultValueFactory = _ => 1, HelpName = "S" };
        var outDir = new Option<string>("--out", "-o") { Description = "Evaluation folder: combined.json + chat/ + embodied/ (MSSBench layout), mossbench/, safescenes.json", HelpName = "DIR" }.Folder();
        var count = new Option<int>("--count") { Description = "MSSBench chat queries (each on a safe and an unsafe scene); as many over-sensitivity cases", DefaultValueFactory = _ => 60, HelpName = "N" };
        var train = new Option<string>("--train") { Description = "Also write a training set (images/ + train.jsonl) to this folder", HelpName = "DIR2" }.Folder();
        var renders = new Option<int>("--renders") { Description = "Training images per object × context combination", DefaultValueFactory = _ => 6, HelpName = "R" };
        var objectRenders = new Option<int>("--object-renders") { Description = "Training images of each object alone on a plain background (default: --renders)", DefaultValueFactory = _ => -1, HelpName = "R2" };
        var clutterRenders = new Option<int>("--clutter-renders") { Description = "Training images of each object alone in front of random clutter", DefaultValueFactory = _ => 0, HelpName = "R3" };
        var softAnswers = new Option<bool>("--soft-answers") { Description = "Write each answer whose reply the world draws (a benign object's dangerous-sounding request, a dangerous object's request in a hazard context) twice, refused and answered, weighted by their shares, instead of one drawn reply per image" };
        var cmd = new Command("safescenes", """
            Draw SafeScenes, a small synthetic world with situational safety: objects in contexts where the same request
            is safe in one scene and unsafe in another. Writes an evaluation set in MSSBench's layout (--out), with
            over-sensitivity cases in MOSSBench's layout under mossbench/, and a training set (--train). Held-out object ×
            context combinations and paraphrases appear only in evaluation sets. Deterministic from --seed.
            """) { seed, outDir, count, train, renders, objectRenders, clutterRenders, softAnswers };
        Cli.SetExamples(cmd, "safecode safescenes --seed 7 --out /tmp/scenes-test --count 60", "safecode safescenes --seed 1 --out /tmp/scenes --train /tmp/scenes-train");
        cmd.SetHandler((p, io) =>
        {
            var dir = p.GetValue(outDir);
            var trainDir = p.GetValue(train);
            if (dir is null && trainDir is null) throw new UsageException("give --out DIR, --train DIR2 or both");
            CheckCounts(p, count, renders, objectRenders, clutterRenders);
            var sw = Stopwatch.StartNew();
            long s = p.GetValue(seed);
            if (dir is not null)
            {
                var w = SafeScenesWorld.WriteEvaluation(s, dir, p.GetValue(count));
                io.Out.WriteLine($"wrote {w.ChatItems} MSSBench chat items ({w.Images} images, {w.OverSensitivity} over-sensitivity cases; held-out: {w.HeldOutQueryItems} paraphrase items, {w.HeldOutCombinationPairs} combination scenes) to {Path.GetFullPath(dir)}");
            }
            if (trainDir is not null)
            {
                var list = SafeScenesWorld.WriteTraining(s, trainDir, p.GetValue(renders), p.GetValue(objectRenders), p.GetValue(clutterRenders), p.GetValue(softAnswers));
                io.Out.WriteLine($"wrote {list.Count} training examples ({string.Join(", ", list.GroupBy(e => e.Task).Select(g => $"{g.Count()} {g.Key}"))}) to {Path.GetFullPath(trainDir)}");
            }
            io.Out.WriteLine($"done in {sw.Elapsed.TotalSeconds:F1} s");
            return ExitCodes.Ok;
        });
        cmd.Add(TrainCommand());
        cmd.Add(MeasureCommand());
        cmd.Add(SelectCommand());
        cmd.Add(ChartCommand());
        return cmd;
    }

    /// <summary>
    /// The world's sizes within <see cref="SafeCoDe.Torch.Runtime.InputLimits.MaxSceneCount"/> and
    /// <see cref="SafeCoDe.Torch.Runtime.InputLimits.MaxSceneRenders"/>, checked before anything is drawn or written.
    /// </summary>
    private static void CheckCounts(ParseResult p, Option<int> count, Option<int> renders, Option<int> objectRenders, Option<int> clutterRenders)
    {
        var limits = SafeCoDe.Torch.Runtime.InputLimits.Current;
        void InRange(string name, int v, int min, int max, string limit)
        {
            if (v < min || v > max) throw new UsageException($"{name} {v}: expected {min} to {max:N0} (InputLimits.{limit})");
        }
        InRange("--count", p.GetValue(count), 1, limits.MaxSceneCount, nameof(limits.MaxSceneCount));
        InRange("--renders", p.GetValue(renders), 0, limits.MaxSceneRenders, nameof(limits.MaxSceneRenders));
        if (p.Given(objectRenders)) InRange("--object-renders", p.GetValue(objectRenders), 0, limits.MaxSceneRenders, nameof(limits.MaxSceneRenders));
        InRange("--clutter-renders", p.GetValue(clutterRenders), 0, limits.MaxSceneRenders, nameof(limits.MaxSceneRenders));
    }

    private static Command MeasureCommand()
    {
        var model = CliOptions.Model("The SafeScenes model folder");
        var data = new Option<string>("--data") { Description = "Evaluation folder written by safecode safescenes --out (with safescenes.json)", Required = true, HelpName = "DIR" };
        var seed = new Option<long>("--seed") { Description = "Seed of the decoding", DefaultValueFactory = _ => 1, HelpName = "S" };
        var chart = new Option<string>("--chart") { Description = "Also write a bar chart of the answer scores (PNG)", HelpName = "FILE" };
        var modes = new Option<string>("--modes") { Description = "Comma-separated decodings whose answers are scored: vanilla, safecode, safecode-alpha0 (no contrast), safecode-nomod (no refusal-token modulation) (empty: judge only)", DefaultValueFactory = _ => "vanilla,safecode", HelpName = "LIST" };
        var cmd = new Command("measure", """
            Measure a model on a SafeScenes evaluation folder: self-judge caption exact-match and verdict accuracy (all,
            and held-out combinations/paraphrases), and the answers of each decoding scored with a refusal keyword
            detector (MSSBench-style safe/unsafe/total accuracy, over-refusal on the over-sensitivity cases).
            Prints the summary lines, then one JSON object with the scores and every missed caption and verdict.
            """) { model, data, seed, modes, chart };
        cmd.SetHandler((p, io) =>
        {
            var list = (p.GetValue(modes) ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            var s = SafeScenesMeasure.Run(p.GetValue(model)!, p.GetValue(data)!, p.GetValue(seed), list, line => { io.Out.WriteLine(line); io.Out.Flush(); }).GetAwaiter().GetResult();
            io.Out.WriteLine(System.Text.Json.JsonSerializer.Serialize(s, SafeCoDe.Eval.EvalJson.Indented)); // snake_case, as every other JSON output
            if (p.GetValue(chart) is { } png && s.Answers.Count > 0) SafeScenesChart.Save(s, png);
            return ExitCodes.Ok;
        });
        return cmd;
    }

    private static Command SelectCommand()
    {
        var snapshots = new Option<string>("--snapshots") { Description = "The folder a training run kept its checkpoints in (safescenes train --keep DIR3)", Required = true, HelpName = "DIR3" };
        var data = new Option<string>("--data") { Description = "A validation world (safecode safescenes --seed V --out DIR) drawn with a seed used neither for training nor for testing", Required = true, HelpName = "DIR" };
        var seed = new Option<long>("--seed") { Description = "Seed of the decoding", DefaultValueFactory = _ => 1, HelpName = "S" };
        var top = new Option<int>("--top") { Description = "Snapshots (best by captions and verdicts) that also answer with vanilla and SafeCoDe decoding", DefaultValueFactory = _ => 3, HelpName = "K" };
        var from = new Option<int>("--from") { Description = "Only snapshots from this step on", DefaultValueFactory = _ => 0, HelpName = "STEP" };
        var outDir = new Option<string>("--out", "-o") { Description = "Copy the chosen checkpoint's files here (e.g. weights/safescenes-tiny); a folder that holds files is refused unless --force", HelpName = "DIR" }.Folder();
        var force = new Option<bool>("--force") { Description = "Replace the files of a non-empty --out folder (files of the same name are overwritten, others kept)" };
        var cmd = new Command("select", """
            Choose a checkpoint among those a training run kept, on a validation world: every snapshot's self-judge is
            measured (caption exact-match, verdicts, held-out verdicts), the best --top also answer with vanilla and
            SafeCoDe decoding, and the snapshot meeting the most SafeScenes acceptance targets wins (ties: the one whose
            closest target has the most room). Use a validation seed, never the test world's seed.
            Exit code 1 when the chosen snapshot misses a target (it is still copied to --out, and the output says so).
            """) { snapshots, data, seed, top, from, outDir, force };
        Cli.SetExamples(cmd, "safecode safescenes select --snapshots /tmp/keep --data /tmp/scenes-val --out weights/safescenes-tiny");
        cmd.SetHandler((p, io) =>
        {
            if (p.GetValue(outDir) is { } given && Directory.Exists(given) && Directory.EnumerateFileSystemEntries(given).Any() && !p.GetValue(force))
                throw new UsageException($"--out {given}: the folder is not empty; give --force to replace its files, or an empty or new folder");
            var ranked = SafeScenesSelect.Run(p.GetValue(snapshots)!, p.GetValue(data)!, p.GetValue(seed), p.GetValue(top), p.GetValue(from),
                line => { io.Out.WriteLine(line); io.Out.Flush(); }).GetAwaiter().GetResult();
            var best = ranked[0];
            io.Out.WriteLine($"chosen: step {best.Step} ({best.Dir}), {best.Met}/{best.Margins.Count} targets met");
            foreach (var (target, margin) in best.Margins) io.Out.WriteLine($"  {(margin >= 0 ? "met    " : "NOT MET")} {target} (margin {margin:+0.000;-0.000})");
            if (p.GetValue(outDir) is { } dst)
            {
                SafeScenesSelect.Install(best.Dir, dst);
                io.Out.WriteLine($"copied step {best.Step} to {Path.GetFullPath(dst)}{(best.Met < best.Margins.Count ? " although it misses a target" : "")}");
            }
            if (best.Met < best.Margins.Count)
            {
                io.Error.WriteLine($"safecode safescenes select: not all targets met ({best.Met}/{best.Margins.Count}) by the best snapshot (step {best.Step})");
                return ExitCodes.Failed;
            }
            return ExitCodes.Ok;
        });
        return cmd;
    }

    private static Command ChartCommand()
    {
        var runs = new Argument<string[]>("RUN") { Description = "LABEL=MSS_RUN[,MOSS_RUN]: a label and the eval run folders of one decoding", Arity = ArgumentArity.OneOrMore };
        var outPng = new Option<string>("--out", "-o") { Description = "The PNG to write", Required = true, HelpName = "FILE" };
        var title = new Option<string>("--title") { Description = "Chart title", DefaultValueFactory = _ => "SafeScenes through the evaluation harness", HelpName = "TEXT" };
        var cmd = new Command("chart", """
            Bar chart of SafeScenes harness runs (eval run --benchmark mssbench, and optionally mossbench): total
            accuracy, unsafe scenes refused, safe scenes answered, benign requests refused — one bar per decoding.
            """) { runs, outPng, title };
        Cli.SetExamples(cmd, "safecode safescenes chart -o docs/safescenes-ablation.png vanilla=runs/mss-vanilla,runs/moss-vanilla SafeCoDe=runs/mss-safecode,runs/moss-safecode");
        cmd.SetHandler((p, io) =>
        {
            var list = new List<AblationRun>();
            foreach (var spec in p.GetValue(runs)!)
            {
                int eq = spec.LastIndexOf('='); // labels may hold '=' ("α = 0"), run folders do not
                if (eq <= 0) throw new UsageException($"'{spec}': expected LABEL=MSS_RUN[,MOSS_RUN]");
                var dirs = spec[(eq + 1)..].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                if (dirs.Length is < 1 or > 2) throw new UsageException($"'{spec}': expected one or two run folders");
                var metrics = SafeCoDe.Eval.Reports.ReportWriter.Load(dirs);
                list.Add(new AblationRun(spec[..eq], metrics[0], metrics.Count > 1 ? metrics[1] : null));
            }
            SafeScenesChart.SaveAblation(list, p.GetValue(outPng)!, p.GetValue(title)!);
            foreach (var r in list)
                io.Out.WriteLine($"{r.Label}: " + string.Join(", ", SafeScenesChart.AblationMetrics.Select((m, k) =>
                    $"{m.Label} {(SafeScenesChart.AblationValue(r, k) is { } v ? (100 * v).ToString("F1", System.Globalization.CultureInfo.InvariantCulture) : "–")}")));
            io.Out.WriteLine($"wrote {p.GetValue(outPng)}");
            return ExitCodes.Ok;
        });
        return cmd;
    }

    private static Command TrainCommand()
    {
        var world = new Option<string>("--world") { Description = "Training folder written by safecode safescenes --train", Required = true, HelpName = "DIR2" };
        var outDir = new Option<string>("--out", "-o") { Description = "Checkpoint folder to write (Hub layout)", Required = true, HelpName = "DIR" }.Folder();
        var seed = new Option<long>("--seed") { Description = "Seed of the initial weights and the batch order", DefaultValueFactory = _ => 1, HelpName = "S" };
        var steps = new Option<int>("--steps") { Description = "Optimiser steps", DefaultValueFactory = _ => 3000, HelpName = "N" };
        var batch = new Option<int>("--batch-size") { Description = "Examples per step", DefaultValueFactory = _ => 16, HelpName = "B" };
        var lr = new Option<double>("--lr") { Description = "Peak AdamW learning rate", DefaultValueFactory = _ => 2e-3, HelpName = "X" };
        var vocab = new Option<int>("--vocab") { Description = "Largest BPE vocabulary", DefaultValueFactory = _ => 1536, HelpName = "V" };
        var threads = new Option<int>("--threads") { Description = "CPU threads for torch (0: torch's default)", DefaultValueFactory = _ => 0, HelpName = "N" };
        var saveEvery = new Option<int>("--save-every") { Description = "Also write the checkpoint every N steps (0: only at the end)", DefaultValueFactory = _ => 0, HelpName = "N" };
        var smoothing = new Option<double>("--caption-label-smoothing") { Description = "Label smoothing of the captioning steps (0: none)", DefaultValueFactory = _ => 0, HelpName = "E" };
        var keep = new Option<string>("--keep") { Description = "Also keep a copy of every saved checkpoint (each --save-every, and the last) in DIR3/step-NNNNN, to choose one afterwards with safescenes select", HelpName = "DIR3" }.Folder();
        var cmd = new Command("train", """
            Train the SafeScenes demonstration model from scratch on a training folder: a world-specific byte-level BPE,
            a small LLaVA-architecture checkpoint, AdamW with cross-entropy on the replies only. Writes bf16 weights in
            the Hub layout. Reproducible: the same seed gives the same weights on the same machine and thread count.
            """) { world, outDir, seed, steps, batch, lr, vocab, threads, saveEvery, keep, smoothing };
        Cli.SetExamples(cmd, "safecode safescenes train --world /tmp/scenes-train --out weights/safescenes-tiny --seed 1");
        cmd.SetHandler((p, io) =>
        {
            var o = new SafeScenesTrainOptions
            {
                Seed = p.GetValue(seed), Steps = p.GetValue(steps), BatchSize = p.GetValue(batch), LearningRate = p.GetValue(lr),
                VocabSize = p.GetValue(vocab), Threads = p.GetValue(threads), SaveEvery = p.GetValue(saveEvery),
                SnapshotDir = p.GetValue(keep),
                CaptionLabelSmoothing = p.GetValue(smoothing),
            };
            var r = SafeScenesTrainer.Train(p.GetValue(world)!, p.GetValue(outDir)!, o, line => { io.Out.WriteLine(line); io.Out.Flush(); });
            io.Out.WriteLine($"trained {r.Parameters:N0} parameters (vocab {r.VocabSize}) for {r.Losses.Count} steps in {r.Seconds:F0} s; final loss {r.Losses[^1]:F4}; wrote {Path.GetFullPath(p.GetValue(outDir)!)}");
            return ExitCodes.Ok;
        });
        return cmd;
    }
}
