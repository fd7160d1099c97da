using SafeCoDe.Torch.Runtime;
#pragma warning disable CS1591 // public fields mirror the checkpoint's tensor names; the class summaries document them
using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Models.Common;
using TorchSharp;
using TorchSharp.Modules;
using Linear = SafeCoDe.Torch.Models.Common.Linear;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Models.Idefics;

/// <summary>
/// embed_tokens: the base table <c>weight</c> [vocab, hidden] plus <c>additional_embedding</c> [additional, hidden]
/// for ids ≥ vocab (IDEFICS' image and end-of-utterance tokens).
/// </summary>
internal sealed class DecoupledEmbedding : Block
{
#pragma warning disable IDE1006
    public readonly Parameter weight;
    public readonly EmbeddingHolder? additional_embedding;
#pragma warning restore IDE1006
    private readonly Scalar _vocab, _lastAdditional; // held for the module's lifetime (see Runtime/Scalars.cs)

    public DecoupledEmbedding(ParamFactory f, long vocab, long additional, long dim) : base("IdeficsDecoupledEmbedding")
    {
        _vocab = vocab.ToScalar(); _lastAdditional = (additional - 1).ToScalar();
        weight = f.Make(vocab, dim);
        if (additional > 0) additional_embedding = new EmbeddingHolder(f, additional, dim);
        RegisterComponents();
    }

    /// <summary>ids [..] → [.., dim]. Both tables are looked up with clamped ids and merged on device (no host sync).</summary>
    public Tensor Forward(Tensor ids)
    {
        using var scope = NewDisposeScope();
        var isExtra = ids.ge(_vocab);
        var baseRows = Lookup(weight, ids.masked_fill(isExtra, Scalars.Zero));
        if (additional_embedding is null) return baseRows.MoveToOuterDisposeScope();
        var extraRows = Lookup(additional_embedding.weight, (ids - _vocab).clamp(Scalars.Zero, _lastAdditional));
        return where(isExtra.unsqueeze(-1), extraRows, baseRows).MoveToOuterDisposeScope();
    }

    private static Tensor Lookup(Tensor table, Tensor ids) =>
        table.index_select(0, ids.reshape(-1)).view([.. ids.shape, table.shape[1]]);
}

/// <summary>lm_head: <c>weight</c> [vocab, hidden] and, with an extra vocabulary, <c>additional_fc</c>; logits are concatenated.</summary>
internal sealed class DecoupledLinear : Block
{
#pragma warning disable IDE1006
    public readonly Parameter weight;
    public readonly Linear? additional_fc;
#pragma warning restore IDE1006

    public DecoupledLinear(ParamFactory f, long hidden, long vocab, long additional) : base("IdeficsDecoupledLinear")
    {
        weight = f.Make(vocab, hidden);
        if (additional > 0) additional_fc = new Linear(f, hidden, additional, false);
        RegisterComponents();
    }

    public Tensor Forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var logits = nn.functional.linear(x, weight);
        if (additional_fc is not null) logits = cat([logits, additional_fc.Forward(x)], -1);
        return logits.MoveToOuterDisposeScope();
    }
}

/// <summary>
/// cross_attn of a gated layer: queries from the text, keys/values from the image latents (vision width), no biases,
/// no rotary; optional RMS norms on q and k per head (<c>qk_layer_norms</c>).
/// </summary>
internal sealed partial class IdeficsCrossAttention : Block
{
#pragma warning disable IDE1006
    public readonly Linear q_proj, k_proj, v_proj, o_proj;
    public readonly RmsNorm? q_layer_norm, k_layer_norm;
#pragma warning restore IDE1006
    private readonly long _heads, _headDim;

    public IdeficsCrossAttention(ParamFactory f, TextConfig c, long visionDim, bool qkNorms) : base(nameof(IdeficsCrossAttention))
    {
        _heads = c.NumHeads; _headDim = c.HiddenSize / c.NumHeads;
        q_proj = new Linear(f, c.HiddenSize, _heads * _headDim, false);
        k_proj = new Linear(f, visionDim, _heads * _headDim, false);
        v_proj = new Linear(f, visionDim, _heads * _headDim, false);
        o_proj = new Linear(f, _heads * _headDim, c.HiddenSize, false);
        if (qkNorms)
        {
            q_layer_norm = new RmsNorm(f, _headDim, c.RmsNormEps);
            k_layer_norm = new RmsNorm(f, _headDim, c.RmsNormEps);
        }
        RegisterComponents();
    }

