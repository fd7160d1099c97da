using SafeCoDe.Torch.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Models.Common;

internal abstract partial class DecoderBackbone
{
    /// <summary>Attention-length granularity of the static step: keys are attended over multiples of it (the tail masked).</summary>
    public const long DefaultBucket = 256;

    private RopeTable? _rope;
    private readonly object _ropeLock = new();

    /// <summary>
    /// Whether <see cref="Step"/> takes the static path: true for every family whose decoder runs the static step
    /// (the plain <see cref="LlamaModel"/>, or a family's own override of <see cref="StaticDecoder"/>).
    /// </summary>
    protected virtual bool SupportsStaticStep => true;

    /// <summary>
    /// The decoder of the static step over one token per row: [R, 1, hidden] embeddings → final normed hidden states.
    /// The plain <see cref="LlamaModel"/> by default; a family with its own decoder (IDEFICS) overrides it and
    /// <see cref="RotatePermutation"/>.
    /// </summary>
    protected virtual Tensor StaticDecoder(Tensor embeds, StaticStepInputs inputs) => TextModel.StaticForward(embeds, inputs);

    /// <summary>The fused q|k|v column gather of the decoder (see <see cref="StaticStepInputs.Perm"/>), made once per backbone.</summary>
    protected virtual Tensor RotatePermutation() => TextModel.RotatePermutation(Device);

    /// <summary>Whether this backbone's <see cref="Step"/> is the static step (tests and the bench ask).</summary>
    internal bool StepsStatically => SupportsStaticStep;

    /// <summary>
    /// cos / signed sin for positions [0, <paramref name="positions"/>) made by the family's own <see cref="CosSin"/>
    /// (M-RoPE for Qwen, where a text token's three axes are equal), so a row is the value the eager step computes.
    /// </summary>
    private RopeTable Rope(long positions)
    {
        lock (_ropeLock)
        {
            if (_rope is { } t && t.Positions >= positions) return t;
            long p = (positions + 4095) / 4096 * 4096;
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var pos = Scalars.Arange(0, p, ScalarType.Int64, Device).view(1, p);
            var (cos, sin) = CosSin(pos);
            var table = new RopeTable(cos.view(p, -1), sin.view(p, -1), p);
            table.Cos.DetachFromDisposeScope(); table.SinSigned.DetachFromDisposeScope();
            _rope?.Dispose();
            _rope = table;
            return table;
        }
    }

    /// <summary>Frees the RoPE table with the modules.</summary>
    protected override void Dispose(bool disposing)
    {
        if (disposing) lock (_ropeLock) { _rope?.Dispose(); _rope = null; }
        if (disposing) lock (_vRowsLock) { if (_vRows is var (o, z)) { o.Dispose(); z.Dispose(); } _vRows = null; }
        base.Dispose(disposing);
    }

