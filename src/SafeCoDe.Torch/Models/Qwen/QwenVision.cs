using SafeCoDe.Torch.Runtime;
#pragma warning disable CS1591 // public fields mirror the checkpoint's tensor names; the class summaries document them
using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Models.Common;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;
using LayerNorm = SafeCoDe.Torch.Models.Common.LayerNorm;
using Linear = SafeCoDe.Torch.Models.Common.Linear;

namespace SafeCoDe.Torch.Models.Qwen;

/// <summary>
/// patch_embed.proj: the Conv3d (kernel = stride = (temporal_patch, patch, patch), no bias) applied to pixel_values rows
/// that already hold one (C, T, P, P) patch each, so it is a matrix product with the flattened kernel.
/// </summary>
internal sealed class QwenPatchProj : Block
{
#pragma warning disable IDE1006
    public readonly Parameter weight;
#pragma warning restore IDE1006

    public QwenPatchProj(ParamFactory f, QwenVisionConfig c) : base("Conv3d")
    {
        weight = f.Make(c.EmbedDim, c.InChannels, c.TemporalPatchSize, c.PatchSize, c.PatchSize);
        RegisterComponents();
    }

    /// <summary>[patches, C·T·P·P] → [patches, embed].</summary>
    public Tensor Forward(Tensor x)
    {
        using var w = weight.view(weight.shape[0], -1);
        return F.linear(x, w);
    }
}

/// <summary><c>patch_embed</c>: the Conv3d patch projection (<c>proj</c>) applied to pixel_values rows.</summary>
internal sealed class QwenPatchEmbed : Block
{
#pragma warning disable IDE1006
    public readonly QwenPatchProj proj;
#pragma warning restore IDE1006

    public QwenPatchEmbed(ParamFactory f, QwenVisionConfig c) : base(nameof(QwenPatchEmbed))
    {
        proj = new QwenPatchProj(f, c);
        RegisterComponents();
    }

    public Tensor Forward(Tensor x) => proj.Forward(x);
}

/// <summary>
/// Attention over groups of consecutive tokens (one image, one frame or one window each), without a dense
/// [N, N] mask: segments are gathered into a padded [segments, heads, longest, head_dim] batch, padded keys masked out.
/// Built once per vision forward (its index tensors belong to that forward's dispose scope) and shared by the blocks
/// that use the same segmentation.
/// </summary>
internal sealed class SegmentAttention
{
    private readonly long _n, _count, _longest;
    private readonly Tensor? _gather, _keyMask, _valid; // null when all segments have the same length

    public SegmentAttention(long[] lengths, Device device)
    {
        _n = lengths.Sum(); _count = lengths.Length; _longest = lengths.Max();
        if (lengths.All(l => l == _longest)) return;
        var gather = new long[_count * _longest];
        var mask = new bool[_count * _longest];
        var valid = new long[_n];
        long offset = 0, v = 0;
        for (long s = 0; s < _count; s++)
        {
            long len = lengths[s];
            for (long j = 0; j < _longest; j++)
            {
                bool real = j < len;
                gather[s * _longest + j] = offset + (real ? j : len - 1); // padding repeats a real token; its key is masked
                mask[s * _longest + j] = real;
                if (real) valid[v++] = s * _longest + j;
            }
            offset += len;
        }
        _gather = tensor(gather, device: device);
        _keyMask = tensor(mask, device: device).view(_count, 1, 1, _longest);
        _valid = tensor(valid, device: device);
    }

    /// <summary>q, k, v [heads, N, head_dim] → [heads, N, head_dim]; softmax(q·kᵀ/√d) within each segment.</summary>
    public Tensor Attend(Tensor q, Tensor k, Tensor v)
    {
        using var scope = NewDisposeScope();
        long h = q.shape[0], d = q.shape[2];
        if (_gather is null)
        {
            Tensor Split(Tensor x) => x.view(h, _count, _longest, d).transpose(0, 1);
            var o = F.scaled_dot_product_attention(Split(q), Split(k), Split(v), null, 0.0, false);
            return o.transpose(0, 1).reshape(h, _n, d).MoveToOuterDisposeScope();
        }
        Tensor Pack(Tensor x) => x.index_select(1, _gather).view(h, _count, _longest, d).transpose(0, 1);
        var packed = F.scaled_dot_product_attention(Pack(q), Pack(k), Pack(v), _keyMask, 0.0, false); // [S, H, L, D]
        return packed.transpose(0, 1).reshape(h, _count * _longest, d).index_select(1, _valid!).MoveToOuterDisposeScope();
    }
}

