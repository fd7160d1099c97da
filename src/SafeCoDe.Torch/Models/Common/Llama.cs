using SafeCoDe.Torch.Runtime;
#pragma warning disable CS1591 // public fields mirror the checkpoint's tensor names; the class summaries document them
using SafeCoDe.Torch.Checkpoints;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace SafeCoDe.Torch.Models.Common;

/// <summary>One layer's pre-allocated key/value cache, [batch, kv_heads, capacity, head_dim], written in place.</summary>
internal sealed class LayerCache : IDisposable
{
    public Tensor K { get; private set; }
    public Tensor V { get; private set; }

    public LayerCache(long batch, long kvHeads, long capacity, long headDim, ScalarType dtype, Device device)
    {
        K = zeros([batch, kvHeads, capacity, headDim], dtype, device);
        V = zeros([batch, kvHeads, capacity, headDim], dtype, device);
    }

    /// <summary>Wraps existing cache tensors [batch, kv_heads, capacity, head_dim] (e.g. rows of a larger cache); the cache owns them.</summary>
    public LayerCache(Tensor k, Tensor v)
    {
        K = k;
        V = v;
    }

    /// <summary>Writes [batch, kv_heads, t, head_dim] at <paramref name="start"/> and returns views of everything up to it.</summary>
    public (Tensor k, Tensor v) Append(Tensor k, Tensor v, long start)
    {
        long t = k.shape[2];
        using (var dk = K.narrow(2, start, t)) dk.copy_(k);
        using (var dv = V.narrow(2, start, t)) dv.copy_(v);
        return (K.narrow(2, 0, start + t), V.narrow(2, 0, start + t));
    }

    /// <summary>Keeps rows by copying them into new storage; the old tensors (and the dropped rows) are freed.</summary>
    public void KeepRows(Tensor index)
    {
        var k = K.index_select(0, index).DetachFromDisposeScope(); var v = V.index_select(0, index).DetachFromDisposeScope();
        K.Dispose(); V.Dispose();
        K = k; V = v;
    }

    /// <summary>Keeps the first <paramref name="n"/> rows as views of the same storage (no copy; the storage stays until the views go).</summary>
    public void KeepFirst(long n)
    {
        var k = K.narrow(0, 0, n).DetachFromDisposeScope(); var v = V.narrow(0, 0, n).DetachFromDisposeScope();
        K.Dispose(); V.Dispose();
        K = k; V = v;
    }

    public void Dispose() { K.Dispose(); V.Dispose(); }
}

/// <summary>
/// Attention helpers. TorchSharp 0.107's scaled_dot_product_attention has no enable_gqa: grouped-query attention is
/// done by folding the query heads of each KV group into the query-length axis, so the cache is never repeated.
/// </summary>
internal static class Attention
{
    /// <summary>q [B,H,T,D], k/v [B,KV,L,D], mask bool [B,1,T,L] (true = attend) or null → [B,H,T,D].</summary>
    public static Tensor Sdpa(Tensor q, Tensor k, Tensor v, Tensor? mask, bool causal = false)
    {
        long b = q.shape[0], h = q.shape[1], t = q.shape[2], d = q.shape[3], kv = k.shape[1];
        if (h == kv) return F.scaled_dot_product_attention(q, k, v, mask, 0.0, causal && mask is null);
        if (causal && mask is null) throw new ArgumentException("grouped-query attention needs an explicit mask for causal attention");
        long rep = h / kv;
        using var scope = NewDisposeScope();
        var qg = q.reshape(b, kv, rep * t, d);
        // a mask already folded by the caller ([B,1,rep·T,L], once per forward for all layers) is used as is
        Tensor? mg = mask is null ? null : mask.shape[2] == rep * t && rep > 1 ? mask : FoldMask(mask, rep);
        var o = F.scaled_dot_product_attention(qg, k, v, mg, 0.0, false);
        return o.reshape(b, h, t, d).MoveToOuterDisposeScope(); // CUDA kernels may return a non-contiguous layout
    }

    /// <summary>Repeats a [B,1,T,L] mask for the query heads folded into each KV group: [B,1,rep·T,L].</summary>
    public static Tensor FoldMask(Tensor mask, long rep)
    {
        long b = mask.shape[0], t = mask.shape[2], l = mask.shape[3];
        using var e = mask.unsqueeze(2).expand(b, 1, rep, t, l);
        return e.reshape(b, 1, rep * t, l);
    }

    /// <summary>
    /// Causal mask for queries at absolute positions [start, start+t) over keys [0, start+t), with key padding
    /// (<paramref name="keyValid"/> [B, L] bool). A padded query attends to itself only, so no row is empty (no NaN).
    /// </summary>
    public static Tensor CausalMask(Tensor keyValid, long start, long t)
    {
        using var scope = NewDisposeScope();
        long l = start + t;
        var dev = keyValid.device;
        var qpos = Scalars.Arange(start, l, ScalarType.Int64, dev).view(t, 1);
        var kpos = Scalars.Arange(0, l, ScalarType.Int64, dev).view(1, l);
        var causal = kpos.le(qpos);          // [t, l]
        var self = kpos.eq(qpos);            // [t, l]
        var valid = keyValid.narrow(1, 0, l).unsqueeze(1); // [B, 1, l]
        var m = causal.unsqueeze(0).logical_and(valid.logical_or(self.unsqueeze(0))); // [B, t, l]
        return m.unsqueeze(1).MoveToOuterDisposeScope();
    }
}

