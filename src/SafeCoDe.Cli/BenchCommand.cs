using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Decoding.Methods;
using SafeCoDe.Torch.Decoding.Sessions;
using SafeCoDe.Torch.Models;
using SafeCoDe.Torch.Models.Common;
using SafeCoDe.Torch.Models.Llava;
using SafeCoDe.Torch.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace SafeCoDe.Cli;

/// <summary>
/// <c>safecode bench</c>: decode speed at real model shapes with random weights (no checkpoint needed), measured
/// side by side in one process: prefill, plain decode (one branch), SafeCoDe's two branches as one batch, and the
/// two branches as two separate passes (what the reference code and VCD do).
/// </summary>
public static class BenchCommand
{
    private const string Llava15_7B = """
        {"model_type": "llava", "image_token_index": 32000, "projector_hidden_act": "gelu", "vision_feature_layer": -2,
         "vision_feature_select_strategy": "default",
         "text_config": {"model_type": "llama", "vocab_size": 32064, "hidden_size": 4096, "intermediate_size": 11008,
                         "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 32, "rms_norm_eps": 1e-5,
                         "max_position_embeddings": 4096},
         "vision_config": {"model_type": "clip_vision_model", "hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24,
                           "num_attention_heads": 16, "image_size": 336, "patch_size": 14, "projection_dim": 768}}
        """;

    private const string LlavaNext7B = """
        {"model_type": "llava_next", "image_token_index": 32000, "projector_hidden_act": "gelu", "vision_feature_layer": -2,
         "vision_feature_select_strategy": "default", "image_grid_pinpoints": [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]],
         "text_config": {"model_type": "llama", "vocab_size": 32064, "hidden_size": 4096, "intermediate_size": 11008,
                         "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 32, "rms_norm_eps": 1e-5,
                         "max_position_embeddings": 4096},
         "vision_config": {"model_type": "clip_vision_model", "hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24,
                           "num_attention_heads": 16, "image_size": 336, "patch_size": 14, "projection_dim": 768}}
        """;

    /// <summary>Text stand-in for a tokenizer (random weights need none): fixed words per id.</summary>
    private sealed class WordCodec : SafeCoDe.Torch.Decoding.ITokenCodec
    {
        public long[] Encode(string text) => text.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(w => (long)(3 + (uint)w.GetHashCode() % 31990)).ToArray();
        public string Decode(IReadOnlyList<long> ids, bool skipSpecialTokens = false) => string.Concat(ids.Select(i => " w" + i));
    }

