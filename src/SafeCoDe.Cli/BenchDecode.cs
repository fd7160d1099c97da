using SafeCoDe.Torch.Decoding.Methods;
using System.Diagnostics;
using SafeCoDe.Torch;
using SafeCoDe.Torch.Decoding;
using SafeCoDe.Torch.Models;
using SafeCoDe.Torch.Processing.Images;
using SafeCoDe.Torch.Runtime;
using SafeCoDe.Torch.Safety;
using static TorchSharp.torch;

namespace SafeCoDe.Cli;

/// <summary>
/// <c>safecode bench</c> without <c>--shape</c>: the decode-overhead figures of the fast decode step, side by side in
/// one run — tensors created per layer per step (static and eager), the static step's host time relative to the
/// eager one on a 32-layer tiny-width decoder (median over interleaved steps), and whole SafeCoDe requests on a
/// real checkpoint submitted together versus one at a time on the same engine.
/// </summary>
internal static class BenchDecode
{
    private static readonly string[] Prompts =
    [
        "What is in this picture?", "Describe the colours.", "Is this safe to touch?", "Write a short poem about it.",
        "What could this be used for?", "Count the objects.", "Where might this be?", "Explain the scene to a child.",
    ];

    public static int Run(TextWriter o, CliProgress progress, DeviceRequest device, ScalarType dtype, int steps, string modelDir, bool json)
    {
        var wall = Stopwatch.StartNew();
        var dev = NativeRuntime.SelectDevice(device);
        // one intra-op thread: the figures are host overhead at tiny widths, where libtorch's thread team only adds
        // barrier stalls (on a loaded machine a step then takes 3 ms or 250 ms at random); concurrent requests
        // still use every core through their own threads
        int threads = get_num_threads();
        if (dev.type == TorchSharp.DeviceType.CPU) set_num_threads(1);
        try { return Measure(o, progress, dev, dtype, steps, modelDir, json, device, wall); }
        finally { set_num_threads(threads); }
    }

    private static int Measure(TextWriter o, CliProgress progress, Device dev, ScalarType dtype, int steps, string modelDir, bool json, DeviceRequest device, Stopwatch wall)
    {
        using var bar = progress.Start("bench: tensors per step, static vs eager host time, IDEFICS, concurrent requests", 4, "parts");
        double perLayer = StepProbe.TensorsPerLayerStep(StepPath.Static, dev, dtype);
        double perLayerEager = StepProbe.TensorsPerLayerStep(StepPath.Eager, dev, dtype);
        bar.Report(1);
        (double StaticMs, double EagerMs, double Ratio) host;
        using (var deep = StepProbe.CreateTiny(32, dev, dtype)) host = StepProbe.HostTimes(deep, steps);
        bar.Report(2);
        var ide = Idefics(dev, dtype, steps);
        bar.Report(3);
        var conc = Concurrent(modelDir, device);
        bar.Complete();
        double wallS = wall.Elapsed.TotalSeconds;
        if (json)
            o.WriteLine(CliJson.Write(new
            {
                device = dev.ToString(), dtype = dtype.ToString(), intra_op_threads = get_num_threads(), shape = "llava text decoder, 32 layers, hidden 64, 4 heads / 2 kv heads, head_dim 16",
                tensors_per_layer_step = perLayer, eager_tensors_per_layer_step = perLayerEager,
                static_step_ms = host.StaticMs, eager_step_ms = host.EagerMs, static_vs_eager_host_ratio = host.Ratio, interleaved_steps = steps,
                model = modelDir, requests = 8, new_tokens = 32, judge = "fixed:safe",
                concurrent8_skipped = SkipReason(modelDir),
                sequential8_s = conc?.SequentialS, concurrent8_s = conc?.ConcurrentS,
                sequential8_samples_per_s = conc is null ? (double?)null : 8 / conc.SequentialS,
                concurrent8_samples_per_s = conc is null ? (double?)null : 8 / conc.ConcurrentS,
                concurrent8_vs_sequential_throughput_ratio = conc is null ? (double?)null : conc.SequentialS / conc.ConcurrentS,
                concurrent8_steps = conc?.Steps, concurrent8_forwards = conc?.Forwards, concurrent8_same_tokens = conc?.SameTokens,
                concurrent8_prefills = conc?.ConcurrentPrefills, concurrent8_prefill_forwards = conc?.ConcurrentPrefillForwards,
                idefics_shape = "idefics, 32 layers, gated cross-attention every 4th, hidden 64, 4 heads, head_dim 16, one image (4 latents)",
                idefics_tensors_per_plain_layer_step = ide.Static.PerPlainLayer, idefics_tensors_per_gated_layer_step = ide.Static.PerGatedLayer,
                idefics_eager_tensors_per_plain_layer_step = ide.Eager.PerPlainLayer, idefics_eager_tensors_per_gated_layer_step = ide.Eager.PerGatedLayer,
                idefics_static_step_ms = ide.Host.StaticMs, idefics_eager_step_ms = ide.Host.EagerMs, idefics_static_vs_eager_host_ratio = ide.Host.Ratio,
                sequential8_cpu_s = conc?.SequentialCpuS, concurrent8_cpu_s = conc?.ConcurrentCpuS, concurrent8_trials = Trials, concurrent8_trial_ratios = conc?.TrialRatios,
                sequential8_phase_ms = conc?.SequentialPhases, concurrent8_phase_ms = conc?.ConcurrentPhases,
                sequential8_batcher = conc?.SequentialBatcher, concurrent8_batcher = conc?.ConcurrentBatcher,
                wall_s = wallS,
            }));
        else
        {
            o.WriteLine($"decode overhead on {dev} {dtype} (32-layer tiny-width LLaVA text decoder)");
            o.WriteLine($"  tensors per layer per step     static {perLayer,6:F1}   eager {perLayerEager,6:F1}");
            o.WriteLine($"  host ms per step (median of {steps} interleaved)   static {host.StaticMs:F3}   eager {host.EagerMs:F3}   ratio {host.Ratio:F3}");
            o.WriteLine($"  IDEFICS (32 layers, gated every 4th): tensors per plain layer static {ide.Static.PerPlainLayer:F1} eager {ide.Eager.PerPlainLayer:F1}, " +
                $"per gated layer static {ide.Static.PerGatedLayer:F1} eager {ide.Eager.PerGatedLayer:F1}; host ms static {ide.Host.StaticMs:F3} eager {ide.Host.EagerMs:F3} ratio {ide.Host.Ratio:F3}");
            if (conc is { } c)
            {
                o.WriteLine($"  8 SafeCoDe requests ({modelDir}, fixed:safe, 32 greedy tokens), best of {Trials}: one at a time {c.SequentialS:F3} s, together {c.ConcurrentS:F3} s → ×{c.SequentialS / c.ConcurrentS:F2} (trials ×{string.Join(" ×", c.TrialRatios)}; {c.Steps} steps in {c.Forwards} forwards; same tokens: {c.SameTokens})");
                o.WriteLine($"    process CPU time: one at a time {c.SequentialCpuS:F3} s, together {c.ConcurrentCpuS:F3} s");
                o.WriteLine($"    prefills together: {c.ConcurrentPrefills} requests in {c.ConcurrentPrefillForwards} forwards");
                o.WriteLine($"    batcher, one at a time: {c.SequentialBatcher}");
                o.WriteLine($"    batcher, together:      {c.ConcurrentBatcher}");
                o.WriteLine($"    phase ms summed over the 8 (one at a time): {c.SequentialPhases}");
                o.WriteLine($"    phase ms summed over the 8 (together):      {c.ConcurrentPhases}");
            }
            else o.WriteLine($"  concurrent requests: skipped ({modelDir}: {SkipReason(modelDir)})");
            o.WriteLine($"  wall {wallS:F1} s");
        }
        return 0;
    }

