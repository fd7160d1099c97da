using SafeCoDe.Torch.Runtime;
using SafeCoDe.Torch.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Models.Common;

/// <summary>
/// Per-row tensors a family keeps with a <see cref="CausalDecodeState"/> (first dim = batch), as typed fields of
/// its own class (e.g. IDEFICS's cross-attention keys and values): selected with the rows, freed with the state.
/// </summary>
internal interface IFamilyDecodeState : IDisposable
{
    /// <summary>Keeps the rows <paramref name="rows"/> (int64 index on the state's device), releasing the old tensors.</summary>
    void KeepRows(Tensor rows);
    /// <summary>Moves every tensor out of the current dispose scope (the state outlives the prefill's scope).</summary>
    void DetachFromDisposeScope();
}

/// <summary>Decode state of a decoder-only family: per-layer caches, key-padding mask, next position per row, the family's own state.</summary>
internal sealed class CausalDecodeState : DecodeState
{
    /// <summary>One preallocated KV cache per decoder layer.</summary>
    public List<LayerCache> Caches { get; }
    /// <summary>[B, capacity] bool: which cache positions hold real tokens (left padding is false).</summary>
    public Tensor KeyValid { get; private set; }
    /// <summary>[B] int64: the position id the next token of each row gets.</summary>
    public Tensor NextPosition { get; private set; }
    /// <summary>The family's typed per-row data (null when it keeps none), selected with the rows and freed with the state.</summary>
    public IFamilyDecodeState? FamilyState { get; set; }
    private long _length;
    private readonly long _capacity;

    /// <summary>Wraps the given tensors (the state owns and disposes them).</summary>
    public CausalDecodeState(List<LayerCache> caches, Tensor keyValid, Tensor nextPosition, long length, long capacity)
    {
        Caches = caches; KeyValid = keyValid; NextPosition = nextPosition; _length = length; _capacity = capacity;
    }

    /// <inheritdoc/>
    public override long BatchSize => KeyValid.shape[0];
    /// <inheritdoc/>
    public override long Length => _length;
    /// <inheritdoc/>
    public override long Capacity => _capacity;

    internal void Advance(long t) => _length += t;

    /// <summary>
    /// The prefill batch whose cache storage this state's caches are row views of (<c>PrefillParts</c>; null when the
    /// caches are the state's own). States sharing it may attend as one segment in a batched static step.
    /// </summary>
    internal object? SharedCache { get; set; }

    /// <summary>The static step's buffers (null until the first static step; dropped when rows or length change from outside it).</summary>
    internal StaticDecodeBuffers? Static { get; set; }

    /// <summary>Frees the static step's buffers; the next static step rebuilds them from the state.</summary>
    internal void ResetStatic() { Static?.Dispose(); Static = null; }

    /// <summary>Prompt length at prefill (truncation floor).</summary>
    public long PromptLength { get; internal set; }

    /// <inheritdoc/>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="length"/> is below <see cref="PromptLength"/> or above <see cref="Length"/>.</exception>
    public override void Truncate(long length)
    {
        if (length < PromptLength || length > _length)
            throw new ArgumentOutOfRangeException(nameof(length), $"can truncate to [{PromptLength}, {_length}], not {length}");
        long drop = _length - length;
        if (drop == 0) return;
        ResetStatic();
        using (var tail = KeyValid.narrow(1, length, drop)) tail.fill_(Scalars.False);
        using (var dropS = drop.ToScalar()) NextPosition.sub_(dropS);
        _length = length;
    }

    /// <inheritdoc/>
    public override void KeepRows(IReadOnlyList<long> keep)
    {
        ResetStatic();
        if (FamilyState is null && keep.Select((r, i) => r == i).All(x => x))
        {
            // a leading run of rows (dropping the noised branch): views of the same storage, no cache copy
            long n = keep.Count;
            foreach (var c in Caches) c.KeepFirst(n);
            KeyValid = Replace(KeyValid, KeyValid.narrow(0, 0, n));
            NextPosition = Replace(NextPosition, NextPosition.narrow(0, 0, n));
            return;
        }
        using var idx = tensor(keep.ToArray(), ScalarType.Int64, KeyValid.device);
        SharedCache = null; // the selected rows are copies
        foreach (var c in Caches) c.KeepRows(idx);
        KeyValid = Replace(KeyValid, KeyValid.index_select(0, idx));
        NextPosition = Replace(NextPosition, NextPosition.index_select(0, idx));
        FamilyState?.KeepRows(idx);
    }