    /// <summary>
    /// One whole SafeCoDe request at LLaVA-NeXT-7B shapes (672×672 image → 5 tiles), as tools/fixtures/perf_ref_request.py
    /// times the reference: 5 guided steps (safe verdict, no early exit) then sampling to 256 tokens; next to plain
    /// greedy decoding of 256 tokens.
    /// </summary>
    private static int Request(TextWriter o, CliProgress progress, DeviceRequest device, ScalarType dtype, bool json, string? configPath)
    {
        var cfg = ModelConfig.Load(configPath ?? WriteTemp(LlavaNext7B)) as LlavaConfig is { ImageGridPinpoints: not null } c ? c
            : throw new UsageException("--request needs a LLaVA-NeXT (llava_next) config");
        int tiles = AnyRes.NumPatches(672, 672, cfg.ImageGridPinpoints!, cfg.Vision.ImageSize), side = cfg.Vision.ImageSize;
        int vocab = (int)Math.Min(cfg.Text.VocabSize, cfg.ImageTokenId);
        var dev = NativeRuntime.SelectDevice(device);
        using var module = Backbones.Create(cfg, new ParamFactory(dev, dtype)).module;
        var model = (IBackbone)module;
        Randomize(module);
        int n = SafeCoDe.Torch.Processing.Images.ImageProcessors.For(cfg, SafeCoDe.Torch.Checkpoints.JsonConfig.FromJson(
            SafeCoDe.Torch.Checkpoints.RandomCheckpoint.DefaultPreprocessorConfig(cfg).ToJsonString())).Layout(672, 672).NumImageTokens;
        var gen = new torch.Generator(1234);
        var pre = randint(2, vocab - 1, [1, 40], generator: gen, dtype: ScalarType.Int64);
        var post = randint(2, vocab - 1, [1, 60], generator: gen, dtype: ScalarType.Int64);
        using var imageToken = ((long)cfg.ImageTokenId).ToScalar();
        var ids = cat([ones(1, 1, dtype: ScalarType.Int64), pre, full(1, n, imageToken, ScalarType.Int64), post], 1);
        var pv = randn([1, tiles, 3, side, side], generator: gen).to(dtype);
        using var noiseScale = 0.37.ToScalar();
        using var alpha = 1.ToScalar();
        var pvn = pv.to(ScalarType.Float32).add(randn([1, tiles, 3, side, side], generator: gen) * noiseScale, alpha).to(dtype);
        var sizes = tensor(new long[] { 672, 672 }).view(1, 2);
        var real = new BackboneInputs(ids, null, new Dictionary<string, Tensor> { ["pixel_values"] = pv, ["image_sizes"] = sizes });
        var noised = real with { Images = new Dictionary<string, Tensor> { ["pixel_values"] = pvn, ["image_sizes"] = sizes } };
        var codec = new WordCodec();
        var refusal = new SafeCoDe.Torch.Decoding.RefusalTokens(SafeCoDe.Torch.Decoding.RefusalTokens.ReferencePhrases, codec, model.VocabSize);
        // the default method's request (SafeCoDe) with its early exit and rollback off, so every run guides the same span
        var opts = Without(DecodingMethods.Defaults(DecodingMethods.Default), "early-exit", "corruption-rollback") with { Seed = 1, MaxNewTokens = 251 };

        (double total, double guided, double prefill, int tokens) TimeRequest(int budget)
        {
            Sync(dev);
            var sw = Stopwatch.StartNew();
            using var b = DecodeSessions.Open(model, real, noised, budget + 6, 0);
            Sync(dev);
            double prefill = sw.Elapsed.TotalMilliseconds;
            var r = MethodDecoder.Decode(model, b, SafeCoDe.Torch.Safety.Verdict.Safe, opts with { MaxNewTokens = budget }, codec, refusal, [], (int)ids.shape[1]);
            Sync(dev);
            return (sw.Elapsed.TotalMilliseconds, prefill + r.GuidedMs, prefill, r.Tokens.Length);
        }
        using var bar = progress.Start("bench --request: warm-up, SafeCoDe request, plain generation", 4, "runs");
        TimeRequest(8); bar.Report(1); TimeRequest(8); bar.Report(2); // warm-up (kernels, tiered JIT)
        var req = TimeRequest(251);
        bar.Report(3);
        Sync(dev);
        var sw2 = Stopwatch.StartNew();
        var plain = DecodeSessions.Greedy(model, real, 256, []);
        Sync(dev);
        double plainMs = sw2.Elapsed.TotalMilliseconds;
        bar.Complete();
        if (json)
            o.WriteLine(CliJson.Write(new { prompt_tokens = ids.shape[1], image_tokens = n, safecode_request_256_ms = req.total, guided_5_steps_incl_prefill_ms = req.guided,
                prefill_2_branches_ms = req.prefill, tokens = req.tokens, vanilla_greedy_256_ms = plainMs }));
        else
        {
            o.WriteLine($"SafeCoDe request at {(configPath is null ? "LLaVA-NeXT-7B shapes" : configPath)} on {dev} {dtype}: prompt {ids.shape[1]} tokens ({n} image, {tiles} tiles), 256-token answer");
            o.WriteLine($"  prefill, real + noised as one batch          {req.prefill,9:F1} ms");
            o.WriteLine($"  ... + 5 guided steps                          {req.guided,9:F1} ms");
            o.WriteLine($"  whole request ({req.tokens} tokens)                 {req.total,9:F1} ms");
            o.WriteLine($"  plain greedy generation, 256 tokens           {plainMs,9:F1} ms");
        }
        return 0;
    }

