using SafeCoDe.Torch.Runtime;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace SafeCoDe.Torch.Models.Common;

/// <summary>
/// The fixed-shape decode step of the Llama/Qwen2 decoder. Compared with the eager step it runs q/k/v and gate/up as
/// one GEMM each (the fused weights), reads cos/sin from a precomputed table, masks with an additive buffer in the
/// model dtype, writes the cache with <c>index_copy_</c> at a device-side slot and attends over a length bucket (a
/// multiple of <see cref="DecoderBackbone.DefaultBucket"/>) whose unused tail is masked, so consecutive steps have the
/// same shapes. Every value is computed by the same elementwise operations as the eager path: at exact length
/// (bucket 1) the logits are bitwise equal on CPU.
/// </summary>
internal sealed class StaticStepInputs
{
    /// <summary>[R, N] cos for the fused q|k|v columns (ones on v), N = (H + 2·KV)·D.</summary>
    public required Tensor CosF { get; init; }
    /// <summary>[R, N] signed sin (−sin on each head's first half, 0 on v): rotate-half becomes a column gather.</summary>
    public required Tensor SinF { get; init; }
    /// <summary>[N] int64: the column gather that swaps the halves of every head.</summary>
    public required Tensor Perm { get; init; }
    /// <summary>The decode states stepped together, each a run of rows of the batch (one for a plain step).</summary>
    public required StaticSegment[] Segments { get; init; }
    /// <summary>
    /// The segments the self-attention runs over: <see cref="Segments"/>, with runs of states that share their cache
    /// storage merged into one (see <c>DecoderBackbone.MergeAttention</c>); null: <see cref="Segments"/>.
    /// </summary>
    public StaticSegment[]? AttentionSegments { get; init; }
    /// <summary>Rows in the batch (all segments).</summary>
    public required long Batch { get; init; }
    /// <summary>
    /// This step's reusable outputs of the GEMMs whose results stay inside one layer (fused q|k|v, gate|up) and their
    /// views; null: the layers allocate them.
    /// </summary>
    public StaticScratch? Scratch { get; init; }

    /// <summary>[(H + 2·KV)·D] int64 column gather swapping the halves of every q/k/v head of a text config's fused projection.</summary>
    public static Tensor MakePermutation(Checkpoints.TextConfig config, Device device)
    {
        long heads = config.NumHeads + 2 * config.NumKvHeads, d = config.HeadDim, half = d / 2;
        var idx = new long[heads * d];
        for (long h = 0; h < heads; h++)
            for (long j = 0; j < d; j++) idx[h * d + j] = h * d + (j < half ? j + half : j - half);
        return tensor(idx, ScalarType.Int64, device).DetachFromDisposeScope();
    }
}

/// <summary>
/// Reusable buffers of the static step: the fused q|k|v and gate|up GEMMs write into them (<c>addmm_</c> with β = 0:
/// the GEMM <c>linear</c> runs, without a new tensor) and the q/k/v and gate/up views of them are made once, not per
/// layer and step. Only outputs consumed inside a layer live here: the residual stream (attention and MLP outputs) is
/// still allocated, so a layer's input can never be overwritten by its own output. Not thread-safe: a decode state
/// owns one for its own steps (<see cref="StaticDecodeBuffers.Scratch"/>), a batcher one for its rounds, which run
/// one at a time. Buffers hold the most rows asked so far; views are cached per row range until <see cref="Clear"/>.
/// </summary>
internal sealed class StaticScratch : IDisposable
{
    private long _capacity;
    private readonly Dictionary<long, Tensor> _full = [];
    private readonly Dictionary<(long Width, long Rows), Tensor> _rows = [];
    private readonly Dictionary<(long Row0, long Rows, long Kv, long Rep, long D, long H), Tensor[]> _qkv = [];
    private readonly Dictionary<(long Rows, long Half), Tensor[]> _halves = [];

    public StaticScratch(long rows) => _capacity = rows;

    /// <summary>
    /// A [<paramref name="rows"/>, <paramref name="width"/>] buffer in <paramref name="like"/>'s dtype, on its device
    /// (the hidden states of one backbone keep one device, so only the dtype is checked: <c>Tensor.device</c> is a new
    /// object per call and would never compare equal).
    /// </summary>
    public Tensor Buffer(long width, long rows, Tensor like)
    {
        if (rows > _capacity) { Clear(); _capacity = rows; }
        if (!_full.TryGetValue(width, out var full) || full.dtype != like.dtype)
        {
            if (full is not null) Clear(); // another dtype: start over (a new width only adds its buffer)
            full = zeros([_capacity, width], like.dtype, like.device).DetachFromDisposeScope();
            _full[width] = full;
        }
        if (rows == _capacity) return full;
        if (_rows.TryGetValue((width, rows), out var v)) return v;
        v = full.narrow(0, 0, rows).DetachFromDisposeScope();
        _rows[(width, rows)] = v;
        return v;
    }

