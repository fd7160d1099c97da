using SafeCoDe.Torch.Runtime;
#pragma warning disable CS1591 // public fields mirror the checkpoint's tensor names; the class summaries document them
using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Models.Common;
using TorchSharp;
using TorchSharp.Modules;
using Linear = SafeCoDe.Torch.Models.Common.Linear;
using LayerNorm = SafeCoDe.Torch.Models.Common.LayerNorm;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace SafeCoDe.Torch.Models.InstructBlip;

/// <summary>
/// BLIP-2 ViT self-attention: one fused <c>qkv</c> projection (its bias, when the config has <c>qkv_bias</c>, is
/// q | 0 | v — the Hub's separate q_bias/v_bias are fused into it by the checkpoint mapping) and an output
/// <c>projection</c>. No mask: every image token attends to every other.
/// </summary>
internal sealed class BlipAttention : Block
{
#pragma warning disable IDE1006
    public readonly Linear qkv, projection;
#pragma warning restore IDE1006
    private readonly long _heads, _headDim;

    public BlipAttention(ParamFactory f, VitConfig c) : base(nameof(BlipAttention))
    {
        if (c.HiddenSize % c.NumHeads != 0)
            throw new ArgumentException($"vision hidden_size {c.HiddenSize} is not divisible by num_attention_heads {c.NumHeads}");
        _heads = c.NumHeads; _headDim = c.HiddenSize / c.NumHeads;
        qkv = new Linear(f, c.HiddenSize, 3L * c.HiddenSize, c.QkvBias);
        projection = new Linear(f, c.HiddenSize, c.HiddenSize, true);
        RegisterComponents();
    }

    /// <summary>x [N, S, hidden] → [N, S, hidden].</summary>
    public Tensor Forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        long n = x.shape[0], s = x.shape[1];
        // [N, S, 3, heads, d] → [3, N, heads, S, d]
        var mixed = qkv.Forward(x).view(n, s, 3, _heads, _headDim).permute(2, 0, 3, 1, 4);
        var o = F.scaled_dot_product_attention(mixed[0], mixed[1], mixed[2], null, 0.0, false);
        return projection.Forward(o.transpose(1, 2).reshape(n, s, _heads * _headDim)).MoveToOuterDisposeScope();
    }
}

/// <summary>Pre-norm BLIP encoder layer: layer_norm1, self_attn, layer_norm2, mlp (fc1 → act → fc2).</summary>
internal sealed class BlipEncoderLayer : Block
{
#pragma warning disable IDE1006
    public readonly BlipAttention self_attn;
    public readonly LayerNorm layer_norm1, layer_norm2;
    public readonly VitMlp mlp;
#pragma warning restore IDE1006

    public BlipEncoderLayer(ParamFactory f, VitConfig c) : base(nameof(BlipEncoderLayer))
    {
        self_attn = new BlipAttention(f, c);
        layer_norm1 = new LayerNorm(f, c.HiddenSize, c.LayerNormEps);
        mlp = new VitMlp(f, c.HiddenSize, c.IntermediateSize, c.HiddenAct);
        layer_norm2 = new LayerNorm(f, c.HiddenSize, c.LayerNormEps);
        RegisterComponents();
    }

    public Tensor Forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = x.Plus(self_attn.Forward(layer_norm1.Forward(x)));
        return h.Plus(mlp.Forward(layer_norm2.Forward(h))).MoveToOuterDisposeScope();
    }
}

/// <summary>encoder.layers.N of the BLIP ViT.</summary>
internal sealed class BlipEncoder : Block
{
#pragma warning disable IDE1006
    public readonly ModuleList<BlipEncoderLayer> layers;
#pragma warning restore IDE1006

    public BlipEncoder(ParamFactory f, VitConfig c) : base(nameof(BlipEncoder))
    {
        layers = new ModuleList<BlipEncoderLayer>(Enumerable.Range(0, c.NumLayers).Select(_ => new BlipEncoderLayer(f, c)).ToArray());
        RegisterComponents();
    }
}

/// <summary>
/// BLIP embeddings: a class token and the conv patches (with bias) plus a learned absolute position table. Unlike
/// CLIP, class_embedding is [1, 1, hidden] and position_embedding a plain [1, patches + 1, hidden] parameter.
/// </summary>
internal sealed class BlipVisionEmbeddings : Block
{
#pragma warning disable IDE1006
    public readonly Parameter class_embedding;
    public readonly PatchConv patch_embedding;
    public readonly Parameter position_embedding;
#pragma warning restore IDE1006
    private readonly VitConfig _c;

    public BlipVisionEmbeddings(ParamFactory f, VitConfig c) : base(nameof(BlipVisionEmbeddings))
    {
        _c = c;
        class_embedding = f.Make(1, 1, c.HiddenSize);
        patch_embedding = new PatchConv(f, c.NumChannels, c.HiddenSize, c.PatchSize, true);
        position_embedding = f.Make(1, c.NumPatches + 1, c.HiddenSize);
        RegisterComponents();
    }

    public Tensor Forward(Tensor pixels)
    {
        if (pixels.dim() != 4 || pixels.shape[1] != _c.NumChannels)
            throw new ArgumentException($"InstructBLIP pixel_values must be [images, {_c.NumChannels}, H, W], got [{string.Join(",", pixels.shape)}]");
        if (pixels.shape[2] != _c.ImageSize || pixels.shape[3] != _c.ImageSize)
            throw new ArgumentException($"InstructBLIP pixel_values must be {_c.ImageSize}x{_c.ImageSize} (position embeddings are not interpolated), got {pixels.shape[2]}x{pixels.shape[3]}");
        using var scope = NewDisposeScope();
        long n = pixels.shape[0];
        var dtype = patch_embedding.weight.dtype;
        var patches = patch_embedding.Forward(pixels.to(dtype)).flatten(2).transpose(1, 2); // [N, P, H]
        var cls = class_embedding.expand(n, 1, -1);
        var x = cat([cls, patches], 1);
        return x.Plus(position_embedding.narrow(1, 0, x.shape[1])).MoveToOuterDisposeScope();
    }
}

/// <summary>The BLIP-2 / InstructBLIP vision model (<c>vision_model</c>): embeddings, encoder, post_layernorm.</summary>
internal sealed class BlipVisionModel : Block
{
#pragma warning disable IDE1006
    public readonly BlipVisionEmbeddings embeddings;
    public readonly BlipEncoder encoder;
    public readonly LayerNorm post_layernorm;
#pragma warning restore IDE1006

    public BlipVisionModel(ParamFactory f, VitConfig c) : base(nameof(BlipVisionModel))
    {
        embeddings = new BlipVisionEmbeddings(f, c);
        encoder = new BlipEncoder(f, c);
        post_layernorm = new LayerNorm(f, c.HiddenSize, c.LayerNormEps);
        RegisterComponents();
    }

    /// <summary>pixels [N, C, H, W] → post-layer-normed last hidden state [N, 1 + patches, hidden].</summary>
    public Tensor Forward(Tensor pixels)
    {
        using var scope = NewDisposeScope();
        var h = embeddings.Forward(pixels);
        foreach (var layer in encoder.layers) h = layer.Forward(h);
        return post_layernorm.Forward(h).MoveToOuterDisposeScope();
    }
}