    /// <summary>
    /// IDEFICS v1's own decoder: tensors per plain and per gated layer (static and eager), and the static / eager host
    /// time on a 32-layer tiny-width IDEFICS with a gated cross-attention layer before every 4th layer (IDEFICS-9B's
    /// interval), after a one-image prompt.
    /// </summary>
    private static ((double PerPlainLayer, double PerGatedLayer) Static, (double PerPlainLayer, double PerGatedLayer) Eager,
        (double StaticMs, double EagerMs, double Ratio) Host) Idefics(Device dev, ScalarType dtype, int steps)
    {
        var st = IdeficsStepProbe.TensorsPerLayerStep(StepPath.Static, dev, dtype);
        var eager = IdeficsStepProbe.TensorsPerLayerStep(StepPath.Eager, dev, dtype);
        var prompt = IdeficsStepProbe.Prompt(1, 32, 1);
        try
        {
            using var deep = IdeficsStepProbe.CreateTiny(32, 4, dev, dtype);
            return (st, eager, StepProbe.HostTimes(deep, prompt, steps));
        }
        finally { IdeficsStepProbe.Dispose(prompt); }
    }

    /// <summary>
    /// Request phases summed over a set of requests, in ms (from each result's timings): when requests run together
    /// the sums overlap in time, so they show where each request spent its wall time, not the engine's.
    /// </summary>
    internal sealed record PhaseSums(double Preprocess, double Prefill, double Guided, double Continuation, double Total)
    {
        public static PhaseSums Of(IEnumerable<SafeCoDeResult> rs)
        {
            var t = rs.Select(r => r.Timings).ToList();
            return new(Math.Round(t.Sum(x => x.PreprocessMs), 1), Math.Round(t.Sum(x => x.PrefillMs), 1), Math.Round(t.Sum(x => x.GuidedMs), 1),
                Math.Round(t.Sum(x => x.ContinuationMs), 1), Math.Round(t.Sum(x => x.TotalMs), 1));
        }
        public override string ToString() => $"preprocess {Preprocess:F1}, prefill {Prefill:F1}, guided {Guided:F1}, continuation {Continuation:F1}, total {Total:F1}";
    }