    /// <summary><see cref="SplitQkv"/> of a scratch buffer, made once per row range and kept until <see cref="Clear"/>.</summary>
    public Tensor[] QkvViews(Tensor buffer, long row0, long rows, long kv, long rep, long d, long h)
    {
        var key = (row0, rows, kv, rep, d, h);
        if (_qkv.TryGetValue(key, out var v)) return v;
        v = SplitQkv(buffer, row0, rows, kv, rep, d, h);
        foreach (var t in v) t.DetachFromDisposeScope();
        _qkv[key] = v;
        return v;
    }

    /// <summary>
    /// q [rows, KV, rep, D] (the query heads of each KV group folded into the query axis: grouped-query attention), k
    /// and v [rows, KV, 1, D] as views of a fused q|k|v tensor [R, N], N = (H + 2·KV)·D, for rows
    /// [<paramref name="row0"/>, row0 + <paramref name="rows"/>).
    /// </summary>
    public static Tensor[] SplitQkv(Tensor fused, long row0, long rows, long kv, long rep, long d, long h)
    {
        long n = (h + 2 * kv) * d, o = fused.storage_offset() + row0 * n;
        return
        [
            fused.as_strided([rows, kv, rep, d], [n, rep * d, d, 1], o),
            fused.as_strided([rows, kv, 1, d], [n, d, d, 1], o + h * d),
            fused.as_strided([rows, kv, 1, d], [n, d, d, 1], o + (h + kv) * d),
        ];
    }

    /// <summary>The two halves [rows, <paramref name="half"/>] of a [rows, 2·half] buffer (gate | up).</summary>
    public Tensor[] Halves(Tensor buffer, long rows, long half)
    {
        var key = (rows, half);
        if (_halves.TryGetValue(key, out var v)) return v;
        v = [buffer.narrow(1, 0, half).DetachFromDisposeScope(), buffer.narrow(1, half, half).DetachFromDisposeScope()];
        _halves[key] = v;
        return v;
    }

    /// <summary>Frees every buffer and view (the next step makes them again).</summary>
    public void Clear()
    {
        foreach (var t in _qkv.Values.SelectMany(x => x).Concat(_halves.Values.SelectMany(x => x)).Concat(_rows.Values).Concat(_full.Values)) t.Dispose();
        _qkv.Clear(); _halves.Clear(); _rows.Clear(); _full.Clear();
    }

    public void Dispose() => Clear();
}

/// <summary>One decode state's rows [<paramref name="Row0"/>, Row0 + <paramref name="Rows"/>) of a static step.</summary>
/// <param name="Slot">[1] int64 on the device: the cache position this step writes.</param>
/// <param name="Views">The bucket's views: additive mask [rows, 1, 1, L] and per-layer K/V [rows, KV, L, D].</param>
/// <param name="Caches">The per-layer caches (written at <paramref name="Slot"/>).</param>
/// <param name="State">The decode state these rows belong to (a family with its own decoder reads its per-request data there).</param>
internal sealed record StaticSegment(long Row0, long Rows, Tensor Slot, StaticDecodeBuffers.BucketViews Views, IReadOnlyList<LayerCache> Caches,
    CausalDecodeState State);

/// <summary>
/// Per-state buffers of the static step, made at the first static step and rebuilt after anything that changes
/// the rows or the length from outside it (<see cref="CausalDecodeState.KeepRows"/>, <see cref="CausalDecodeState.Truncate"/>, an eager step).
/// </summary>
internal sealed class StaticDecodeBuffers : IDisposable
{
    /// <summary>Views of the cache and the mask for one attention length.</summary>
    internal sealed class BucketViews : IDisposable
    {
        public required Tensor Mask { get; init; }
        public required Tensor[] K { get; init; }
        public required Tensor[] V { get; init; }

        public void Dispose()
        {
            Mask.Dispose();
            foreach (var t in K) t.Dispose();
            foreach (var t in V) t.Dispose();
        }
    }

