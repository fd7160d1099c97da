using SafeCoDe.Torch.Runtime;
#pragma warning disable CS1591 // public fields mirror the checkpoint's tensor names; the class summaries document them
using SafeCoDe.Torch.Checkpoints;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace SafeCoDe.Torch.Models.Common;

/// <summary>A 2-D convolution holder named like torch.nn.Conv2d (weight [out, in, k, k], optional bias), used for patch embeddings.</summary>
internal sealed class PatchConv : Block
{
#pragma warning disable IDE1006
    public readonly Parameter weight;
    public readonly Parameter? bias;
#pragma warning restore IDE1006
    private readonly long _stride;

    public PatchConv(ParamFactory f, long inChannels, long outChannels, long kernel, bool hasBias) : base("Conv2d")
    {
        weight = f.Make(outChannels, inChannels, kernel, kernel);
        if (hasBias) bias = f.Make(outChannels);
        _stride = kernel;
        RegisterComponents();
    }

    /// <summary>
    /// Non-overlapping patches (stride = kernel) as one matmul over flattened patches: the same sums as the
    /// convolution, without cuDNN (whose TF32 default on CUDA would cost fp32 parity). [N,C,H,W] → [N,out,H/k,W/k].
    /// </summary>
    public Tensor Forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        long n = x.shape[0], c = x.shape[1], gh = x.shape[2] / _stride, gw = x.shape[3] / _stride, k = _stride;
        if (gh * k != x.shape[2] || gw * k != x.shape[3]) x = x.narrow(2, 0, gh * k).narrow(3, 0, gw * k); // conv drops the remainder too
        var patches = x.reshape(n, c, gh, k, gw, k).permute(0, 2, 4, 1, 3, 5).reshape(n, gh * gw, c * k * k);
        var y = F.linear(patches, weight.reshape(weight.shape[0], c * k * k), bias); // [N, gh*gw, out]
        return y.transpose(1, 2).reshape(n, weight.shape[0], gh, gw).MoveToOuterDisposeScope();
    }
}

/// <summary>ViT self-attention with q/k/v/out projections (CLIP, SigLIP, IDEFICS vision).</summary>
internal sealed class VitAttention : Block
{
#pragma warning disable IDE1006
    public readonly Linear q_proj, k_proj, v_proj, out_proj;
#pragma warning restore IDE1006
    private readonly long _heads, _headDim;

    public VitAttention(ParamFactory f, long hidden, long heads) : base(nameof(VitAttention))
    {
        _heads = heads; _headDim = hidden / heads;
        q_proj = new Linear(f, hidden, hidden, true);
        k_proj = new Linear(f, hidden, hidden, true);
        v_proj = new Linear(f, hidden, hidden, true);
        out_proj = new Linear(f, hidden, hidden, true);
        RegisterComponents();
    }

    /// <summary>x [N, S, hidden]; <paramref name="mask"/> bool [N,1,S,S] or null.</summary>
    public Tensor Forward(Tensor x, Tensor? mask = null)
    {
        using var scope = NewDisposeScope();
        long n = x.shape[0], s = x.shape[1];
        var q = q_proj.Forward(x).view(n, s, _heads, _headDim).transpose(1, 2);
        var k = k_proj.Forward(x).view(n, s, _heads, _headDim).transpose(1, 2);
        var v = v_proj.Forward(x).view(n, s, _heads, _headDim).transpose(1, 2);
        var o = F.scaled_dot_product_attention(q, k, v, mask, 0.0, false);
        return out_proj.Forward(o.transpose(1, 2).reshape(n, s, _heads * _headDim)).MoveToOuterDisposeScope();
    }
}

/// <summary>fc1 → act → fc2.</summary>
internal sealed class VitMlp : Block
{
#pragma warning disable IDE1006
    public readonly Linear fc1, fc2;
#pragma warning restore IDE1006
    private readonly Func<Tensor, Tensor> _act;

    public VitMlp(ParamFactory f, long hidden, long intermediate, string act) : base(nameof(VitMlp))
    {
        fc1 = new Linear(f, hidden, intermediate, true);
        fc2 = new Linear(f, intermediate, hidden, true);
        _act = Activations.Get(act);
        RegisterComponents();
    }

    public Tensor Forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return fc2.Forward(_act(fc1.Forward(x))).MoveToOuterDisposeScope();
    }
}

/// <summary>Pre-norm ViT encoder layer: layer_norm1, self_attn, layer_norm2, mlp.</summary>
internal sealed class VitEncoderLayer : Block
{
#pragma warning disable IDE1006
    public readonly VitAttention self_attn;
    public readonly LayerNorm layer_norm1, layer_norm2;
    public readonly VitMlp mlp;
#pragma warning restore IDE1006

