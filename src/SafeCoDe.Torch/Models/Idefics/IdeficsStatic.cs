using SafeCoDe.Torch.Runtime;
using SafeCoDe.Torch.Models.Common;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace SafeCoDe.Torch.Models.Idefics;

/// <summary>
/// Per-state buffers of IDEFICS's static step, made at a state's first static step from its cross-attention data
/// and the gates, and kept in <see cref="StaticDecodeBuffers.Family"/> (so they are rebuilt when the state's rows or
/// length change from outside the static step). Each is what the eager step recomputes every step.
/// </summary>
internal sealed class IdeficsStaticBuffers : IDisposable
{
    /// <summary>Whether the request has image latents (a text-only request's cross-attention contributes nothing).</summary>
    public bool HasImage { get; }
    /// <summary>[B, 1, 1, L] additive mask in the model dtype over the latents (0 = attend); a row that sees no image attends to all (finite softmax).</summary>
    public Tensor? Mask { get; }
    /// <summary>Per gated layer, [B, G]: tanh(alpha_cross_attn) on rows that see an image, 0 on the others (the eager step's masked_fill).</summary>
    public Tensor[] CrossGates { get; }
    /// <summary>Per gated layer: tanh(alpha_dense), flattened ([G]) to broadcast over the static step's [B, hidden] rows.</summary>
    public Tensor[] DenseGates { get; }
    /// <summary>[B, heads, 1, head_dim] zeros: a text-only request's attention output when it shares a step with requests that have images.</summary>
    public Tensor? NoImage { get; }

    public IdeficsStaticBuffers(CausalDecodeState state, IEnumerable<GatedCrossAttentionLayer> layers, long heads, long headDim, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        long b = state.BatchSize;
        var device = state.KeyValid.device;
        Tensor gateScale;
        if (state.FamilyState is IdeficsCrossState cross)
        {
            HasImage = true;
            var m = cross.StepImageMask;                            // [B, L] bool
            long l = m.shape[1];
            var sees = m.any(-1, keepdim: true);                    // [B, 1]
            var allowed = m.logical_or(sees.logical_not());
            Mask = zeros([b, l], dtype, device).masked_fill_(allowed.logical_not(), Scalars.NegativeInfinity).view(b, 1, 1, l).DetachFromDisposeScope();
            gateScale = sees.to(dtype).view(b, 1, 1);
        }
        else
        {
            gateScale = zeros([b, 1, 1], dtype, device);
            NoImage = zeros([b, heads, 1, headDim], dtype, device).DetachFromDisposeScope();
        }
        // tanh(alpha)·1 is tanh(alpha) exactly, so gate·a on a seeing row is the eager tanh(alpha)·a bit for bit
        CrossGates = layers.Select(g => g.alpha_cross_attn.tanh().mul(gateScale).view(b, -1).DetachFromDisposeScope()).ToArray();
        DenseGates = layers.Select(g => g.alpha_dense.tanh().view(-1).DetachFromDisposeScope()).ToArray();
    }

    public void Dispose()
    {
        Mask?.Dispose();
        NoImage?.Dispose();
        foreach (var t in CrossGates.Concat(DenseGates)) t.Dispose();
    }
}

/// <summary>
/// One static step's view of the IDEFICS-specific data of every segment (decode state) stepped together: its
/// cross-attention keys/values, mask and gates. Built per step from the states' buffers; holds no tensors of its own
/// except the per-layer concatenation of the cross gates when several states share the step.
/// </summary>
internal sealed class IdeficsStaticContext
{
    public required StaticSegment[] Segments { get; init; }
    public required IdeficsStaticBuffers[] Buffers { get; init; }
    public required IdeficsCrossState?[] Cross { get; init; }
    /// <summary>Whether any row has image latents; without any, the gated layers skip cross-attention (as the eager step does).</summary>
    public required bool AnyImage { get; init; }
    /// <summary>The step's inputs (its rows, and the reusable GEMM buffers the gated layers' MLPs share with the decoder layers).</summary>
    public required StaticStepInputs Step { get; init; }

    /// <summary>Gated layer <paramref name="g"/>'s cross gate over all rows [R, G].</summary>
    public Tensor CrossGate(int g) =>
        Buffers.Length == 1 ? Buffers[0].CrossGates[g] : cat(Buffers.Select(b => b.CrossGates[g]).ToArray(), 0);

    /// <summary>Gated layer <paramref name="g"/>'s dense gate (the same parameters for every row).</summary>
    public Tensor DenseGate(int g) => Buffers[0].DenseGates[g];
}