    /// <summary>Keys and values of the image latents [B, L, visionDim] → [B, heads, L, head_dim] each (k normed if configured).</summary>
    public (Tensor k, Tensor v) KeyValues(Tensor image)
    {
        using var scope = NewDisposeScope();
        long b = image.shape[0], l = image.shape[1];
        var k = k_proj.Forward(image).view(b, l, _heads, _headDim).transpose(1, 2);
        var v = v_proj.Forward(image).view(b, l, _heads, _headDim).transpose(1, 2);
        if (k_layer_norm is not null) k = k_layer_norm.Forward(k);
        return (k.contiguous().MoveToOuterDisposeScope(), v.contiguous().MoveToOuterDisposeScope());
    }

    /// <summary>x [B, T, hidden] over precomputed k/v with a bool mask [B, 1, T, L] (true = attend).</summary>
    public Tensor Forward(Tensor x, Tensor k, Tensor v, Tensor mask)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], t = x.shape[1];
        var q = q_proj.Forward(x).view(b, t, _heads, _headDim).transpose(1, 2);
        if (q_layer_norm is not null) q = q_layer_norm.Forward(q);
        var o = Attention.Sdpa(q, k, v, mask);
        return o_proj.Forward(o.transpose(1, 2).reshape(b, t, _heads * _headDim)).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// A gated cross-attention layer, run before every <c>cross_layer_interval</c>-th decoder layer:
/// x + tanh(alpha_cross_attn)·gate·cross_attn(norm(x)), then + tanh(alpha_dense)·mlp(norm(·)). The gate zeroes the
/// cross-attention output of tokens that see no image; the dense part applies to every token.
/// </summary>
internal sealed partial class GatedCrossAttentionLayer : Block
{
#pragma warning disable IDE1006
    public readonly Parameter alpha_cross_attn, alpha_dense;
    public readonly IdeficsCrossAttention cross_attn;
    public readonly GatedMlp mlp;
    public readonly RmsNorm input_layernorm, post_attention_layernorm;
#pragma warning restore IDE1006

    public GatedCrossAttentionLayer(ParamFactory f, IdeficsConfig c) : base(nameof(GatedCrossAttentionLayer))
    {
        var t = c.Text;
        long[] alphaShape = c.AlphaType == "vector" ? [1, 1, t.HiddenSize] : [1];
        alpha_cross_attn = f.Make(alphaShape);
        alpha_dense = f.Make(alphaShape);
        cross_attn = new IdeficsCrossAttention(f, t, c.Vision.HiddenSize, c.QkLayerNorms);
        mlp = new GatedMlp(f, t.HiddenSize, t.IntermediateSize, t.HiddenAct, false);
        input_layernorm = new RmsNorm(f, t.HiddenSize, t.RmsNormEps);
        post_attention_layernorm = new RmsNorm(f, t.HiddenSize, t.RmsNormEps);
        RegisterComponents();
    }

