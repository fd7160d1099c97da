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
    /// Whether <see cref="Step"/> takes the static path: true for families whose language model is the plain
    /// <see cref="LlamaModel"/>; a family with its own decoder (IDEFICS) returns false and steps eagerly.
    /// </summary>
    protected virtual bool SupportsStaticStep => true;

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
            var pos = arange(0, p, dtype: ScalarType.Int64, device: Device).view(1, p);
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
        var state = (CausalDecodeState)s;
        if (state.Length >= state.Capacity)
            throw new InvalidOperationException($"decode state is full ({state.Capacity} positions): prefill with a larger maxNewTokens");
        if (!SupportsStaticStep) throw new InvalidOperationException($"{GetType().Name} has no static step");
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var tc = Config.Text;
        long b = state.BatchSize, start = state.Length, kvWidth = tc.NumKvHeads * tc.HeadDim;
        long length = Math.Min((start + bucket) / bucket * bucket, state.Capacity);
        var st = state.Static ??= new StaticDecodeBuffers(state, DType, kvWidth);
        var rope = Rope(state.Capacity);
        st.Tokens.copy_(tokens.view(b, 1));
        st.OpenSlot(state);
        var embeds = StepEmbeddings(st.Tokens, state);
        var cos = rope.Cos.index_select(0, state.NextPosition);       // [B, D]
        var sin = rope.SinSigned.index_select(0, state.NextPosition);
        long qk = tc.NumHeads + tc.NumKvHeads;
        var si = new StaticStepInputs
        {
            CosF = cat([cos.repeat(1, qk), st.VOnes], 1).unsqueeze(1),
            SinF = cat([sin.repeat(1, qk), st.VZeros], 1).unsqueeze(1),
            Perm = TextModel.RotatePermutation(Device),
            Slot = st.Slot,
            Views = st.Views(state, length),
            Caches = state.Caches,
            Batch = b,
            Bucket = bucket,
        };
        var h = TextModel.StaticForward(embeds, si);
        state.Advance(1);
        state.NextPosition.add_(1);
        st.Slot.add_(1);
        return LmHead(h).squeeze(1).to(ScalarType.Float32).MoveToOuterDisposeScope();
    }
}