    public VitEncoderLayer(ParamFactory f, VitConfig c) : base(nameof(VitEncoderLayer))
    {
        self_attn = new VitAttention(f, c.HiddenSize, c.NumHeads);
        layer_norm1 = new LayerNorm(f, c.HiddenSize, c.LayerNormEps);
        mlp = new VitMlp(f, c.HiddenSize, c.IntermediateSize, c.HiddenAct);
        layer_norm2 = new LayerNorm(f, c.HiddenSize, c.LayerNormEps);
        RegisterComponents();
    }

    public Tensor Forward(Tensor x, Tensor? mask = null)
    {
        using var scope = NewDisposeScope();
        var h = x.Plus(self_attn.Forward(layer_norm1.Forward(x), mask));
        return h.Plus(mlp.Forward(layer_norm2.Forward(h))).MoveToOuterDisposeScope();
    }
}

/// <summary>encoder.layers.N.</summary>
internal sealed class VitEncoder : Block
{
#pragma warning disable IDE1006
    public readonly ModuleList<VitEncoderLayer> layers;
#pragma warning restore IDE1006

    public VitEncoder(ParamFactory f, VitConfig c) : base(nameof(VitEncoder))
    {
        layers = new ModuleList<VitEncoderLayer>(Enumerable.Range(0, c.NumLayers).Select(_ => new VitEncoderLayer(f, c)).ToArray());
        RegisterComponents();
    }
}

/// <summary>CLIP embeddings: class token + conv patches + learned absolute positions.</summary>
internal sealed class ClipEmbeddings : Block
{
#pragma warning disable IDE1006
    public readonly Parameter class_embedding;
    public readonly PatchConv patch_embedding;
    public readonly EmbeddingHolder position_embedding;
#pragma warning restore IDE1006

    public ClipEmbeddings(ParamFactory f, VitConfig c) : base(nameof(ClipEmbeddings))
    {
        class_embedding = f.Make(c.HiddenSize);
        patch_embedding = new PatchConv(f, c.NumChannels, c.HiddenSize, c.PatchSize, false);
        position_embedding = new EmbeddingHolder(f, c.NumPatches + 1, c.HiddenSize);
        RegisterComponents();
    }

    public Tensor Forward(Tensor pixels)
    {
        using var scope = NewDisposeScope();
        long n = pixels.shape[0];
        var patches = patch_embedding.Forward(pixels.to(patch_embedding.weight.dtype)).flatten(2).transpose(1, 2); // [N, P, H]
        var cls = class_embedding.view(1, 1, -1).expand(n, 1, -1);
        var x = cat([cls, patches], 1);
        return x.Plus(position_embedding.weight.unsqueeze(0)).MoveToOuterDisposeScope();
    }
}

/// <summary>CLIP vision transformer (LLaVA's tower): embeddings, pre_layrnorm (sic), encoder, post_layernorm.</summary>
internal sealed class ClipVisionTower : Block
{
#pragma warning disable IDE1006
    public readonly ClipEmbeddings embeddings;
    public readonly LayerNorm pre_layrnorm;
    public readonly VitEncoder encoder;
    public readonly LayerNorm post_layernorm;
#pragma warning restore IDE1006
    public VitConfig Config { get; }

    public ClipVisionTower(ParamFactory f, VitConfig c) : base(nameof(ClipVisionTower))
    {
        Config = c;
        embeddings = new ClipEmbeddings(f, c);
        pre_layrnorm = new LayerNorm(f, c.HiddenSize, c.LayerNormEps);
        encoder = new VitEncoder(f, c);
        post_layernorm = new LayerNorm(f, c.HiddenSize, c.LayerNormEps);
        RegisterComponents();
    }

    /// <summary>
    /// HF's hidden_states for the requested indices (negative counts from the end; index 0 is the pre-layer-normed
    /// embedding, index i the output of layer i). Only the layers needed are run. Returned in request order.
    /// </summary>
    public Tensor[] HiddenStates(Tensor pixels, IReadOnlyList<int> indices)
    {
        using var scope = NewDisposeScope();
        int total = encoder.layers.Count + 1;
        var want = indices.Select(i => i < 0 ? total + i : i).ToArray();
        if (want.Any(i => i < 0 || i >= total)) throw new ArgumentException($"vision_feature_layer {string.Join(",", indices)} is outside the tower's {total} hidden states");
        int last = want.Max();
        var got = new Dictionary<int, Tensor>();
        var h = pre_layrnorm.Forward(embeddings.Forward(pixels));
        if (want.Contains(0)) got[0] = h;
        for (int i = 0; i < last; i++)
        {
            h = encoder.layers[i].Forward(h);
            if (want.Contains(i + 1)) got[i + 1] = h;
        }
        return want.Select(i => got[i].MoveToOuterDisposeScope()).ToArray();
    }
}