/// <summary>Rotary embedding (rotate-half layout) with HF's float32 inverse frequencies.</summary>
internal sealed class Rotary
{
    public long Dim { get; }
    private readonly double _theta;
    private readonly Dictionary<string, Tensor> _invFreq = new();

    public Rotary(long dim, double theta) { Dim = dim; _theta = theta; }

    public Tensor InvFreq(Device device)
    {
        var key = device.ToString();
        lock (_invFreq)
        {
            if (!_invFreq.TryGetValue(key, out var t))
            {
                using var scope = NewDisposeScope(); // every intermediate freed; only the cached table survives
                using var dim = Dim.ToScalar();
                var idx = arange(Scalars.Zero, dim, Scalars.Two, dtype: ScalarType.Int64).to(ScalarType.Float32).div(dim);
                t = tensor((float)_theta).pow(idx).reciprocal().to(device).DetachFromDisposeScope();
                _invFreq[key] = t;
            }
            return t;
        }
    }

    /// <summary>cos/sin [B, T, D] (float32 math, cast to <paramref name="dtype"/>) for integer positions [B, T].</summary>
    public (Tensor cos, Tensor sin) CosSin(Tensor positions, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var freqs = positions.to(ScalarType.Float32).unsqueeze(-1) * InvFreq(positions.device); // [B,T,D/2]
        var emb = cat([freqs, freqs], -1);
        return (emb.cos().to(dtype).MoveToOuterDisposeScope(), emb.sin().to(dtype).MoveToOuterDisposeScope());
    }

    public static Tensor RotateHalf(Tensor x)
    {
        long half = x.shape[^1] / 2;
        using var x1 = x.narrow(-1, 0, half);
        using var x2 = x.narrow(-1, half, half);
        using var n2 = x2.neg();
        return cat([n2, x1], -1);
    }

    /// <summary>x [B,H,T,D] with cos/sin [B,T,D].</summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        using var scope = NewDisposeScope();
        var c = cos.unsqueeze(1); var s = sin.unsqueeze(1);
        return (x * c).Plus(RotateHalf(x) * s).MoveToOuterDisposeScope();
    }
}

/// <summary>Llama / Qwen2 self-attention (q/k/v biases optional), named like HF (self_attn.q_proj …).</summary>
internal sealed partial class LlamaAttention : Block
{
#pragma warning disable IDE1006
    public readonly Linear q_proj, k_proj, v_proj, o_proj;
#pragma warning restore IDE1006
    private readonly long _heads, _kvHeads, _headDim;
    private readonly FusedLinear _qkv;

    public LlamaAttention(ParamFactory f, TextConfig c) : base(nameof(LlamaAttention))
    {
        _heads = c.NumHeads; _kvHeads = c.NumKvHeads; _headDim = c.HeadDim;
        // q, k and v are row views of one fused weight: the eager path reads them apart, the static step in one GEMM
        _qkv = new FusedLinear(f, c.HiddenSize, [_heads * _headDim, _kvHeads * _headDim, _kvHeads * _headDim], c.AttentionBias);
        (q_proj, k_proj, v_proj) = (_qkv.Parts[0], _qkv.Parts[1], _qkv.Parts[2]);
        // Llama puts attention_bias on all four projections; Qwen2 has q/k/v biases and a bias-free o_proj.
        o_proj = new Linear(f, _heads * _headDim, c.HiddenSize, c.OutputBias);
        RegisterComponents();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) _qkv.Dispose();
        base.Dispose(disposing);
    }

    public Tensor Forward(Tensor x, Tensor cos, Tensor sin, LayerCache cache, long start, Tensor mask)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], t = x.shape[1];
        var q = q_proj.Forward(x).view(b, t, _heads, _headDim).transpose(1, 2);
        var k = k_proj.Forward(x).view(b, t, _kvHeads, _headDim).transpose(1, 2);
        var v = v_proj.Forward(x).view(b, t, _kvHeads, _headDim).transpose(1, 2);
        q = Rotary.Apply(q, cos, sin);
        k = Rotary.Apply(k, cos, sin);
        var (kAll, vAll) = cache.Append(k, v, start);
        var o = Attention.Sdpa(q, kAll, vAll, mask);
        o = o.transpose(1, 2).reshape(b, t, _heads * _headDim);
        return o_proj.Forward(o).MoveToOuterDisposeScope();
    }
}