    /// <summary>[1] int64: the next cache position.</summary>
    public Tensor Slot { get; }
    /// <summary>[B, capacity] in the model dtype: 0 where a key may be attended to, −inf elsewhere.</summary>
    public Tensor AddMask { get; }
    /// <summary>[B, 1] int64: this step's tokens.</summary>
    public Tensor Tokens { get; }
    /// <summary>[B, KV·D] ones and zeros: the v columns of the fused cos / sin.</summary>
    public Tensor VOnes { get; }
    /// <inheritdoc cref="VOnes"/>
    public Tensor VZeros { get; }
    /// <summary>
    /// A family's own per-state buffers for its static step (IDEFICS: cross-attention mask and gates), made by the
    /// family at its first static step and freed with these buffers, so they follow the state's rows.
    /// </summary>
    public IDisposable? Family { get; set; }

    /// <summary>The state's own reusable GEMM buffers for its steps alone (see <see cref="StaticScratch"/>).</summary>
    public StaticScratch Scratch { get; }
    private readonly Dictionary<long, BucketViews> _views = [];

    public StaticDecodeBuffers(CausalDecodeState state, ScalarType dtype, long vWidth)
    {
        Scratch = new StaticScratch(state.BatchSize);
        using var scope = NewDisposeScope();
        var device = state.KeyValid.device;
        long b = state.BatchSize;
        Slot = tensor(new[] { state.Length }, ScalarType.Int64, device).DetachFromDisposeScope();
        AddMask = zeros([b, state.Capacity], dtype, device).masked_fill_(state.KeyValid.logical_not(), Scalars.NegativeInfinity).DetachFromDisposeScope();
        Tokens = zeros([b, 1], ScalarType.Int64, device).DetachFromDisposeScope();
        VOnes = ones([b, vWidth], dtype, device).DetachFromDisposeScope();
        VZeros = zeros([b, vWidth], dtype, device).DetachFromDisposeScope();
    }

    /// <summary>The views for attention length <paramref name="length"/>, made once and reused while the state keeps its rows.</summary>
    public BucketViews Views(CausalDecodeState state, long length)
    {
        if (_views.TryGetValue(length, out var v)) return v;
        using var scope = NewDisposeScope();
        long b = state.BatchSize;
        v = new BucketViews
        {
            Mask = AddMask.narrow(1, 0, length).view(b, 1, 1, length).MoveToOuterDisposeScope(),
            K = state.Caches.Select(c => c.K.narrow(2, 0, length).MoveToOuterDisposeScope()).ToArray(),
            V = state.Caches.Select(c => c.V.narrow(2, 0, length).MoveToOuterDisposeScope()).ToArray(),
        };
        foreach (var t in v.K.Concat(v.V).Append(v.Mask)) t.DetachFromDisposeScope();
        _views[length] = v;
        return v;
    }

    /// <summary>Marks this step's slot as attended to (mask and key-valid) before the layers run.</summary>
    public void OpenSlot(CausalDecodeState state)
    {
        AddMask.index_fill_(1, Slot, Scalars.ZeroDouble);
        state.KeyValid.index_fill_(1, Slot, Scalars.True);
    }

    public void Dispose()
    {
        foreach (var v in _views.Values) v.Dispose();
        _views.Clear();
        Family?.Dispose();
        Family = null;
        Scratch.Dispose();
        Slot.Dispose(); AddMask.Dispose(); Tokens.Dispose(); VOnes.Dispose(); VZeros.Dispose();
    }
}

/// <summary>cos and signed sin for every position up to a capacity, in the model dtype (built once per backbone).</summary>
internal sealed class RopeTable : IDisposable
{
    /// <summary>[P, D].</summary>
    public Tensor Cos { get; }
    /// <summary>[P, D]: −sin on the first half of each row, +sin on the second (rotate-half folded in).</summary>
    public Tensor SinSigned { get; }
    /// <summary>Positions covered.</summary>
    public long Positions { get; }

    public RopeTable(Tensor cos, Tensor sin, long positions)
    {
        using var scope = NewDisposeScope();
        long half = sin.shape[^1] / 2;
        Cos = cos.contiguous().MoveToOuterDisposeScope();
        SinSigned = cat([sin.narrow(-1, 0, half).neg(), sin.narrow(-1, half, half)], -1).MoveToOuterDisposeScope();
        Positions = positions;
    }

    public void Dispose() { Cos.Dispose(); SinSigned.Dispose(); }
}

internal sealed partial class LlamaModel
{
    private Tensor? _perm;

    /// <summary>[N] int64 column gather swapping the halves of every q/k/v head (rotate-half without the negation).</summary>
    public Tensor RotatePermutation(Device device)
    {
        lock (_permLock) return _perm ??= MakePermutation(device);
    }

    private readonly object _permLock = new();