    private static Tensor Replace(Tensor old, Tensor fresh) { old.Dispose(); return fresh.DetachFromDisposeScope(); }

    /// <inheritdoc/>
    public override void Dispose()
    {
        ResetStatic();
        foreach (var c in Caches) c.Dispose();
        KeyValid.Dispose(); NextPosition.Dispose();
        FamilyState?.Dispose();
        FamilyState = null;
    }
}

/// <summary>
/// Shared prefill/step machinery for families whose language model is a Llama-style decoder fed with merged
/// text+image embeddings (LLaVA, LLaVA-NeXT, InstructBLIP, Idefics3, Qwen-VL). A family supplies the embeddings
/// (images merged in) and, where it differs, the position ids and rotary cos/sin.
/// </summary>
internal abstract partial class DecoderBackbone : Block, IBackbone
{
    /// <summary>Sets up the shared rotary embedding from the text config; the family creates its modules.</summary>
    protected DecoderBackbone(string name, ModelConfig config, ParamFactory factory) : base(name)
    {
        Config = config;
        Factory = factory;
        Rotary = new Rotary(config.Text.HeadDim, config.Text.Rope.Theta);
    }

    /// <inheritdoc/>
    public ModelConfig Config { get; }
    /// <inheritdoc/>
    public string Family => Config.ModelType;
    /// <inheritdoc/>
    public Device Device => Factory.Device;
    /// <inheritdoc/>
    public ScalarType DType => Factory.DType;
    /// <summary>Device and dtype new parameters are created with.</summary>
    protected ParamFactory Factory { get; }
    /// <summary>The text model's rotary embedding (head_dim, rope theta).</summary>
    protected Rotary Rotary { get; }
    /// <inheritdoc/>
    public virtual long VocabSize => Config.Text.VocabSize;

    /// <summary>
    /// The decoder (embed_tokens, layers, norm), used by the default <see cref="EmbedTokens"/> and
    /// <see cref="DecoderLayers"/>. A family whose text model is not a plain <see cref="LlamaModel"/> (IDEFICS) overrides
    /// those two hooks instead, and the static step's <c>StaticDecoder</c> and <c>RotatePermutation</c>.
    /// </summary>
    protected virtual LlamaModel TextModel =>
        throw new NotSupportedException($"{GetType().Name} has no plain Llama text model; it must override EmbedTokens, DecoderLayers, StaticDecoder and RotatePermutation");

    /// <summary>Projects final hidden states to logits.</summary>
    protected abstract Tensor LmHead(Tensor hidden);

    /// <summary>
    /// The lm head's weight [vocab, hidden] when <see cref="LmHead"/> is a bias-free x·Wᵀ (then the batched static
    /// step writes the logits straight into a reused buffer); null otherwise.
    /// </summary>
    internal virtual Tensor? LmHeadWeight => null;

    /// <summary>
    /// Token embeddings with every image's features written at its placeholder positions: [B, T, hidden]. Per-request
    /// tensors a family needs while decoding (first dim = batch) go into <paramref name="state"/>'s <see cref="CausalDecodeState.FamilyState"/>.
    /// </summary>
    protected abstract Tensor PromptEmbeddings(BackboneInputs inputs, CausalDecodeState state);

    /// <summary>
    /// Position ids of the prompt, [B, T] (or [3, B, T] for M-RoPE), and each row's next position. Default: HF's
    /// left-padding rule, cumsum(mask) − 1 with padding set to 1.
    /// </summary>
    protected virtual (Tensor positions, Tensor next) PromptPositions(BackboneInputs inputs, Tensor mask, CausalDecodeState? state)
    {
        using var scope = NewDisposeScope();
        var m = mask.to(ScalarType.Int64);
        var pos = m.cumsum(1).sub(Scalars.One);
        pos = pos.masked_fill(m.eq(Scalars.Zero), Scalars.One);
        var next = m.sum(1);
        return (pos.MoveToOuterDisposeScope(), next.MoveToOuterDisposeScope());
    }