/// <summary>SwiGLU MLP: down(act(gate(x)) * up(x)).</summary>
internal sealed partial class GatedMlp : Block
{
#pragma warning disable IDE1006
    public readonly Linear gate_proj, up_proj, down_proj;
#pragma warning restore IDE1006
    private readonly Func<Tensor, Tensor> _act;
    private readonly string _actName;
    private readonly long _intermediate;
    private readonly FusedLinear _gateUp;

    public GatedMlp(ParamFactory f, long hidden, long intermediate, string act, bool bias) : base(nameof(GatedMlp))
    {
        // gate and up are row views of one fused weight (one GEMM in the static step)
        _gateUp = new FusedLinear(f, hidden, [intermediate, intermediate], bias);
        (gate_proj, up_proj) = (_gateUp.Parts[0], _gateUp.Parts[1]);
        down_proj = new Linear(f, intermediate, hidden, bias);
        _act = Activations.Get(act);
        _actName = act;
        _intermediate = intermediate;
        RegisterComponents();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) _gateUp.Dispose();
        base.Dispose(disposing);
    }

    public Tensor Forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return down_proj.Forward(_act(gate_proj.Forward(x)) * up_proj.Forward(x)).MoveToOuterDisposeScope();
    }
}

/// <summary>Pre-norm decoder layer: x + attn(norm(x)), then + mlp(norm(·)).</summary>
internal sealed partial class LlamaDecoderLayer : Block
{
#pragma warning disable IDE1006
    public readonly LlamaAttention self_attn;
    public readonly GatedMlp mlp;
    public readonly RmsNorm input_layernorm, post_attention_layernorm;
#pragma warning restore IDE1006

    public LlamaDecoderLayer(ParamFactory f, TextConfig c) : base(nameof(LlamaDecoderLayer))
    {
        self_attn = new LlamaAttention(f, c);
        mlp = new GatedMlp(f, c.HiddenSize, c.IntermediateSize, c.HiddenAct, c.MlpBias);
        input_layernorm = new RmsNorm(f, c.HiddenSize, c.RmsNormEps);
        post_attention_layernorm = new RmsNorm(f, c.HiddenSize, c.RmsNormEps);
        RegisterComponents();
    }

    public Tensor Forward(Tensor x, Tensor cos, Tensor sin, LayerCache cache, long start, Tensor mask)
    {
        using var scope = NewDisposeScope();
        var h = x.Plus(self_attn.Forward(input_layernorm.Forward(x), cos, sin, cache, start, mask));
        return h.Plus(mlp.Forward(post_attention_layernorm.Forward(h))).MoveToOuterDisposeScope();
    }
}

/// <summary>The Llama text model (embed_tokens, layers, norm), shared by LLaVA, InstructBLIP, Idefics3 and Qwen2 (with biases).</summary>
internal sealed partial class LlamaModel : Block
{
#pragma warning disable IDE1006
    public readonly EmbeddingHolder embed_tokens;
    public readonly ModuleList<LlamaDecoderLayer> layers;
    public readonly RmsNorm norm;
#pragma warning restore IDE1006
    public TextConfig Config { get; }

    public LlamaModel(ParamFactory f, TextConfig c) : base(nameof(LlamaModel))
    {
        Config = c;
        embed_tokens = new EmbeddingHolder(f, c.VocabSize, c.HiddenSize);
        layers = new ModuleList<LlamaDecoderLayer>(Enumerable.Range(0, c.NumLayers).Select(_ => new LlamaDecoderLayer(f, c)).ToArray());
        norm = new RmsNorm(f, c.HiddenSize, c.RmsNormEps);
        RegisterComponents();
    }

    public Tensor Embed(Tensor ids) => embed_tokens.Forward(ids);

    /// <summary>Runs all layers over [B,T,H] embeddings; returns the normed hidden states.</summary>
    public Tensor Forward(Tensor x, Tensor cos, Tensor sin, IReadOnlyList<LayerCache> caches, long start, Tensor mask)
    {
        using var scope = NewDisposeScope();
        var h = x;
        long rep = Config.NumHeads / Config.NumKvHeads;
        if (rep > 1) mask = Attention.FoldMask(mask, rep); // once for all layers
        for (int i = 0; i < layers.Count; i++) h = layers[i].Forward(h, cos, sin, caches[i], start, mask);
        return norm.Forward(h).MoveToOuterDisposeScope();
    }
}

/// <summary>A token embedding table named like torch.nn.Embedding (weight [vocab, dim]).</summary>
internal sealed class EmbeddingHolder : Block
{
#pragma warning disable IDE1006
    public readonly Parameter weight;
#pragma warning restore IDE1006

    public EmbeddingHolder(ParamFactory f, long vocab, long dim) : base("Embedding")
    {
        weight = f.Make(vocab, dim);
        RegisterComponents();
    }

    public Tensor Forward(Tensor ids)
    {
        using var flat = ids.reshape(-1);
        using var rows = weight.index_select(0, flat);
        return rows.view([.. ids.shape, weight.shape[1]]);
    }
}