    private Tensor MakePermutation(Device device) => StaticStepInputs.MakePermutation(Config, device);

    /// <summary>All layers for one decode token per row ([B, hidden]); returns the normed hidden states [B, hidden].</summary>
    public Tensor StaticForward(Tensor x, StaticStepInputs si)
    {
        var h = x;
        for (int i = 0; i < layers.Count; i++) h = layers[i].StaticForward(h, si, i);
        return norm.Forward(h);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) { _perm?.Dispose(); _perm = null; }
        base.Dispose(disposing);
    }
}

internal sealed partial class LlamaDecoderLayer
{
    /// <summary>One token per row: x + attn(norm(x)), then + mlp(norm(·)), residuals added in place.</summary>
    public Tensor StaticForward(Tensor x, StaticStepInputs si, int layer)
    {
        var h = self_attn.StaticForward(input_layernorm.StaticForward(x), si, layer).PlusInPlace(x);
        return mlp.StaticForward(post_attention_layernorm.StaticForward(h), si.Scratch, si.Batch).PlusInPlace(h);
    }
}

internal sealed partial class RmsNorm
{
    /// <summary>The same arithmetic as <see cref="Forward"/> with fewer temporaries (float32 inputs are not copied).</summary>
    public Tensor StaticForward(Tensor x)
    {
        var dtype = x.dtype;
        var h = dtype == ScalarType.Float32 ? x : x.to(ScalarType.Float32);
        var v = h.pow(Scalars.Two).mean([-1L], keepdim: true);
        v.PlusInPlace(_eps).rsqrt_();
        var n = h * v;
        var o = dtype == ScalarType.Float32 ? n : n.to(dtype);
        return o.mul_(weight);
    }
}

internal sealed partial class LlamaAttention
{
    /// <summary>One token per row through the fused q|k|v GEMM, table RoPE, a slot write and bucket attention (per segment).</summary>
    public Tensor StaticForward(Tensor x, StaticStepInputs si, int layer)
    {
        long d = _headDim, h = _heads, kv = _kvHeads, n = (h + 2 * kv) * d, rep = h / kv;
        var scratch = si.Scratch;
        var rot = scratch is null ? _qkv.ForwardRows(x) : _qkv.ForwardRowsInto(x, scratch.Buffer(n, si.Batch, x));   // [R, N]
        var swapped = rot.index_select(-1, si.Perm);     // gathered before rot is overwritten
        rot.mul_(si.CosF).PlusInPlace(swapped.mul_(si.SinF));   // x·cos + rotate_half(x)·sin in place, v untouched (cos 1, sin 0)
        var segs = si.AttentionSegments ?? si.Segments;
        var outs = segs.Length == 1 ? null : new Tensor[segs.Length];
        Tensor o = null!;
        for (int i = 0; i < segs.Length; i++)
        {
            var qkv = scratch is not null
                ? scratch.QkvViews(rot, segs[i].Row0, segs[i].Rows, kv, rep, d, h)
                : StaticScratch.SplitQkv(rot, segs[i].Row0, segs[i].Rows, kv, rep, d, h);
            var (q, k, v) = (qkv[0], qkv[1], qkv[2]);
            var cache = segs[i].Caches[layer];
            cache.K.index_copy_(2, segs[i].Slot, k);
            cache.V.index_copy_(2, segs[i].Slot, v);
            o = F.scaled_dot_product_attention(q, segs[i].Views.K[layer], segs[i].Views.V[layer], segs[i].Views.Mask, 0.0, false);
            if (outs is not null) outs[i] = o;
        }
        if (outs is not null) o = cat(outs, 0);
        return o_proj.ForwardRows(o.reshape(si.Batch, h * d));
    }
}

internal sealed partial class GatedMlp
{
    /// <summary>down(act(gate(x)) · up(x)) with gate|up as one GEMM and the activation and product in place.</summary>
    public Tensor StaticForward(Tensor x, StaticScratch? scratch = null, long rows = 0)
    {
        Tensor g, u;
        if (scratch is null)
        {
            var gu = _gateUp.ForwardRows(x);
            g = gu.narrow(-1, 0, _intermediate);
            u = gu.narrow(-1, _intermediate, _intermediate);
        }
        else
        {
            var gu = _gateUp.ForwardRowsInto(x, scratch.Buffer(2 * _intermediate, rows, x));
            var halves = scratch.Halves(gu, rows, _intermediate);
            (g, u) = (halves[0], halves[1]);
        }
        g = _actName is "silu" or "swish" ? g.silu_() : _act(g);
        return down_proj.ForwardRows(g.mul_(u));
    }
}