    /// <summary>Positions for one decode step ([B,1], or [3,B,1]) from the state.</summary>
    protected virtual Tensor StepPositions(CausalDecodeState state) => state.NextPosition.view(-1, 1);

    /// <summary>cos/sin [B, T, D] for positions.</summary>
    protected virtual (Tensor cos, Tensor sin) CosSin(Tensor positions) => Rotary.CosSin(positions, DType);

    /// <inheritdoc/>
    public (DecodeState State, Tensor Logits) Prefill(BackboneInputs inputs, int maxNewTokens, bool allLogits = false)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        long b = inputs.BatchSize, t = inputs.SeqLen;
        long capacity = t + Math.Max(0, maxNewTokens);
        var ids = inputs.InputIds.to(Device);
        var mask = (inputs.AttentionMask ?? ones_like(inputs.InputIds)).to(Device).to(ScalarType.Bool);

        var tc = Config.Text;
        var caches = new List<LayerCache>();
        for (int i = 0; i < tc.NumLayers; i++) caches.Add(new LayerCache(b, tc.NumKvHeads, capacity, tc.HeadDim, DType, Device));
        var keyValid = zeros([b, capacity], ScalarType.Bool, Device);
        keyValid.narrow(1, 0, t).copy_(mask);
        var state = new CausalDecodeState(caches, keyValid, zeros([b], ScalarType.Int64, Device), 0, capacity);
        try
        {
            var embeds = PromptEmbeddings(inputs with { InputIds = ids, AttentionMask = mask }, state);
            var (pos, next) = PromptPositions(inputs with { InputIds = ids, AttentionMask = mask }, mask, state);
            state.NextPosition.copy_(next);
            var (cos, sin) = CosSin(pos);
            var attn = Attention.CausalMask(keyValid, 0, t);
            var h = DecoderLayers(embeds, cos, sin, state, 0, attn);
            state.Advance(t);
            state.PromptLength = t;
            var logits = allLogits ? LmHead(h) : LmHead(h.narrow(1, t - 1, 1)).squeeze(1);
            var result = logits.to(ScalarType.Float32).MoveToOuterDisposeScope();
            DetachState(state);
            return (state, result);
        }
        catch
        {
            state.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Logits at every position of a batch with autograd on (training): the prefill's computation, with a
    /// throw-away cache of the prompt's length and no no_grad. Inference never calls it, so its numerics are untouched.
    /// </summary>
    internal Tensor TrainingLogits(BackboneInputs inputs)
    {
        using var scope = NewDisposeScope();
        long b = inputs.BatchSize, t = inputs.SeqLen;
        var ids = inputs.InputIds.to(Device);
        var mask = (inputs.AttentionMask ?? ones_like(inputs.InputIds)).to(Device).to(ScalarType.Bool);
        var tc = Config.Text;
        var caches = new List<LayerCache>();
        for (int i = 0; i < tc.NumLayers; i++) caches.Add(new LayerCache(b, tc.NumKvHeads, t, tc.HeadDim, DType, Device));
        var keyValid = mask.clone();
        using var state = new CausalDecodeState(caches, keyValid, zeros([b], ScalarType.Int64, Device), 0, t);
        var embeds = PromptEmbeddings(inputs with { InputIds = ids, AttentionMask = mask }, state);
        var (pos, _) = PromptPositions(inputs with { InputIds = ids, AttentionMask = mask }, mask, state);
        var (cos, sin) = CosSin(pos);
        var attn = Attention.CausalMask(keyValid, 0, t);
        var h = DecoderLayers(embeds, cos, sin, state, 0, attn);
        return LmHead(h).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    /// <remarks>The static step (<see cref="StaticStep"/>) where the family supports it, else the eager one.</remarks>
    /// <exception cref="InvalidOperationException">The state's cache is full.</exception>
    /// <exception cref="InvalidCastException">The state was not made by a <see cref="DecoderBackbone"/>.</exception>
    public Tensor Step(DecodeState s, Tensor tokens) =>
        SupportsStaticStep ? StaticStep(s, tokens, DefaultBucket) : EagerStep(s, tokens);

    /// <summary>
    /// The reference step: per-layer projections, RoPE computed from the positions, a bool mask over the exact
    /// length, cache writes through narrows. Kept as the baseline the static step is tested and measured against.
    /// </summary>
    /// <exception cref="InvalidOperationException">The state's cache is full.</exception>
    public Tensor EagerStep(DecodeState s, Tensor tokens)
    {
        var state = (CausalDecodeState)s;
        if (state.Length >= state.Capacity)
            throw new InvalidOperationException($"decode state is full ({state.Capacity} positions): prefill with a larger maxNewTokens");
        state.ResetStatic();
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        long b = state.BatchSize, start = state.Length;
        var ids = tokens.to(Device).to(ScalarType.Int64).view(b, 1);
        state.KeyValid.narrow(1, start, 1).fill_(Scalars.True);
        var embeds = StepEmbeddings(ids, state);
        var pos = StepPositions(state);
        var (cos, sin) = CosSin(pos);
        var mask = state.KeyValid.narrow(1, 0, start + 1).view(b, 1, 1, start + 1);
        var h = DecoderLayers(embeds, cos, sin, state, start, mask);
        state.Advance(1);
        state.NextPosition.PlusInPlace(Scalars.One);
        return LmHead(h).squeeze(1).to(ScalarType.Float32).MoveToOuterDisposeScope();
    }

    /// <summary>Embeddings of decode-step tokens ([B, 1] ids); plain token embeddings by default.</summary>
    protected virtual Tensor StepEmbeddings(Tensor ids, CausalDecodeState state) => EmbedTokens(ids);

    /// <summary>Token embedding lookup (IDEFICS overrides it for its decoupled extra vocabulary).</summary>
    protected virtual Tensor EmbedTokens(Tensor ids) => TextModel.Embed(ids);

    /// <summary>
    /// Runs the decoder over [B, T, hidden] embeddings whose queries sit at cache positions [start, start+T) and
    /// returns the final normed hidden states. Families with extra layers (IDEFICS gated cross-attention) override
    /// it and keep their per-request tensors in <see cref="CausalDecodeState.FamilyState"/>.
    /// </summary>
    protected virtual Tensor DecoderLayers(Tensor embeds, Tensor cos, Tensor sin, CausalDecodeState state, long start, Tensor mask)
        => TextModel.Forward(embeds, cos, sin, state.Caches, start, mask);

    private static void DetachState(CausalDecodeState state)
    {
        foreach (var c in state.Caches) { c.K.DetachFromDisposeScope(); c.V.DetachFromDisposeScope(); }
        state.KeyValid.DetachFromDisposeScope();
        state.NextPosition.DetachFromDisposeScope();
        state.FamilyState?.DetachFromDisposeScope();
    }

    /// <summary>Writes <paramref name="features"/> ([N, hidden], in order) at the positions of <paramref name="tokenId"/>; counts must match.</summary>
    protected static Tensor ScatterImageFeatures(Tensor embeds, Tensor ids, long tokenId, Tensor features, string what)
    {
        using var scope = NewDisposeScope();
        using var token = tokenId.ToScalar();
        var isImage = ids.eq(token);
        long n = isImage.sum().item<long>();
        if (n != features.shape[0])
            throw new ArgumentException($"the prompt has {n} image tokens (id {tokenId}) but the {what} produced {features.shape[0]} features");
        var mask = isImage.unsqueeze(-1).expand_as(embeds);
        return embeds.masked_scatter(mask, features.to(embeds.dtype)).MoveToOuterDisposeScope();
    }

    /// <summary>Token ids with the placeholder replaced by 0 so the embedding lookup stays in range.</summary>
    protected static Tensor SafeIds(Tensor ids, long tokenId, long vocab)
    {
        if (tokenId < vocab) return ids.alias();
        using var token = tokenId.ToScalar();
        using var eq = ids.eq(token);
        return ids.masked_fill(eq, Scalars.Zero);
    }
}