/// <summary>attn: fused qkv projection, 2-D rotary on q and k (in float32), attention within segments, proj.</summary>
internal sealed class QwenVisionAttention : Block
{
#pragma warning disable IDE1006
    public readonly Linear qkv, proj;
#pragma warning restore IDE1006
    private readonly long _heads, _headDim;

    public QwenVisionAttention(ParamFactory f, QwenVisionConfig c) : base(nameof(QwenVisionAttention))
    {
        _heads = c.NumHeads; _headDim = c.HeadDim;
        qkv = new Linear(f, c.EmbedDim, 3L * c.EmbedDim, true);
        proj = new Linear(f, c.EmbedDim, c.EmbedDim, true);
        RegisterComponents();
    }

    /// <summary>x [N, dim]; cos/sin float32 [N, 1, head_dim].</summary>
    public Tensor Forward(Tensor x, Tensor cos, Tensor sin, SegmentAttention segments)
    {
        using var scope = NewDisposeScope();
        long n = x.shape[0];
        var parts = qkv.Forward(x).view(n, 3, _heads, _headDim).permute(1, 0, 2, 3); // [3, N, H, D]
        var q = Rope(parts[0], cos, sin).transpose(0, 1);
        var k = Rope(parts[1], cos, sin).transpose(0, 1);
        var v = parts[2].transpose(0, 1);
        var o = segments.Attend(q, k, v).transpose(0, 1).reshape(n, _heads * _headDim);
        return proj.Forward(o).MoveToOuterDisposeScope();
    }

    private static Tensor Rope(Tensor x, Tensor cos, Tensor sin)
    {
        using var scope = NewDisposeScope();
        var xf = x.to(ScalarType.Float32);
        return (xf * cos).Plus(Rotary.RotateHalf(xf) * sin).to(x.dtype).MoveToOuterDisposeScope();
    }
}

/// <summary>One ViT block: x + attn(norm1(x)), then + mlp(norm2(·)). Qwen2-VL: LayerNorm and fc1/fc2; Qwen2.5-VL: RMSNorm and SwiGLU with biases.</summary>
internal sealed class QwenVisionBlock : Block
{
#pragma warning disable IDE1006
    public readonly Block norm1, norm2;
    public readonly QwenVisionAttention attn;
    public readonly Block mlp;
#pragma warning restore IDE1006

    public QwenVisionBlock(ParamFactory f, QwenVisionConfig c, bool qwen25) : base(nameof(QwenVisionBlock))
    {
        norm1 = qwen25 ? new RmsNorm(f, c.EmbedDim, 1e-6) : new LayerNorm(f, c.EmbedDim, 1e-6);
        norm2 = qwen25 ? new RmsNorm(f, c.EmbedDim, 1e-6) : new LayerNorm(f, c.EmbedDim, 1e-6);
        attn = new QwenVisionAttention(f, c);
        mlp = qwen25 ? new GatedMlp(f, c.EmbedDim, c.IntermediateSize, c.HiddenAct, bias: true) : new VitMlp(f, c.EmbedDim, c.IntermediateSize, c.HiddenAct);
        RegisterComponents();
    }

    public Tensor Forward(Tensor x, Tensor cos, Tensor sin, SegmentAttention segments)
    {
        using var scope = NewDisposeScope();
        var h = x.Plus(attn.Forward(Norm(norm1, x), cos, sin, segments));
        var m = mlp switch { GatedMlp g => g.Forward(Norm(norm2, h)), VitMlp v => v.Forward(Norm(norm2, h)), _ => throw new InvalidOperationException() };
        return h.Plus(m).MoveToOuterDisposeScope();
    }

    internal static Tensor Norm(Block norm, Tensor x) => norm switch
    {
        LayerNorm l => l.Forward(x),
        RmsNorm r => r.Forward(x),
        _ => throw new InvalidOperationException($"unexpected norm {norm.GetType().Name}"),
    };
}

/// <summary>The merger's exact (erf) GELU between mlp.0 and mlp.2; no parameters.</summary>
internal sealed class GeluModule : Block
{
    public GeluModule() : base("GELU") { }
    public Tensor Forward(Tensor x) => F.gelu(x);
}

/// <summary>merger: ln_q on each patch, the merge-size² patches of a merge unit concatenated, mlp.0 → GELU → mlp.2.</summary>
internal sealed class QwenPatchMerger : Block
{
#pragma warning disable IDE1006
    public readonly Block ln_q;
    public readonly ModuleList<Block> mlp;
#pragma warning restore IDE1006
    private readonly long _merged;