    /// <summary>
    /// The fixed-shape step (see <see cref="StaticStepInputs"/>): same results as <see cref="EagerStep"/> (bitwise at
    /// <paramref name="bucket"/> = 1 on CPU), with about a third of its tensors and no per-step host work beyond
    /// reading the shapes it already knows.
    /// </summary>
    /// <param name="bucket">Attention-length granularity; 1 attends over the exact length like the eager step.</param>
    /// <exception cref="InvalidOperationException">The state's cache is full, or the family has no static step.</exception>
    public Tensor StaticStep(DecodeState s, Tensor tokens, long bucket = DefaultBucket)
    {
        var state = Ready(s);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var tc = Config.Text;
        long b = state.BatchSize;
        var st = state.Static ??= new StaticDecodeBuffers(state, DType, tc.NumKvHeads * tc.HeadDim);
        VRows(tc.NumKvHeads * tc.HeadDim); // the batched step's v rows exist from the first static step on
        st.Tokens.copy_(tokens.view(b, 1));
        var seg = Open(state, 0, bucket);
        var embeds = StepEmbeddings(st.Tokens, state).view(b, -1);
        var h = StaticLayers(embeds, state.NextPosition, st.VOnes, st.VZeros, [seg], state.Capacity, st.Scratch);
        Close(state);
        return LmHead(h).to(ScalarType.Float32).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// One static step of several decode states as rows of one batch: the projections, norms, MLPs and the lm head
    /// run once over all rows; each state attends over its own cache, length and mask (ragged lengths, per-row
    /// positions). Rows keep their own state, so a state can join or leave between steps without a new prefill.
    /// Returns each state's float32 logits [rows, vocab], in order.
    /// </summary>
    /// <param name="logitsOut">
    /// Optional float32 [Σ rows, vocab] buffer the logits are written into (the returned tensors are then views of it,
    /// valid until the buffer is written again): a bias-free lm head writes it directly (<c>addmm_</c> with β = 0, no
    /// logits allocation), other heads are copied into it. Ignored for a single state.
    /// </param>
    /// <param name="scratch">
    /// Optional reusable GEMM buffers (see <see cref="StaticScratch"/>) owned by the caller, used by one step at a
    /// time; null: the step allocates its intermediates.
    /// </param>
    /// <exception cref="InvalidOperationException">A state's cache is full, or the family has no static step.</exception>
    public Tensor[] StaticStepMany(IReadOnlyList<DecodeState> states, IReadOnlyList<Tensor> tokens, long bucket = DefaultBucket, Tensor? logitsOut = null,
        StaticScratch? scratch = null)
    {
        if (states.Count == 1) return [StaticStep(states[0], tokens[0], bucket)];
        var cs = states.Select(Ready).ToArray();
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var tc = Config.Text;
        var segs = new StaticSegment[cs.Length];
        long row = 0;
        for (int i = 0; i < cs.Length; i++)
        {
            cs[i].Static ??= new StaticDecodeBuffers(cs[i], DType, tc.NumKvHeads * tc.HeadDim);
            segs[i] = Open(cs[i], row, bucket);
            row += cs[i].BatchSize;
        }
        // every family embeds decode tokens plainly (StepEmbeddings is the embedding lookup; IDEFICS's decoupled one)
        var ids = cat(tokens.Select((t, i) => t.to(Device).view(cs[i].BatchSize, 1)).ToArray(), 0);
        var positions = cat(cs.Select(c => c.NextPosition).ToArray(), 0);
        long vWidth = tc.NumKvHeads * tc.HeadDim;
        var (vOnes, vZeros) = VColumns(row, vWidth);
        var h = StaticLayers(EmbedTokens(ids).view(row, -1), positions, vOnes, vZeros, segs, cs.Max(c => c.Capacity), scratch);
        foreach (var c in cs) Close(c);
        var logits = logitsOut is null ? LmHead(h).to(ScalarType.Float32) : LogitsInto(h, logitsOut, row);
        var result = new Tensor[cs.Length];
        for (int i = 0; i < cs.Length; i++) result[i] = logits.narrow(0, segs[i].Row0, segs[i].Rows).MoveToOuterDisposeScope();
        return result;
    }

    /// <summary>
    /// The v columns' cos (ones) and sin (zeros) for <paramref name="rows"/> rows: broadcast views of one row each,
    /// made at the first static step (no per-step fill of [rows, width] tensors).
    /// </summary>
    private (Tensor Ones, Tensor Zeros) VColumns(long rows, long width) => (VRows(width).One.expand(rows, width), VRows(width).Zero.expand(rows, width));

    private (Tensor One, Tensor Zero) VRows(long width)
    {
        lock (_vRowsLock)
            return _vRows ??= (ones([1, width], DType, Device).DetachFromDisposeScope(), zeros([1, width], DType, Device).DetachFromDisposeScope());
    }
    private (Tensor One, Tensor Zero)? _vRows;
    private readonly object _vRowsLock = new();

    /// <summary>Writes the lm head over <paramref name="h"/> [rows, hidden] into <paramref name="buffer"/>; returns the buffer.</summary>
    private Tensor LogitsInto(Tensor h, Tensor buffer, long rows)
    {
        if (buffer.dtype != ScalarType.Float32 || buffer.dim() != 2 || buffer.shape[0] != rows || buffer.shape[1] != VocabSize)
            throw new ArgumentException($"the logits buffer must be float32 [{rows}, {VocabSize}], not {buffer.dtype} [{string.Join(", ", buffer.shape)}]");
        if (LmHeadWeight is { } w && DType == ScalarType.Float32)
            buffer.addmm_(h, w.t(), 0, 1);
        else
            buffer.copy_(LmHead(h));
        return buffer;
    }

    private CausalDecodeState Ready(DecodeState s)
    {
        var state = (CausalDecodeState)s;
        if (state.Length >= state.Capacity)
            throw new InvalidOperationException($"decode state is full ({state.Capacity} positions): prefill with a larger maxNewTokens");
        if (!SupportsStaticStep) throw new InvalidOperationException($"{GetType().Name} has no static step");
        return state;
    }

    /// <summary>Opens this step's cache slot of a state and returns its segment (rows from <paramref name="row0"/>).</summary>
    private static StaticSegment Open(CausalDecodeState state, long row0, long bucket)
    {
        var st = state.Static!;
        long length = Math.Min((state.Length + bucket) / bucket * bucket, state.Capacity);
        st.OpenSlot(state);
        return new StaticSegment(row0, state.BatchSize, st.Slot, st.Views(state, length), state.Caches, state);
    }

    /// <summary>Advances a state past the step just run.</summary>
    private static void Close(CausalDecodeState state)
    {
        state.Advance(1);
        state.NextPosition.PlusInPlace(Scalars.One);
        state.Static!.Slot.PlusInPlace(Scalars.One);
    }

    /// <summary>
    /// The decoder over one token per row, <paramref name="embeds"/> [R, hidden] → normed hidden states [R, hidden]:
    /// RoPE rows gathered from the table, fused columns, all layers. Rows stay two-dimensional through the layers:
    /// a linear layer over [R, 1, in] costs TorchSharp and ATen a reshape round trip per call that the 2-D GEMM
    /// does not (the same GEMM, so the same values).
    /// </summary>
    private Tensor StaticLayers(Tensor embeds, Tensor positions, Tensor vOnes, Tensor vZeros, StaticSegment[] segs, long capacity, StaticScratch? scratch)
    {
        var tc = Config.Text;
        var rope = Rope(capacity);
        long qk = tc.NumHeads + tc.NumKvHeads;
        var cos = rope.Cos.index_select(0, positions);       // [R, D]
        var sin = rope.SinSigned.index_select(0, positions);
        var si = new StaticStepInputs
        {
            CosF = cat([cos.repeat(1, qk), vOnes], 1),
            SinF = cat([sin.repeat(1, qk), vZeros], 1),
            Perm = RotatePermutation(),
            Segments = segs,
            AttentionSegments = MergeAttention(segs),
            Batch = embeds.shape[0],
            Scratch = scratch,
        };
        return StaticDecoder(embeds, si);
    }

    /// <summary>
    /// <paramref name="items"/> ordered so that states prefilled together (row views of one cache storage) come next
    /// to each other in their storage's row order, groups in order of first appearance (a stable regrouping: states
    /// that share nothing keep their order). Stepped in this order their attention runs as one segment
    /// (<see cref="MergeAttention"/>).
    /// </summary>
    internal static List<T> InCacheOrder<T>(IReadOnlyList<T> items, Func<T, DecodeState> state)
    {
        var groups = new List<object?>();
        int Group(T item)
        {
            var g = (state(item) as CausalDecodeState)?.SharedCache;
            if (g is null) return -1;
            int at = groups.FindIndex(x => ReferenceEquals(x, g));
            if (at < 0) { groups.Add(g); at = groups.Count - 1; }
            return at;
        }
        long Offset(T item) => state(item) is CausalDecodeState { SharedCache: not null, Caches.Count: > 0 } c ? c.Caches[0].K.storage_offset() : 0;
        var keyed = items.Select((item, index) => (item, index, group: Group(item))).ToList();
        // a state that shares no storage keeps its own place; a group sits where its first state was
        int Anchor((T item, int index, int group) x) => x.group < 0 ? x.index : keyed.First(y => y.group == x.group).index;
        return keyed.OrderBy(Anchor).ThenBy(x => Offset(x.item)).Select(x => x.item).ToList();
    }

    /// <summary>
    /// The attention segments of a batched step: runs of adjacent states that are rows of one cache storage at a
    /// constant row step (states prefilled together, each with the same number of rows), with the same length,
    /// capacity and attention length, attend as one segment — one cache write per K and V and one attention call per
    /// layer for the run, over strided views of the shared storage and their masks stacked — instead of one per state.
    /// Each row still attends over its own keys with its own mask, so the values are those of the states one by one.
    /// </summary>
    private static StaticSegment[] MergeAttention(StaticSegment[] segs)
    {
        if (segs.Length < 2) return segs;
        var merged = new List<StaticSegment>(segs.Length);
        int i = 0;
        while (i < segs.Length)
        {
            int j = i + 1;
            while (j < segs.Length && Continues(segs, i, j)) j++;
            merged.Add(j - i == 1 ? segs[i] : Merge(segs, i, j));
            i = j;
        }
        return merged.Count == segs.Length ? segs : merged.ToArray();
    }

    /// <summary>True when state <paramref name="j"/> continues the run of states [<paramref name="i"/>, j) (see <see cref="MergeAttention"/>).</summary>
    private static bool Continues(StaticSegment[] segs, int i, int j)
    {
        StaticSegment first = segs[i], prev = segs[j - 1], next = segs[j];
        if (first.State.SharedCache is null || !ReferenceEquals(next.State.SharedCache, first.State.SharedCache)
            || first.State.FamilyState is not null || next.State.FamilyState is not null)
            return false;
        if (next.State.Length != first.State.Length || next.State.Capacity != first.State.Capacity || next.Rows != first.Rows
            || next.Views.Mask.shape[3] != first.Views.Mask.shape[3] || next.Caches.Count != first.Caches.Count)
            return false;
        for (int l = 0; l < first.Caches.Count; l++)
            if (!Step(first.Caches[l].K, segs[i + 1 == j ? i : i + 1].Caches[l].K, prev.Caches[l].K, next.Caches[l].K, first.Rows, j - i)
                || !Step(first.Caches[l].V, segs[i + 1 == j ? i : i + 1].Caches[l].V, prev.Caches[l].V, next.Caches[l].V, first.Rows, j - i))
                return false;
        return true;

        // next's rows follow prev's at the run's row step in the shared storage, with the same strides
        static bool Step(Tensor first, Tensor second, Tensor prev, Tensor next, long rows, int run)
        {
            if (next.dtype != first.dtype || !next.stride().SequenceEqual(first.stride())) return false;
            long delta = next.storage_offset() - prev.storage_offset();
            long rowStride = first.stride(0);
            if (delta <= 0 || delta % rowStride != 0 || (rows > 1 && delta != rows * rowStride)) return false;
            return run == 1 || delta == second.storage_offset() - first.storage_offset();
        }
    }

    /// <summary>One segment for the run of states [<paramref name="i"/>, <paramref name="j"/>): strided views of their shared cache storage, their masks stacked.</summary>
    private static StaticSegment Merge(StaticSegment[] segs, int i, int j)
    {
        var first = segs[i];
        long rows = 0;
        for (int s = i; s < j; s++) rows += segs[s].Rows;
        long length = first.Views.Mask.shape[3];
        // one row each: the run's row step is the distance between states; several rows each: rows are adjacent
        long rowStep = first.Rows == 1 ? segs[i + 1].Caches[0].K.storage_offset() - first.Caches[0].K.storage_offset() : first.Caches[0].K.stride(0);
        Tensor View(Tensor t)
        {
            long step = first.Rows == 1 ? rowStep / first.Caches[0].K.stride(0) * t.stride(0) : t.stride(0);
            return t.as_strided([rows, t.shape[1], length, t.shape[3]], [step, t.stride(1), t.stride(2), t.stride(3)], t.storage_offset());
        }
        var k = first.Caches.Select(c => View(c.K)).ToArray();
        var v = first.Caches.Select(c => View(c.V)).ToArray();
        var views = new StaticDecodeBuffers.BucketViews { Mask = cat(segs[i..j].Select(s => s.Views.Mask).ToArray(), 0), K = k, V = v };
        return new StaticSegment(first.Row0, rows, first.Slot, views, k.Zip(v, (a, b) => new LayerCache(a, b)).ToList(), first.State);
    }
}