internal sealed partial class IdeficsCrossAttention
{
    /// <summary>One token per row: q from the text, attention per decode state over its own latents' k/v with its additive mask.</summary>
    public Tensor StaticForward(Tensor x, IdeficsStaticContext ctx, int g)
    {
        long r = x.shape[0];
        var q = q_proj.ForwardRows(x).view(r, _heads, 1, _headDim);    // one token per row: [B, H, 1, D] directly, no transpose
        if (q_layer_norm is not null) q = q_layer_norm.StaticForward(q);
        var segs = ctx.Segments;
        Tensor o;
        if (segs.Length == 1) o = Attend(q, ctx, 0, g);
        else
        {
            var outs = new Tensor[segs.Length];
            for (int i = 0; i < segs.Length; i++)
                outs[i] = ctx.Cross[i] is null ? ctx.Buffers[i].NoImage! : Attend(q.narrow(0, segs[i].Row0, segs[i].Rows), ctx, i, g);
            o = cat(outs, 0);
        }
        return o_proj.ForwardRows(o.reshape(r, _heads * _headDim));
    }

    private static Tensor Attend(Tensor q, IdeficsStaticContext ctx, int seg, int g)
    {
        var cross = ctx.Cross[seg]!;
        return F.scaled_dot_product_attention(q, cross.Keys[g], cross.Values[g], ctx.Buffers[seg].Mask, 0.0, false);
    }
}

internal sealed partial class GatedCrossAttentionLayer
{
    /// <summary>x + gate·cross_attn(norm(x)) (skipped when no row has an image), then + tanh(alpha_dense)·mlp(norm(·)), in place.</summary>
    public Tensor StaticForward(Tensor x, IdeficsStaticContext ctx, int g)
    {
        var h = x;
        if (ctx.AnyImage) h = cross_attn.StaticForward(input_layernorm.StaticForward(x), ctx, g).mul_(ctx.CrossGate(g)).PlusInPlace(x);
        return mlp.StaticForward(post_attention_layernorm.StaticForward(h), ctx.Step.Scratch, ctx.Step.Batch).mul_(ctx.DenseGate(g)).PlusInPlace(h);
    }
}

internal sealed partial class IdeficsModel
{
    private Tensor? _perm;
    private readonly object _permLock = new();

    /// <summary>The fused q|k|v column gather of the Llama layers (see <see cref="StaticStepInputs.Perm"/>), made once.</summary>
    public Tensor RotatePermutation(Checkpoints.TextConfig config, Device device)
    {
        lock (_permLock) return _perm ??= StaticStepInputs.MakePermutation(config, device);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) { _perm?.Dispose(); _perm = null; }
        base.Dispose(disposing);
    }
}

internal sealed partial class IdeficsBackbone
{
    /// <inheritdoc/>
    protected override Tensor RotatePermutation() => model.RotatePermutation(Config.Text, Device);

    /// <summary>
    /// The static step of IDEFICS's decoder: the shared static Llama layers (fused q|k|v and gate|up, RoPE table,
    /// bucketed self-attention) with a gated cross-attention layer before every <c>cross_layer_interval</c>-th one,
    /// attending to each request's precomputed latent keys/values with its precomputed mask and tanh gates.
    /// </summary>
    protected override Tensor StaticDecoder(Tensor embeds, StaticStepInputs si)
    {
        var ctx = Context(si);
        var h = embeds;
        int interval = _cfg.CrossLayerInterval;
        for (int i = 0; i < model.layers.Count; i++)
        {
            if (i % interval == 0) h = model.gated_cross_attn_layers[i / interval].StaticForward(h, ctx, i / interval);
            h = model.layers[i].StaticForward(h, si, i);
        }
        return model.norm.Forward(h);
    }

    private IdeficsStaticContext Context(StaticStepInputs si)
    {
        var segs = si.Segments;
        var buffers = new IdeficsStaticBuffers[segs.Length];
        var cross = new IdeficsCrossState?[segs.Length];
        var t = _cfg.Text;
        for (int i = 0; i < segs.Length; i++)
        {
            var st = segs[i].State.Static!;
            st.Family ??= new IdeficsStaticBuffers(segs[i].State, model.gated_cross_attn_layers, t.NumHeads, t.HiddenSize / t.NumHeads, DType);
            buffers[i] = (IdeficsStaticBuffers)st.Family;
            cross[i] = segs[i].State.FamilyState as IdeficsCrossState;
        }
        return new IdeficsStaticContext { Segments = segs, Buffers = buffers, Cross = cross, AnyImage = buffers.Any(b => b.HasImage), Step = si };
    }
}
