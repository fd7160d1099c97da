using System.CommandLine;
using System.Diagnostics;
using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Runtime;

namespace SafeCoDe.Cli;

/// <summary><c>safecode make-random</c>: a random-weight checkpoint for any supported config.json.</summary>
public static class MakeRandomCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var config = new Option<string>("--config") { Description = "The config.json to build (any supported family)", Required = true, HelpName = "FILE" };
        var outDir = new Option<string>("--out", "-o") { Description = "Output folder (Hub layout)", Required = true, HelpName = "DIR" }.Folder();
        var tokenizer = new Option<string>("--tokenizer") { Description = "Copy the tokenizer files of this folder", HelpName = "DIR" };
        var preprocessor = new Option<string>("--preprocessor") { Description = "preprocessor_config.json to ship [default: one derived from the config]", HelpName = "FILE" };
        var seed = new Option<long>("--seed") { Description = "Seed of the random weights", DefaultValueFactory = _ => 0, HelpName = "S" };
        var dtype = CliOptions.DType("float32", "dtype of the written weights: float32, bfloat16 or float16");
        var shard = new Option<string>("--shard-size") { Description = "Split the weights into files of at most this size (e.g. 4GB, 500MB) [default: one file]", HelpName = "SIZE" };
        var initScale = new Option<double>("--init-scale") { Description = "Scale of the random initialisation", DefaultValueFactory = _ => 1.5, HelpName = "X" };
        var cmd = new Command("make-random", """
            Write a random-weight checkpoint of any supported family for a config.json, in the Hub layout, with
            generation/preprocessor configs and the tokenizer files of --tokenizer.
            """) { config, outDir, tokenizer, preprocessor, seed, dtype, shard, initScale };
        Cli.SetExamples(cmd, "safecode make-random --config llava-1.5-7b/config.json --out /tmp/llava-random --tokenizer llava-1.5-7b --dtype bfloat16 --shard-size 4GB");
        var quiet = CliOptions.Quiet();
        cmd.Add(quiet);
        cmd.SetHandler((p, io) =>
        {
            var progress = CliProgress.For(io, p.GetValue(quiet));
            IProgressBar? bar = null;
            var opts = new RandomCheckpointOptions
            {
                TokenizerDir = p.GetValue(tokenizer),
                PreprocessorConfig = p.GetValue(preprocessor),
                Seed = p.GetValue(seed),
                DType = SafeCoDe.Torch.Models.Backbones.ParseDType(p.GetValue(dtype)!),
                ShardBytes = p.GetValue(shard) is { } s ? CliOptions.ParseBytes(s, "--shard-size") : 0,
                InitScale = p.GetValue(initScale),
                Progress = new CliProgress.Inline<(long done, long total)>(x =>
                {
                    bar ??= progress.Start("drawing random weights", x.total, "bytes");
                    bar.Report(x.done);
                }),
            };
            var dir = p.GetValue(outDir)!;
            NativeRuntime.Initialize(new RuntimeOptions { Device = DeviceRequest.Cpu });
            var sw = Stopwatch.StartNew();
            try { RandomCheckpoint.Write(p.GetValue(config)!, dir, opts); }
            finally { bar?.Complete($"{Path.GetFullPath(dir)}"); }
            var report = InspectReport.From(ModelDirectory.Open(dir));
            io.Out.WriteLine($"wrote {report.Family} with {report.ParameterCount:N0} random parameters ({InspectReport.HumanBytes(report.TotalBytes)}, {report.Files.Count} file(s)) to {Path.GetFullPath(dir)} in {sw.Elapsed.TotalSeconds:F1} s");
            return ExitCodes.Ok;
        });
        return cmd;
    }
}