    public QwenPatchMerger(ParamFactory f, QwenVisionConfig c, bool qwen25) : base(nameof(QwenPatchMerger))
    {
        _merged = (long)c.EmbedDim * c.SpatialMergeSize * c.SpatialMergeSize;
        ln_q = qwen25 ? new RmsNorm(f, c.EmbedDim, 1e-6) : new LayerNorm(f, c.EmbedDim, 1e-6);
        mlp = new ModuleList<Block>(new Linear(f, _merged, _merged, true), new GeluModule(), new Linear(f, _merged, c.OutHiddenSize, true));
        RegisterComponents();
    }

    public Tensor Forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = QwenVisionBlock.Norm(ln_q, x).view(-1, _merged);
        h = ((Linear)mlp[0]).Forward(h);
        h = ((GeluModule)mlp[1]).Forward(h);
        return ((Linear)mlp[2]).Forward(h).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// visual: the Qwen2-VL / Qwen2.5-VL vision transformer. pixel_values [patches, C·T·P·P] of all images with their
/// image_grid_thw → merged features [Σ t·h·w / merge², out_hidden], in image order.
/// </summary>
internal sealed class QwenVisionTower : Block
{
#pragma warning disable IDE1006
    public readonly QwenPatchEmbed patch_embed;
    public readonly ModuleList<QwenVisionBlock> blocks;
    public readonly QwenPatchMerger merger;
#pragma warning restore IDE1006
    private readonly QwenVisionConfig _cfg;
    private readonly bool _qwen25;
    private readonly HashSet<int> _fullBlocks;
    private readonly Rotary _rotary;

    public QwenVisionTower(ParamFactory f, QwenVisionConfig c, bool qwen25) : base(nameof(QwenVisionTower))
    {
        _cfg = c; _qwen25 = qwen25;
        _fullBlocks = qwen25 ? c.FullAttBlockIndexes.ToHashSet() : Enumerable.Range(0, c.Depth).ToHashSet();
        _rotary = new Rotary(c.HeadDim / 2, c.RopeTheta);
        patch_embed = new QwenPatchEmbed(f, c);
        blocks = new ModuleList<QwenVisionBlock>(Enumerable.Range(0, c.Depth).Select(_ => new QwenVisionBlock(f, c, qwen25)).ToArray());
        merger = new QwenPatchMerger(f, c, qwen25);
        RegisterComponents();
    }

    public QwenVisionConfig Config => _cfg;

    public Tensor Forward(Tensor pixels, IReadOnlyList<(long t, long h, long w)> grids)
    {
        using var scope = NewDisposeScope();
        var layout = VisionLayout.Build(grids, _cfg, _qwen25);
        if (pixels.dim() != 2 || pixels.shape[0] != layout.NumPatches || pixels.shape[1] != _cfg.PatchInputDim)
            throw new ArgumentException($"pixel_values is [{string.Join(", ", pixels.shape)}] but image_grid_thw describes [{layout.NumPatches}, {_cfg.PatchInputDim}]");
        var dev = pixels.device;
        var dtype = patch_embed.proj.weight.dtype;
        long n = layout.NumPatches, unit = (long)_cfg.SpatialMergeSize * _cfg.SpatialMergeSize;

        var x = patch_embed.Forward(pixels.to(dtype));
        if (layout.WindowIndex is { } wi)
        {
            var idx = tensor(wi, device: dev);
            x = x.view(n / unit, unit, -1).index_select(0, idx).view(n, -1);
        }
        // 2-D rotary: the first half of the rotary slots follow the row, the second the column (float32, as HF).
        var inv = _rotary.InvFreq(dev);
        var fr = tensor(layout.Rows, device: dev).to(ScalarType.Float32).unsqueeze(1) * inv;
        var fc = tensor(layout.Cols, device: dev).to(ScalarType.Float32).unsqueeze(1) * inv;
        var rot = cat([fr, fc], 1);
        var emb = cat([rot, rot], 1);
        var cos = emb.cos().unsqueeze(1);
        var sin = emb.sin().unsqueeze(1);

        var full = new SegmentAttention(layout.FullSegments, dev);
        var window = layout.WindowSegments is { } w ? new SegmentAttention(w, dev) : null;
        for (int i = 0; i < blocks.Count; i++)
            x = blocks[i].Forward(x, cos, sin, _fullBlocks.Contains(i) || window is null ? full : window);
        var merged = merger.Forward(x);
        if (layout.InverseWindowIndex is { } back)
            merged = merged.index_select(0, tensor(back, device: dev));
        return merged.MoveToOuterDisposeScope();
    }
}
