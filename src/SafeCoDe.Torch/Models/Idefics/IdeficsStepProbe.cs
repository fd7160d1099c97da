using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Models.Common;
using TorchSharp;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Models;

/// <summary>
/// <see cref="StepProbe"/> for IDEFICS v1, whose decoder has gated cross-attention layers: a random-weight IDEFICS of
/// chosen depth, cross-layer interval, gate type and q/k norms at tiny widths, an image prompt for it, and what its
/// decode step costs per plain (Llama) layer and per gated cross-attention layer.
/// </summary>
public static class IdeficsStepProbe
{
    /// <summary>Tiny widths: hidden 64, 4 heads of 16, 28×28 images with 4 perceiver latents each, vocabulary 512 + 2.</summary>
    public static string TinyConfigJson(int layers, int crossLayerInterval, string alphaType = "float", bool qkLayerNorms = false) => $$$"""
        {"model_type": "idefics", "vocab_size": 512, "additional_vocab_size": 2, "hidden_size": 64, "intermediate_size": 128,
         "num_hidden_layers": {{{layers}}}, "num_attention_heads": 4, "rms_norm_eps": 1e-6, "max_position_embeddings": 4096,
         "hidden_act": "silu", "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2, "tie_word_embeddings": false,
         "cross_layer_interval": {{{crossLayerInterval}}}, "alpha_type": "{{{alphaType}}}", "qk_layer_norms": {{{(qkLayerNorms ? "true" : "false")}}},
         "use_resampler": true,
         "perceiver_config": {"use_resampler": true, "resampler_n_latents": 4, "resampler_depth": 1, "resampler_n_heads": 2,
                              "resampler_head_dim": 8, "qk_layer_norms_perceiver": false},
         "vision_config": {"embed_dim": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4,
                           "image_size": 28, "patch_size": 14, "num_channels": 3, "hidden_act": "gelu", "layer_norm_eps": 1e-5}}
        """;

    /// <summary>
    /// Builds the tiny IDEFICS of <see cref="TinyConfigJson"/> with random weights (<see cref="StepProbe.Randomize"/>);
    /// the gates (<c>alpha_*</c>) are drawn from normal(0, 1) so the cross-attention and dense branches carry weight.
    /// </summary>
    /// <exception cref="NotSupportedException"><paramref name="layers"/> is not a multiple of <paramref name="crossLayerInterval"/>.</exception>
    public static IBackbone CreateTiny(int layers, int crossLayerInterval, Device device, ScalarType dtype, string alphaType = "float",
        bool qkLayerNorms = false, long seed = 1234)
    {
        var dir = Path.Combine(Path.GetTempPath(), $"safecode-idefics-probe-{Environment.ProcessId}-{layers}-{crossLayerInterval}-{alphaType}-{qkLayerNorms}");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "config.json"), TinyConfigJson(layers, crossLayerInterval, alphaType, qkLayerNorms));
        var module = Backbones.Create(ModelConfig.Load(dir), new ParamFactory(device, dtype)).module;
        StepProbe.Randomize(module, seed);
        using (no_grad())
        {
            var gen = new torch.Generator((ulong)seed + 1);
            foreach (var (name, p) in module.named_parameters())
                if (name.Contains(".alpha_")) p.normal_(0, 1, generator: gen);
        }
        module.eval();
        return (IBackbone)module;
    }

    /// <summary>
    /// A prompt for the tiny IDEFICS: <paramref name="rows"/> rows of <paramref name="length"/> random ids and
    /// <paramref name="images"/> random 28×28 images per row; image i starts at position <c>(i + 1)·length / (images + 1)</c> and,
    /// as IDEFICS' processor does, each token sees only the most recent image at or before it (tokens before the first
    /// see none), so with several images the last token attends to the last image's latents only. With
    /// <paramref name="images"/> 0 the prompt is text only (no pixel values).
    /// </summary>
    public static BackboneInputs Prompt(long rows, long length, int images, long seed = 7)
    {
        var gen = new torch.Generator((ulong)seed);
        var ids = randint(2, 500, [rows, length], generator: gen, dtype: ScalarType.Int64).DetachFromDisposeScope();
        var extra = new Dictionary<string, Tensor>();
        if (images > 0)
        {
            extra["pixel_values"] = randn([rows, images, 3, 28, 28], generator: gen).DetachFromDisposeScope();
            var mask = new long[rows * length * images];
            for (long r = 0; r < rows; r++)
                for (long t = 0; t < length; t++)
                {
                    int current = -1;
                    for (int i = 0; i < images; i++) if (t >= (i + 1) * length / (images + 1)) current = i;
                    if (current >= 0) mask[(r * length + t) * images + current] = 1;
                }
            extra["image_attention_mask"] = tensor(mask, ScalarType.Int64).view(rows, length, images).DetachFromDisposeScope();
        }
        return new BackboneInputs(ids, null, extra);
    }

    /// <summary>
    /// Tensors one decode step creates per plain (Llama) layer and per gated cross-attention layer, on a one-image
    /// prompt: plain = (T(32 layers, interval 32) − T(1, 1)) / 31 (31 more plain layers, one gated layer each) and
    /// gated = (T(32, 1) − T(32, 32)) / 31 (31 more gated layers), T from <see cref="StepProbe.TensorsPerStep(IBackbone, StepPath, BackboneInputs, int)"/>.
    /// </summary>
    public static (double PerPlainLayer, double PerGatedLayer) TensorsPerLayerStep(StepPath path, Device device, ScalarType dtype)
    {
        var prompt = Prompt(1, 16, 1);
        try
        {
            long Count(int layers, int interval)
            {
                using var m = CreateTiny(layers, interval, device, dtype);
                return StepProbe.TensorsPerStep(m, path, prompt);
            }
            long few = Count(1, 1), sparse = Count(32, 32), dense = Count(32, 1);
            return ((sparse - few) / 31.0, (dense - sparse) / 31.0);
        }
        finally { Dispose(prompt); }
    }

    /// <summary>Frees a prompt made by <see cref="Prompt"/>.</summary>
    public static void Dispose(BackboneInputs prompt)
    {
        prompt.InputIds.Dispose();
        prompt.AttentionMask?.Dispose();
        foreach (var t in prompt.Images.Values) t.Dispose();
    }
}
