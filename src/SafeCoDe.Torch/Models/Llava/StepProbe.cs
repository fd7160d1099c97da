using SafeCoDe.Torch.Runtime;
using System.Diagnostics;
using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Models.Common;
using TorchSharp;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Models;

/// <summary>Which decode step a measurement runs.</summary>
public enum StepPath
{
    /// <summary>The reference step (per-layer projections, RoPE from positions, exact-length bool mask).</summary>
    Eager,
    /// <summary>The fixed-shape step (fused weights, RoPE table, additive mask, bucketed attention length).</summary>
    Static,
}

/// <summary>
/// Host-overhead measurements of one decode step on a random-weight LLaVA text decoder of real depth and tiny width
/// (where the host, not the arithmetic, sets the time): tensors created per layer per step and the static step's
/// host time relative to the eager one. <c>safecode bench</c> reports them; the budget test enforces the first.
/// </summary>
public static class StepProbe
{
    /// <summary>A LLaVA-1.5 config with <paramref name="layers"/> text layers at tiny widths (grouped-query attention, head_dim 16).</summary>
    public static string TinyConfigJson(int layers) => $$$"""
        {"model_type": "llava", "image_token_index": 511, "projector_hidden_act": "gelu", "vision_feature_layer": -2,
         "vision_feature_select_strategy": "default", "pad_token_id": 0,
         "text_config": {"model_type": "llama", "vocab_size": 512, "hidden_size": 64, "intermediate_size": 128,
                         "num_hidden_layers": {{{layers}}}, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
                         "rms_norm_eps": 1e-6, "max_position_embeddings": 4096, "hidden_act": "silu"},
         "vision_config": {"model_type": "clip_vision_model", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                           "num_attention_heads": 4, "image_size": 28, "patch_size": 14, "projection_dim": 32}}
        """;

