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

namespace SafeCoDe.Torch.Models.Idefics;

/// <summary>
/// Perceiver cross-attention (Flamingo style): the latents query the layer-normed image context concatenated with
/// the latents themselves. Projections carry no bias; optional layer norms on q and k per head.
/// </summary>
internal sealed class PerceiverAttention : Block
{
#pragma warning disable IDE1006
    public readonly LayerNorm context_layer_norm, latents_layer_norm;
    public readonly LayerNorm? q_layer_norm, k_layer_norm;
    public readonly Linear q_proj, k_proj, v_proj, output_proj;
#pragma warning restore IDE1006
    private readonly long _heads, _headDim;

    // torch.nn.LayerNorm's default epsilon: the resampler does not take one from the config
    private const double Eps = 1e-5;

    public PerceiverAttention(ParamFactory f, long dim, PerceiverConfig c) : base(nameof(PerceiverAttention))
    {
        _heads = c.NumHeads; _headDim = c.HeadDim;
        context_layer_norm = new LayerNorm(f, dim, Eps);
        latents_layer_norm = new LayerNorm(f, dim, Eps);
        if (c.QkLayerNorms)
        {
            q_layer_norm = new LayerNorm(f, _headDim, Eps);
            k_layer_norm = new LayerNorm(f, _headDim, Eps);
        }
        q_proj = new Linear(f, dim, _heads * _headDim, false);
        k_proj = new Linear(f, dim, _heads * _headDim, false);
        v_proj = new Linear(f, dim, _heads * _headDim, false);
        output_proj = new Linear(f, _heads * _headDim, dim, false);
        RegisterComponents();
    }

    /// <summary>context [N, S, dim], latents [N, L, dim] → [N, L, dim] (the residual is added by the caller).</summary>
    public Tensor Forward(Tensor context, Tensor latents)
    {
        using var scope = NewDisposeScope();
        long n = context.shape[0], l = latents.shape[1];
        var ctx = context_layer_norm.Forward(context);
        var lat = latents_layer_norm.Forward(latents);
        var both = cat([ctx, lat], 1);
        long s = both.shape[1];
        var q = q_proj.Forward(lat).view(n, l, _heads, _headDim).transpose(1, 2);
        var k = k_proj.Forward(both).view(n, s, _heads, _headDim).transpose(1, 2);
        var v = v_proj.Forward(both).view(n, s, _heads, _headDim).transpose(1, 2);
        if (q_layer_norm is not null) q = q_layer_norm.Forward(q);
        if (k_layer_norm is not null) k = k_layer_norm.Forward(k);
        var o = F.scaled_dot_product_attention(q, k, v, null, 0.0, false);
        return output_proj.Forward(o.transpose(1, 2).reshape(n, l, _heads * _headDim)).MoveToOuterDisposeScope();
    }
}

/// <summary>The resampler's feed-forward: ln → fc → ReLU → c_proj (no biases).</summary>
internal sealed class PerceiverMlp : Block
{
#pragma warning disable IDE1006
    public readonly LayerNorm ln;
    public readonly Linear fc, c_proj;
#pragma warning restore IDE1006

    public PerceiverMlp(ParamFactory f, long dim, long intermediate) : base(nameof(PerceiverMlp))
    {
        ln = new LayerNorm(f, dim, 1e-5);
        fc = new Linear(f, dim, intermediate, false);
        c_proj = new Linear(f, intermediate, dim, false);
        RegisterComponents();
    }

    public Tensor Forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return c_proj.Forward(F.relu(fc.Forward(ln.Forward(x)))).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// perceiver_resampler: learned latents [n_latents, dim] refined by <c>depth</c> blocks of [attention, MLP] (each
/// with a residual) over the vision tower's last hidden states, then a final layer_norm. Parameter paths follow the
/// checkpoint: <c>blocks.N.0.*</c> (attention) and <c>blocks.N.1.*</c> (MLP).
/// </summary>
internal sealed class PerceiverResampler : Block
{
#pragma warning disable IDE1006
    public readonly Parameter latents;
    public readonly ModuleList<ModuleList<nn.Module>> blocks;
    public readonly LayerNorm layer_norm;
#pragma warning restore IDE1006

    public PerceiverResampler(ParamFactory f, long dim, PerceiverConfig c) : base(nameof(PerceiverResampler))
    {
        latents = f.Make(c.NumLatents, dim);
        // the MLP width is four times the vision embedding size (HF: vision_embed_dim * 4)
        blocks = new ModuleList<ModuleList<nn.Module>>(Enumerable.Range(0, c.Depth)
            .Select(_ => new ModuleList<nn.Module>(new PerceiverAttention(f, dim, c), new PerceiverMlp(f, dim, 4 * dim)))
            .ToArray());
        layer_norm = new LayerNorm(f, dim, 1e-5);
        RegisterComponents();
    }

    /// <summary>context [N, S, dim] → resampled latents [N, n_latents, dim].</summary>
    public Tensor Forward(Tensor context)
    {
        using var scope = NewDisposeScope();
        long n = context.shape[0];
        var x = latents.unsqueeze(0).expand(n, latents.shape[0], latents.shape[1]);
        foreach (var block in blocks)
        {
            var attn = (PerceiverAttention)block[0];
            var mlp = (PerceiverMlp)block[1];
            x = attn.Forward(context, x).Plus(x);
            x = mlp.Forward(x).Plus(x);
        }
        return layer_norm.Forward(x).MoveToOuterDisposeScope();
    }
}