    /// <param name="kv">This layer's image keys/values, or null when the batch has no image (cross-attention contributes nothing).</param>
    /// <param name="mask">[B, 1, T, L] bool; rows of gated-off tokens may be anything that yields finite values.</param>
    /// <param name="seesImage">[B, T, 1] bool: whether the token attends to at least one image.</param>
    public Tensor Forward(Tensor x, (Tensor k, Tensor v)? kv, Tensor? mask, Tensor? seesImage)
    {
        using var scope = NewDisposeScope();
        var h = x;
        if (kv is { } p)
        {
            var a = cross_attn.Forward(input_layernorm.Forward(x), p.k, p.v, mask!);
            a = a.masked_fill(seesImage!.logical_not(), Scalars.ZeroDouble);
            h = x.Plus(alpha_cross_attn.tanh() * a);
        }
        return h.Plus(alpha_dense.tanh() * mlp.Forward(post_attention_layernorm.Forward(h))).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// model: decoupled embed_tokens, the vision tower (CLIP-like; its last hidden state without post_layernorm), the
/// optional perceiver_resampler, Llama decoder layers, gated_cross_attn_layers and the final norm.
/// </summary>
internal sealed partial class IdeficsModel : Block
{
#pragma warning disable IDE1006
    public readonly DecoupledEmbedding embed_tokens;
    public readonly ClipVisionTower vision_model;
    public readonly PerceiverResampler? perceiver_resampler;
    public readonly ModuleList<LlamaDecoderLayer> layers;
    public readonly ModuleList<GatedCrossAttentionLayer> gated_cross_attn_layers;
    public readonly RmsNorm norm;
#pragma warning restore IDE1006

    public IdeficsModel(ParamFactory f, IdeficsConfig c) : base(nameof(IdeficsModel))
    {
        var t = c.Text;
        embed_tokens = new DecoupledEmbedding(f, t.VocabSize, c.AdditionalVocabSize, t.HiddenSize);
        vision_model = new ClipVisionTower(f, c.Vision);
        if (c.Perceiver.UseResampler) perceiver_resampler = new PerceiverResampler(f, c.Vision.HiddenSize, c.Perceiver);
        layers = new ModuleList<LlamaDecoderLayer>(Enumerable.Range(0, t.NumLayers).Select(_ => new LlamaDecoderLayer(f, t)).ToArray());
        gated_cross_attn_layers = new ModuleList<GatedCrossAttentionLayer>(
            Enumerable.Range(0, t.NumLayers / c.CrossLayerInterval).Select(_ => new GatedCrossAttentionLayer(f, c)).ToArray());
        norm = new RmsNorm(f, t.HiddenSize, t.RmsNormEps);
        RegisterComponents();
    }
}

/// <summary>
/// IDEFICS v1 (<c>IdeficsForVisionText2Text</c>): images never enter the token sequence. Each image goes through
/// the vision tower and the perceiver resampler; the text attends to the latents through gated cross-attention
/// layers interleaved with the Llama layers, restricted by <c>image_attention_mask</c> [B, T, n_images] (a token
/// sees only the images before it). The latents' cross-attention keys/values are computed once per request at
/// prefill and kept in the decode state; every generated token uses the prompt's last mask row (HF's generate).
/// Decode steps take the static path (<c>IdeficsStatic.cs</c>); <see cref="DecoderLayers"/> is the eager reference.
/// </summary>
internal sealed partial class IdeficsBackbone : DecoderBackbone
{
#pragma warning disable IDE1006
    public readonly IdeficsModel model;
    public readonly DecoupledLinear lm_head;
#pragma warning restore IDE1006
    private readonly IdeficsConfig _cfg;

    /// <summary>Creates the modules with uninitialised parameters; <see cref="Backbones.Load(string, Device, ScalarType, IProgress{ValueTuple{int, int}}?)"/> fills them.</summary>
    public IdeficsBackbone(IdeficsConfig cfg, ParamFactory f) : base(nameof(IdeficsBackbone), cfg, f)
    {
        if (cfg.Text.NumLayers % cfg.CrossLayerInterval != 0)
            throw new NotSupportedException(
                $"num_hidden_layers {cfg.Text.NumLayers} is not a multiple of cross_layer_interval {cfg.CrossLayerInterval} (transformers cannot run it either)");
        _cfg = cfg;
        model = new IdeficsModel(f, cfg);
        lm_head = new DecoupledLinear(f, cfg.Text.HiddenSize, cfg.Text.VocabSize, cfg.AdditionalVocabSize);
        RegisterComponents();
    }

    /// <summary>With tied word embeddings, lm_head (and its extra-vocabulary part) → the embedding tables; else empty.</summary>
    public static IReadOnlyDictionary<string, string> Tied(IdeficsConfig c)
    {
        var tied = new Dictionary<string, string>();
        if (!c.Text.TieWordEmbeddings) return tied;
        tied["lm_head.weight"] = "model.embed_tokens.weight";
        if (c.AdditionalVocabSize > 0) tied["lm_head.additional_fc.weight"] = "model.embed_tokens.additional_embedding.weight";
        return tied;
    }

    /// <summary>Text vocabulary plus the additional (decoupled) vocabulary.</summary>
    public override long VocabSize => _cfg.Text.VocabSize + _cfg.AdditionalVocabSize;

    /// <inheritdoc/>
    protected override Tensor EmbedTokens(Tensor ids) => model.embed_tokens.Forward(ids);
    /// <inheritdoc/>
    protected override Tensor LmHead(Tensor hidden) => lm_head.Forward(hidden);

    /// <summary>Image latents of every row: pixel_values [B, n, C, H, W] → [B, n·latents, vision_dim].</summary>
    private Tensor ImageLatents(Tensor pixels)
    {
        using var scope = NewDisposeScope();
        long b = pixels.shape[0], n = pixels.shape[1];
        var v = _cfg.Vision;
        if (pixels.shape[2] != v.NumChannels || pixels.shape[3] != v.ImageSize || pixels.shape[4] != v.ImageSize)
            throw new ArgumentException(
                $"IDEFICS pixel_values must be [batch, images, {v.NumChannels}, {v.ImageSize}, {v.ImageSize}], got [{string.Join(",", pixels.shape)}] (position-embedding interpolation is not supported)");
        var flat = pixels.reshape(b * n, pixels.shape[2], pixels.shape[3], pixels.shape[4]);
        var h = model.vision_model.HiddenStates(flat, [-1])[0];
        if (model.perceiver_resampler is not null) h = model.perceiver_resampler.Forward(h);
        return h.reshape(b, n * h.shape[1], h.shape[2]).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    protected override Tensor PromptEmbeddings(BackboneInputs inputs, CausalDecodeState state)
    {
        using var scope = NewDisposeScope();
        var ids = inputs.InputIds;
        long b = inputs.BatchSize, t = inputs.SeqLen;
        // the decoupled lookup clamps ids; reject out-of-range ones here (one host sync per prefill)
        using var vocabSize = VocabSize.ToScalar();
        if (ids.lt(Scalars.Zero).logical_or(ids.ge(vocabSize)).any().item<bool>())
            throw new ArgumentException($"input_ids must lie in [0, {VocabSize}) (vocab_size plus additional_vocab_size)");
        var embeds = EmbedTokens(ids);
        var pixels = inputs.Image("pixel_values");
        var iam = inputs.Image("image_attention_mask");
        if (pixels is null)
        {
            if (iam is not null && iam.numel() > 0 && iam.ne(Scalars.Zero).any().item<bool>())
                throw new ArgumentException("image_attention_mask lets tokens see images but no pixel_values were given");
            return embeds.MoveToOuterDisposeScope(); // text only: cross-attention contributes nothing
        }
        pixels = pixels.to(Device);
        if (pixels.dim() == 4) pixels = pixels.unsqueeze(1); // one image per row
        if (pixels.dim() != 5 || pixels.shape[0] != b)
            throw new ArgumentException($"IDEFICS pixel_values must be [batch={b}, images, C, H, W], got [{string.Join(",", pixels.shape)}]");
        long nImages = pixels.shape[1];
        if (iam is null)
            throw new ArgumentException("IDEFICS needs image_attention_mask [batch, seq, images] with pixel_values (which tokens see which image)");
        if (iam.dim() != 3 || iam.shape[0] != b || iam.shape[1] != t || iam.shape[2] != nImages)
            throw new ArgumentException($"image_attention_mask must be [{b}, {t}, {nImages}] for these inputs, got [{string.Join(",", iam.shape)}]");

        var latents = ImageLatents(pixels); // [B, n·latents, vision_dim]
        long perImage = latents.shape[1] / nImages;
        var kv = model.gated_cross_attn_layers.Select(l => l.cross_attn.KeyValues(latents)).ToArray();
        // each image's flag covers all of its latents: [B, T, n] → [B, T, n·latents]
        var sees = iam.to(Device).ne(Scalars.Zero);
        var mask = sees.unsqueeze(-1).expand(b, t, nImages, perImage).reshape(b, t, nImages * perImage);
        state.FamilyState?.Dispose();
        state.FamilyState = new IdeficsCrossState(kv.Select(x => x.Item1).ToArray(), kv.Select(x => x.Item2).ToArray(), mask.select(1, t - 1), mask);
        return embeds.MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    protected override Tensor DecoderLayers(Tensor embeds, Tensor cos, Tensor sin, CausalDecodeState state, long start, Tensor mask)
    {
        var cross = state.FamilyState as IdeficsCrossState;
        // the prompt pass (cache position 0) uses the prompt-wide mask and releases it; decode steps use the last row
        using var promptMask = start == 0 ? cross?.TakePromptImageMask() : null;
        using var scope = NewDisposeScope();
        long b = embeds.shape[0], t = embeds.shape[1];
        Tensor? imageMask = null, seesImage = null;
        if (cross is not null)
        {
            var m = promptMask ?? cross.StepImageMask.unsqueeze(1).expand(b, t, -1);
            if (m.shape[1] != t) throw new InvalidOperationException($"image mask covers {m.shape[1]} positions, the decoder got {t}");
            seesImage = m.any(-1, keepdim: true); // [B, T, 1]
            // a token that sees no image attends to all latents (finite softmax); the gate zeroes its output, as in HF
            imageMask = m.logical_or(seesImage.logical_not()).unsqueeze(1); // [B, 1, T, L]
        }
        var h = embeds;
        int interval = _cfg.CrossLayerInterval;
        for (int i = 0; i < model.layers.Count; i++)
        {
            if (i % interval == 0)
            {
                int g = i / interval;
                (Tensor, Tensor)? kv = cross is null ? null : (cross.Keys[g], cross.Values[g]);
                h = model.gated_cross_attn_layers[g].Forward(h, kv, imageMask, seesImage);
            }
            h = model.layers[i].Forward(h, cos, sin, state.Caches[i], start, mask);
        }
        return model.norm.Forward(h).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// IDEFICS's per-request decode data: the cross-attention keys and values of every gated layer (computed once from
/// the image latents at prefill) and which latents the tokens may attend to.
/// </summary>
internal sealed class IdeficsCrossState : IFamilyDecodeState
{
    /// <summary>Gated layer g's cross-attention keys [B, heads, L, head_dim].</summary>
    public Tensor[] Keys { get; private set; }
    /// <summary>Gated layer g's cross-attention values [B, heads, L, head_dim].</summary>
    public Tensor[] Values { get; private set; }
    /// <summary>[B, L] bool: which latents a generated token may attend to (the prompt's last mask row).</summary>
    public Tensor StepImageMask { get; private set; }
    /// <summary>[B, T, L] bool prompt mask, for the prefill's decoder pass only (null once that pass took it).</summary>
    public Tensor? PromptImageMask { get; private set; }

    /// <summary>Keeps copies of the given tensors (owned by the state).</summary>
    public IdeficsCrossState(Tensor[] keys, Tensor[] values, Tensor stepImageMask, Tensor promptImageMask)
    {
        Keys = keys.Select(Own).ToArray();
        Values = values.Select(Own).ToArray();
        StepImageMask = Own(stepImageMask);
        PromptImageMask = Own(promptImageMask);
    }

    private static Tensor Own(Tensor t) => t.clone().DetachFromDisposeScope();

    /// <summary>Hands the prompt mask to the prefill's decoder pass (which disposes it); the state no longer holds it.</summary>
    public Tensor? TakePromptImageMask()
    {
        var m = PromptImageMask;
        PromptImageMask = null;
        return m;
    }

    /// <inheritdoc/>
    public void KeepRows(Tensor rows)
    {
        static Tensor Select(Tensor old, Tensor rows) { var fresh = old.index_select(0, rows).DetachFromDisposeScope(); old.Dispose(); return fresh; }
        Keys = Keys.Select(k => Select(k, rows)).ToArray();
        Values = Values.Select(v => Select(v, rows)).ToArray();
        StepImageMask = Select(StepImageMask, rows);
        if (PromptImageMask is { } p) PromptImageMask = Select(p, rows);
    }

    /// <inheritdoc/>
    public void DetachFromDisposeScope()
    {
        foreach (var t in Keys.Concat(Values)) t.DetachFromDisposeScope();
        StepImageMask.DetachFromDisposeScope();
        PromptImageMask?.DetachFromDisposeScope();
    }

    /// <summary>Frees every tensor.</summary>
    public void Dispose()
    {
        foreach (var t in Keys.Concat(Values)) t.Dispose();
        StepImageMask.Dispose();
        PromptImageMask?.Dispose();
    }
}