    /// <summary>Builds the tiny model of <see cref="TinyConfigJson"/> with random weights (normal 0.02, norms 1, biases 0).</summary>
    public static IBackbone CreateTiny(int layers, Device device, ScalarType dtype)
    {
        var dir = Path.Combine(Path.GetTempPath(), $"safecode-probe-{Environment.ProcessId}-{layers}");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "config.json"), TinyConfigJson(layers));
        var cfg = ModelConfig.Load(dir);
        var module = Backbones.Create(cfg, new ParamFactory(device, dtype)).module;
        Randomize(module);
        module.eval();
        return (IBackbone)module;
    }

    /// <summary>Fills parameters like the bench does: norms 1, biases 0, everything else normal(0, 0.02), seeded.</summary>
    public static void Randomize(nn.Module m, long seed = 1234)
    {
        using var _ = no_grad();
        var gen = new torch.Generator((ulong)seed);
        foreach (var (name, p) in m.named_parameters())
        {
            if (name.EndsWith("norm.weight") || name.EndsWith("layernorm.weight") || name.EndsWith("layrnorm.weight") || name.Contains("layer_norm")) p.fill_(Scalars.OneDouble);
            else if (name.EndsWith(".bias")) p.zero_();
            else p.normal_(0, 0.02, generator: gen);
        }
    }

    /// <summary>One step of the chosen kind on <paramref name="state"/>.</summary>
    /// <exception cref="NotSupportedException">The backbone has no such step.</exception>
    public static Tensor Step(IBackbone model, DecodeState state, Tensor tokens, StepPath path) => (model, path) switch
    {
        (DecoderBackbone d, StepPath.Eager) => d.EagerStep(state, tokens),
        (DecoderBackbone d, StepPath.Static) when d.StepsStatically => d.StaticStep(state, tokens),
        _ => throw new NotSupportedException($"{model.GetType().Name} has no {path} step"),
    };

    /// <summary>True when the backbone's <see cref="IBackbone.Step"/> runs the static step.</summary>
    public static bool StepsStatically(IBackbone model) => model is DecoderBackbone { StepsStatically: true };

    /// <summary>A text-only prompt of <paramref name="length"/> random ids (2..500) for the tiny model.</summary>
    public static BackboneInputs TinyPrompt(long rows, long length, long seed = 7)
    {
        var gen = new torch.Generator((ulong)seed);
        var ids = randint(2, 500, [rows, length], generator: gen, dtype: ScalarType.Int64).DetachFromDisposeScope();
        return new BackboneInputs(ids, null, new Dictionary<string, Tensor>());
    }

    /// <summary>Tensors created (DisposeScope statistics) by one decode step plus the argmax pick and its read-back.</summary>
    public static long TensorsPerStep(IBackbone model, StepPath path, int warmup = 3)
    {
        using var prompt = TinyPrompt(1, 16).InputIds;
        return TensorsPerStep(model, path, new BackboneInputs(prompt, null, new Dictionary<string, Tensor>()), warmup);
    }

    /// <summary>Tensors created by one decode step after a prefill of <paramref name="inputs"/> (one row), argmax pick and read-back included.</summary>
    public static long TensorsPerStep(IBackbone model, StepPath path, BackboneInputs inputs, int warmup = 3)
    {
        var (state, logits) = model.Prefill(inputs, warmup + 2);
        using (state)
        {
            long tok = logits.argmax(-1).item<long>();
            logits.Dispose();
            using var t = tensor(new[] { tok }, ScalarType.Int64, model.Device);
            for (int i = 0; i < warmup; i++)
                using (var scope = NewDisposeScope()) { using var next = Step(model, state, t, path).argmax(-1).item<long>().ToScalar(); t.fill_(next); }
            var stats = DisposeScopeManager.Statistics;
            long before = stats.CreatedInScopeCount + stats.CreatedOutsideScopeCount;
            using (var scope = NewDisposeScope()) { using var next = Step(model, state, t, path).argmax(-1).item<long>().ToScalar(); t.fill_(next); }
            return stats.CreatedInScopeCount + stats.CreatedOutsideScopeCount - before;
        }
    }

    /// <summary>(tensors of one step at 32 layers − at 1 layer) / 31 for the tiny shape: what a layer costs.</summary>
    public static double TensorsPerLayerStep(StepPath path, Device device, ScalarType dtype)
    {
        using var deep = CreateTiny(32, device, dtype);
        using var shallow = CreateTiny(1, device, dtype);
        return (TensorsPerStep(deep, path) - TensorsPerStep(shallow, path)) / 31.0;
    }

    /// <summary>
    /// Median host time per step of the static and the eager step, interleaved (static, eager, static, …) on two states
    /// of the same prompt, <paramref name="steps"/> each; returns (static ms, eager ms, static / eager).
    /// </summary>
    public static (double StaticMs, double EagerMs, double Ratio) HostTimes(IBackbone model, int steps, long promptLength = 32)
    {
        using var prompt = TinyPrompt(1, promptLength).InputIds;
        return HostTimes(model, new BackboneInputs(prompt, null, new Dictionary<string, Tensor>()), steps);
    }

    /// <summary>As <see cref="HostTimes(IBackbone, int, long)"/>, after a prefill of <paramref name="inputs"/> (one row).</summary>
    public static (double StaticMs, double EagerMs, double Ratio) HostTimes(IBackbone model, BackboneInputs inputs, int steps)
    {
        var (ss, ls) = model.Prefill(inputs, steps + 8);
        var (se, le) = model.Prefill(inputs, steps + 8);
        using (ss) using (se)
        {
            using var ts = ls.argmax(-1); using var te = le.argmax(-1);
            ls.Dispose(); le.Dispose();
            var st = new double[steps]; var et = new double[steps];
            var sw = new Stopwatch();
            for (int i = -4; i < steps; i++)
            {
                sw.Restart();
                using (var scope = NewDisposeScope()) ts.copy_(Step(model, ss, ts, StepPath.Static).argmax(-1));
                Sync(model.Device);
                if (i >= 0) st[i] = sw.Elapsed.TotalMilliseconds;
                sw.Restart();
                using (var scope = NewDisposeScope()) te.copy_(Step(model, se, te, StepPath.Eager).argmax(-1));
                Sync(model.Device);
                if (i >= 0) et[i] = sw.Elapsed.TotalMilliseconds;
            }
            double ms = Median(st), me = Median(et);
            return (ms, me, ms / me);
        }
    }

    private static double Median(double[] x) { var s = x.Order().ToArray(); return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2; }

    private static void Sync(Device d) { if (d.type == DeviceType.CUDA) torch.cuda.synchronize(); }
}