    /// <summary>The options with each named switch of their method set to false (the ones the method has).</summary>
    private static DecodingOptions Without(DecodingOptions o, params string[] switches)
    {
        foreach (var name in switches)
            if (DecodingMethods.OptionOf(DecodingMethods.Of(o), name) is { IsSwitch: true } opt && opt.AppliesTo(o)) o = opt.Set(o, false);
        return o;
    }

    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var shapeO = CliOptions.Choice("--shape", "Model shapes to build with random weights (without --shape, --config or --request: the decode-overhead bench)", ["llava-1.5-7b"], null);
        var modelO = new Option<string>("--model", "-m") { Description = $"Checkpoint for the concurrent-requests part of the decode-overhead bench (weights/llava-next-tiny measures a 32k-vocabulary LLaVA-NeXT); {ShippedModel.HelpText}", DefaultValueFactory = _ => ShippedModel.Dir, HelpName = "DIR" };
        var configO = new Option<string>("--config") { Description = "Build the shapes of this config.json instead (LLaVA-1.5; LLaVA-NeXT with --request)", HelpName = "FILE" };
        var deviceO = CliOptions.Device();
        var dtypeO = CliOptions.DType("bfloat16");
        var stepsO = new Option<int>("--steps") { Description = "Decode steps per measurement", DefaultValueFactory = _ => 128, HelpName = "N" };
        var textO = new Option<int>("--text-tokens") { Description = "Text tokens in the prompt besides the image tokens", DefaultValueFactory = _ => 41, HelpName = "N" };
        var jsonO = CliOptions.Json();
        var requestO = new Option<bool>("--request") { Description = "Time one whole SafeCoDe request at LLaVA-NeXT-7B shapes (5 tiles, 256-token answer) next to plain greedy decoding" };
        var cmd = new Command("bench", """
            Decode speed at real shapes with random weights (no checkpoint needed): prefill, plain decode, SafeCoDe's two
            branches as one batch, and as two separate passes, measured side by side.
            Without --shape / --config / --request: the decode-overhead bench (tensors per layer per step, static vs eager
            step host time at 32 tiny layers, 8 concurrent SafeCoDe requests vs one at a time).
            """) { shapeO, configO, deviceO, dtypeO, stepsO, textO, jsonO, requestO, modelO };
        Cli.SetExamples(cmd, "safecode bench --device cuda --dtype bfloat16", "safecode bench --request --device cuda --json");
        var quietO = CliOptions.Quiet();
        cmd.Add(quietO);
        cmd.SetHandler((p, io) =>
        {
            var bar = CliProgress.For(io, p.GetValue(jsonO) || p.GetValue(quietO));
            var dev = RuntimeOptions.ParseDevice(p.GetValue(deviceO)!);
            if (p.GetValue(shapeO) is null && p.GetValue(configO) is null && !p.GetValue(requestO))
            {
                bool dtypeGiven = p.GetResult(dtypeO) is { Implicit: false };
                int steps = p.GetResult(stepsO) is { Implicit: false } ? p.GetValue(stepsO) : 200;
                if (p.Given(modelO) && BenchDecode.SkipReason(p.GetValue(modelO)!) is { } why) throw new UsageException($"--model {p.GetValue(modelO)}: {why}");
                return BenchDecode.Run(io.Out, bar, dev, dtypeGiven ? Backbones.ParseDType(p.GetValue(dtypeO)!) : ScalarType.Float32, steps, p.GetValue(modelO)!, p.GetValue(jsonO));
            }
            return Run(io.Out, bar, p.GetValue(shapeO) ?? "llava-1.5-7b", p.GetValue(configO), dev,
                Backbones.ParseDType(p.GetValue(dtypeO)!), p.GetValue(stepsO), p.GetValue(textO), p.GetValue(jsonO), p.GetValue(requestO));
        });
        return cmd;
    }

    private static int Run(TextWriter o, CliProgress progress, string shape, string? configPath, DeviceRequest device, ScalarType dtype, int steps, int textTokens, bool json, bool request)
    {
        if (steps < 1) throw new UsageException($"--steps {steps}: must be ≥ 1");
        if (request) return Request(o, progress, device, dtype, json, configPath);

        string cfgFile = configPath ?? WriteTemp(shape switch
        {
            "llava-1.5-7b" => Llava15_7B,
            _ => throw new UsageException($"unknown --shape '{shape}' (known: llava-1.5-7b; or give --config FILE)"),
        });
        var cfg = ModelConfig.Load(cfgFile) is LlavaConfig { ImageGridPinpoints: null } l ? l
            : throw new UsageException("bench builds LLaVA-1.5 (model_type llava) shapes so far");
        var dev = NativeRuntime.SelectDevice(device);
        var f = new ParamFactory(dev, dtype);
        using var bar = progress.Start($"bench {configPath ?? shape}: build, 2 warm-ups, 2 measured rounds", 1 + 2 + 2 * 5, "steps");
        int stepNo = 0;
        var sw = Stopwatch.StartNew();
        using var module = Backbones.Create(cfg, f).module;
        var model = (IBackbone)module;
        Randomize(module);
        Sync(dev);
        double buildMs = sw.Elapsed.TotalMilliseconds;
        bar.Report(++stepNo, "(built)");
        long paramCount = module.parameters().Sum(p => p.numel());

        // prompt: BOS, text, image tokens, text (LLaVA-1.5: 576 image tokens at 336 px)
        int nImg = cfg.Vision.NumPatches + (cfg.VisionFeatureSelectStrategy == "full" ? 1 : 0);
        var gen = new torch.Generator(1234);
        var ids = randint(3, Math.Min(cfg.Text.VocabSize, cfg.ImageTokenId), [1, textTokens + nImg], generator: gen, dtype: ScalarType.Int64);
        using (var imageToken = cfg.ImageTokenId.ToScalar()) ids.narrow(1, 5, nImg).fill_(imageToken);
        var pix = randn([1, 3, cfg.Vision.ImageSize, cfg.Vision.ImageSize], generator: gen);
        using var noiseScale = 0.1.ToScalar();
        using var alpha = 1.ToScalar();
        var pixN = pix.add(randn([1, 3, cfg.Vision.ImageSize, cfg.Vision.ImageSize], generator: gen) * noiseScale, alpha);
        var single = new BackboneInputs(ids, null, new Dictionary<string, Tensor> { ["pixel_values"] = pix.to(dtype) });
        var noised = new BackboneInputs(ids, null, new Dictionary<string, Tensor> { ["pixel_values"] = pixN.to(dtype) });
        var pair = BatchCollator.Collate([single, noised], 0);

        // warm-up: allocator, kernels, and .NET's tiered JIT (the first calls run unoptimised code)
        for (int w = 0; w < 2; w++)
        {
            Decode(model, single, 32, dev);
            Decode(model, pair, 32, dev);
            DecodeSeparate(model, single, noised, 32, dev);
            Time(() => { var (s, l) = model.Prefill(single, 1); s.Dispose(); l.Dispose(); }, dev, 2);
            bar.Report(++stepNo, "(warm-up)");
        }
        // interleaved rounds, best of each (the machine is shared)
        double prefill1 = double.MaxValue, prefill2 = double.MaxValue, one = double.MaxValue, batched = double.MaxValue, separate = double.MaxValue;
        for (int round = 0; round < 2; round++)
        {
            prefill1 = Math.Min(prefill1, Time(() => { var (s, l) = model.Prefill(single, 1); s.Dispose(); l.Dispose(); }, dev, 5));
            bar.Report(++stepNo, "(prefill)");
            prefill2 = Math.Min(prefill2, Time(() => { var (s, l) = model.Prefill(pair, 1); s.Dispose(); l.Dispose(); }, dev, 5));
            bar.Report(++stepNo, "(prefill, 2 branches)");
            one = Math.Min(one, Decode(model, single, steps, dev));
            bar.Report(++stepNo, "(decode)");
            batched = Math.Min(batched, Decode(model, pair, steps, dev));
            bar.Report(++stepNo, "(decode, 2 branches)");
            separate = Math.Min(separate, DecodeSeparate(model, single, noised, steps, dev));
            bar.Report(++stepNo, "(decode, 2 passes)");
        }
        bar.Complete();

        var rows = new (string name, double ms)[]
        {
            ($"prefill, 1 branch ({ids.shape[1]} tokens, {nImg} image)", prefill1),
            ("prefill, 2 branches batched", prefill2),
            ("decode ms/token, 1 branch", one),
            ("decode ms/step, 2 branches batched (SafeCoDe)", batched),
            ("decode ms/step, 2 branches as 2 passes", separate),
        };
        if (json)
        {
            o.WriteLine(CliJson.Write(new
            {
                shape = configPath ?? shape, device = dev.ToString(), dtype = dtype.ToString(), parameters = paramCount, steps,
                prompt_tokens = ids.shape[1], image_tokens = nImg, build_ms = buildMs,
                prefill_1_ms = prefill1, prefill_2_ms = prefill2, decode_1_ms = one, decode_2_batched_ms = batched, decode_2_separate_ms = separate,
                batched_over_plain = batched / one, separate_over_plain = separate / one,
            }));
        }
        else
        {
            o.WriteLine($"bench {configPath ?? shape} on {dev} {dtype}: {paramCount / 1e9:F2} B parameters (random), {steps} decode steps");
            foreach (var (name, ms) in rows) o.WriteLine($"  {name,-52} {ms,9:F2} ms");
            o.WriteLine($"  {"batched branches / plain decode",-52} {batched / one,9:F3} x");
            o.WriteLine($"  {"separate passes / plain decode",-52} {separate / one,9:F3} x");
        }
        return 0;
    }

    private static string WriteTemp(string json)
    {
        var p = Path.Combine(Path.GetTempPath(), $"safecode-bench-{Environment.ProcessId}.json");
        File.WriteAllText(p, json);
        return p;
    }

    private static void Randomize(nn.Module m)
    {
        using var _ = no_grad();
        foreach (var (name, p) in m.named_parameters())
        {
            if (name.EndsWith("norm.weight") || name.EndsWith("layernorm.weight") || name.EndsWith("layrnorm.weight") || name.Contains("layer_norm")) { using var one = 1.0.ToScalar(); p.fill_(one); }
            else if (name.EndsWith(".bias")) p.zero_();
            else p.normal_(0, 0.02);
        }
    }

    private static void Sync(Device d) { if (d.type == DeviceType.CUDA) torch.cuda.synchronize(); }

    private static double Time(Action act, Device d, int reps)
    {
        Sync(d);
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < reps; i++) { using var s = NewDisposeScope(); act(); }
        Sync(d);
        return sw.Elapsed.TotalMilliseconds / reps;
    }

    /// <summary>ms per decode step of a batch (greedy tokens fed back, one host sync per step as in generation).</summary>
    private static double Decode(IBackbone model, BackboneInputs inputs, int steps, Device d)
    {
        var (state, logits) = model.Prefill(inputs, steps + 1);
        using (state)
        {
            var tok = logits.argmax(1);
            logits.Dispose();
            Sync(d);
            var sw = Stopwatch.StartNew();
            for (int i = 0; i < steps; i++)
            {
                using var scope = NewDisposeScope();
                var l = model.Step(state, tok);
                var next = l.argmax(1);
                _ = next.cpu().data<long>()[0];
                tok.Dispose();
                tok = next.MoveToOuterDisposeScope();
            }
            Sync(d);
            tok.Dispose();
            return sw.Elapsed.TotalMilliseconds / steps;
        }
    }

    /// <summary>Two branches stepped as two batch-1 passes with their own caches.</summary>
    private static double DecodeSeparate(IBackbone model, BackboneInputs a, BackboneInputs b, int steps, Device d)
    {
        var (sa, la) = model.Prefill(a, steps + 1);
        var (sb, lb) = model.Prefill(b, steps + 1);
        using (sa) using (sb)
        {
            var ta = la.argmax(1); var tb = lb.argmax(1);
            la.Dispose(); lb.Dispose();
            Sync(d);
            var sw = Stopwatch.StartNew();
            for (int i = 0; i < steps; i++)
            {
                using var scope = NewDisposeScope();
                var na = model.Step(sa, ta).argmax(1);
                var nb = model.Step(sb, tb).argmax(1);
                _ = (na - nb).cpu().data<long>()[0];
                ta.Dispose(); tb.Dispose();
                ta = na.MoveToOuterDisposeScope(); tb = nb.MoveToOuterDisposeScope();
            }
            Sync(d);
            ta.Dispose(); tb.Dispose();
            return sw.Elapsed.TotalMilliseconds / steps;
        }
    }
}
