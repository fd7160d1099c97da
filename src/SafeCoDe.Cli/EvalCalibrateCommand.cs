using System.CommandLine;
using System.Globalization;
using SafeCoDe.Eval;
using SafeCoDe.Eval.Benchmarks;
using SafeCoDe.Torch;
using SafeCoDe.Torch.Runtime;

namespace SafeCoDe.Cli;

/// <summary><c>safecode eval calibrate ppl</c>: the perplexity filter's threshold for a model, measured on a prompt set.</summary>
public static class EvalCalibrateCommand
{
    /// <summary>Builds <c>calibrate</c> with its <c>ppl</c> command.</summary>
    public static Command Create()
    {
        var cmd = new Command("calibrate", "Calibrate a method's per-model setting on a prompt set");
        cmd.Add(Ppl());
        return cmd;
    }

    private static Command Ppl()
    {
        var benchmark = new Option<string>("--benchmark", "-b") { Description = "The benchmark whose questions are the plain (non-adversarial) prompt set", Required = true, HelpName = "NAME" };
        var data = new Option<string>("--data", "-d") { Description = "Its local copy", Required = true, HelpName = "PATH" };
        var model = CliOptions.Model("The checkpoint whose language model scores the questions (the ppl method's self or local:DIR)");
        var device = CliOptions.Device();
        var write = new Option<bool>("--write") { Description = $"Store the threshold in the model folder ({SafeCoDeEngine.PerplexityCalibrationFile}), where the ppl method finds it when --ppl-threshold is not given" };
        var force = new Option<bool>("--force") { Description = $"With --write: replace an existing {SafeCoDeEngine.PerplexityCalibrationFile}" };
        var json = CliOptions.Json("Print the calibration as one JSON object");
        var quiet = CliOptions.Quiet();
        var cmd = new Command("ppl", "The ppl method's threshold for a model: the highest perplexity of a benchmark's questions (raw, no template, no image) under the model's language model, " +
            "as the filter's authors set GPT-2's 175.57 on AdvBench; the GPT-2 figure means nothing for another model") { benchmark, data, model, device, write, force, json, quiet };
        Cli.SetExamples(cmd,
            "safecode eval calibrate ppl -b mossbench -d data/MOSSBench -m DIR --write",
            "safecode eval calibrate ppl -b jsonl -d benign.jsonl -m DIR --json");
        cmd.SetHandler((p, io) =>
        {
            var dir = p.GetValue(model)!;
            var target = Path.Combine(dir, SafeCoDeEngine.PerplexityCalibrationFile);
            if (p.GetValue(write) && File.Exists(target) && !p.GetValue(force)) throw new UsageException($"--write: {target} exists (add --force to replace it)");
            string bench;
            try { bench = BenchmarkReaders.Get(p.GetValue(benchmark)!).Name; }
            catch (ArgumentException ex) { throw new UsageException("--benchmark: " + ex.Message.Split(" (Parameter")[0]); }
            bool silent = p.GetValue(quiet) || p.GetValue(json);
            var progress = CliProgress.For(io, silent);
            using var engine = SafeCoDeEngine.Load(dir, new EngineOptions { Device = RuntimeOptions.ParseDevice(p.GetValue(device)!) });
            IProgressBar? bar = null;
            PerplexityCalibrationResult r;
            try { r = PerplexityCalibration.Run(engine, bench, p.GetValue(data)!, ReaderSelection.All, (done, total) => (bar ??= progress.Start("perplexity", total, "questions")).Report(done)); }
            catch (BenchmarkLayoutException ex) { throw new UsageException($"--data {p.GetValue(data)}: {ex.Message}"); }
            finally { bar?.Complete(); }
            var doc = r.ToJson(engine.ModelName, bench, p.GetValue(data)!);
            if (p.GetValue(write)) File.WriteAllText(target, doc.ToJsonString(EvalJson.Indented) + "\n");
            if (p.GetValue(json)) io.Out.WriteLine(doc.ToJsonString(EvalJson.Indented));
            else
            {
                io.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"threshold {r.Threshold:G6} (highest of {r.Prompts} questions, sample {r.HighestId}); median {r.Median:G6}, p95 {r.P95:G6}") +
                    (r.Problems > 0 ? $"; {r.Problems} record(s) not readable were left out" : ""));
                io.Out.WriteLine(p.GetValue(write) ? $"written to {target}" : $"use it with --ppl-threshold {r.Threshold.ToString("G6", CultureInfo.InvariantCulture)}, or store it with --write");
            }
            return ExitCodes.Ok;
        });
        return cmd;
    }
}