    /// <summary>What the concurrent-requests part measured: best-of-trials times, each trial's ratio, the profiles of the best trials.</summary>
    internal sealed record ConcurrentFigures(double SequentialS, double ConcurrentS, double[] TrialRatios, long Steps, long Forwards, bool SameTokens,
        PhaseSums SequentialPhases, PhaseSums ConcurrentPhases, SafeCoDe.Torch.Decoding.Scheduling.DecodeBatchProfile SequentialBatcher,
        SafeCoDe.Torch.Decoding.Scheduling.DecodeBatchProfile ConcurrentBatcher, double SequentialCpuS, double ConcurrentCpuS,
        long ConcurrentPrefills, long ConcurrentPrefillForwards);

    /// <summary>Why the concurrent-requests part cannot run on <paramref name="modelDir"/> (null: it can).</summary>
    internal static string? SkipReason(string modelDir) =>
        File.Exists(modelDir) ? "is a file, not a model folder"
        : !Directory.Exists(modelDir) ? "no such folder"
        : !File.Exists(Path.Combine(modelDir, "config.json")) ? "the folder holds no config.json"
        : null;

    /// <summary>Trials of the concurrent-requests part: each runs the 8 requests one at a time, then together.</summary>
    internal const int Trials = 3;

    /// <summary>
    /// 8 whole requests one at a time, then submitted together, on one engine (after one warm-up of each), repeated
    /// <see cref="Trials"/> times interleaved; the throughput ratio compares the fastest trial of each mode (the
    /// machine may be shared: the fastest run is the least disturbed one), and every trial's own ratio is kept.
    /// </summary>
    private static ConcurrentFigures? Concurrent(string modelDir, DeviceRequest device)
    {
        if (SkipReason(modelDir) is not null) return null;
        using var engine = SafeCoDeEngine.Load(modelDir, new EngineOptions { Device = device, MaxBatchRows = 16 });
        var imagePath = Path.Combine(modelDir, "example.png");
        var image = File.Exists(imagePath) ? ImageDecoder.Load(imagePath) : RgbImage.Filled(336, 336, 120, 90, 60);
        SafeCoDeRequest Req(int i) => new()
        {
            Prompt = Prompts[i], Image = image, Judge = new FixedJudge(Verdict.Safe),
            Options = DecodingMethods.Defaults(DecodingMethods.Default) with { Greedy = true, MaxNewTokens = 32, MaxTotalTokens = 32, Seed = 1 },
        };
        SafeCoDeResult[] Sequential() => Enumerable.Range(0, 8).Select(i => engine.GenerateAsync(Req(i)).GetAwaiter().GetResult()).ToArray();
        SafeCoDeResult[] Together() => Task.WhenAll(Enumerable.Range(0, 8).Select(i => engine.GenerateAsync(Req(i)))).GetAwaiter().GetResult();
        var self = Process.GetCurrentProcess();
        (double S, SafeCoDeResult[] R, SafeCoDe.Torch.Decoding.Scheduling.DecodeBatchProfile P, double Cpu, (long Prefills, long Forwards) Pf) Timed(Func<SafeCoDeResult[]> run)
        {
            var p0 = engine.DecodeBatchProfile;
            var f0 = engine.PrefillBatchCounts;
            self.Refresh();
            var cpu0 = self.TotalProcessorTime;
            var sw = Stopwatch.StartNew();
            var r = run();
            double s = sw.Elapsed.TotalSeconds;
            self.Refresh();
            var f1 = engine.PrefillBatchCounts;
            return (s, r, engine.DecodeBatchProfile.Since(p0), (self.TotalProcessorTime - cpu0).TotalSeconds, (f1.Prefills - f0.Prefills, f1.Forwards - f0.Forwards));
        }
        Sequential(); Together(); // warm-up
        var seq = new List<(double S, SafeCoDeResult[] R, SafeCoDe.Torch.Decoding.Scheduling.DecodeBatchProfile P, double Cpu, (long Prefills, long Forwards) Pf)>();
        var tog = new List<(double S, SafeCoDeResult[] R, SafeCoDe.Torch.Decoding.Scheduling.DecodeBatchProfile P, double Cpu, (long Prefills, long Forwards) Pf)>();
        for (int t = 0; t < Trials; t++) { seq.Add(Timed(Sequential)); tog.Add(Timed(Together)); }
        var bs = seq.MinBy(x => x.S);
        var bt = tog.MinBy(x => x.S);
        bool same = seq.Concat(tog).All(run => run.R.Zip(seq[0].R).All(p => p.First.TokenIds.SequenceEqual(p.Second.TokenIds)));
        return new ConcurrentFigures(bs.S, bt.S, seq.Zip(tog).Select(p => Math.Round(p.First.S / p.Second.S, 2)).ToArray(), bt.P.Steps, bt.P.Forwards, same,
            PhaseSums.Of(bs.R), PhaseSums.Of(bt.R), bs.P, bt.P, bs.Cpu, bt.Cpu, bt.Pf.Prefills, bt.Pf.Forwards);
    }
}
