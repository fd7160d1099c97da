using SafeCoDe.Torch.Runtime;
#pragma warning disable CS1591 // public fields mirror the checkpoint's tensor names; the class summaries document them
using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Models.Common;
using TorchSharp;
using TorchSharp.Modules;
using Linear = SafeCoDe.Torch.Models.Common.Linear;
using LayerNorm = SafeCoDe.Torch.Models.Common.LayerNorm;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Models.Idefics3;

/// <summary>
/// SigLIP-style embeddings of Idefics2/3: conv patches (with bias) plus a learned position table indexed by
/// bucketised fractional patch coordinates, so a tile whose valid region is smaller than the full grid (padding at
/// the bottom/right) still spans the whole table. No class token.
/// </summary>
internal sealed class Idefics3VisionEmbeddings : Block
{
#pragma warning disable IDE1006
    public readonly PatchConv patch_embedding;
    public readonly EmbeddingHolder position_embedding;
#pragma warning restore IDE1006
    private readonly VitConfig _c;

    public Idefics3VisionEmbeddings(ParamFactory f, VitConfig c) : base(nameof(Idefics3VisionEmbeddings))
    {
        _c = c;
        patch_embedding = new PatchConv(f, c.NumChannels, c.HiddenSize, c.PatchSize, true);
        position_embedding = new EmbeddingHolder(f, c.NumPatches, c.HiddenSize);
        RegisterComponents();
    }

    /// <summary>
    /// Position ids [N, ph*pw] for patch masks [N, ph, pw] (host copy), by transformers 5's rule: an image's valid
    /// extent is nb_h = mask[:, 0].sum() rows and nb_w = mask[0].sum() columns; the patch at (r, c) gets
    /// bucket(r · (1/nb_h)) · num_patches_per_side + bucket(c · (1/nb_w)), where the coordinate is computed in
    /// float32, clamped below 1 − 1e-6, rounded to the pixel dtype <paramref name="dtype"/> and bucketised
    /// (right=True) against the side's boundaries k/num_patches_per_side. Patches outside the mask get position 0.
    /// The same libtorch ops as HF are used on purpose: a coordinate that lands on a boundary falls on one side or
    /// the other by float32/bfloat16 rounding, and HF's outputs depend on it.
    /// </summary>
    public static long[,] PositionIds(bool[,,] mask, int patchesPerSide, ScalarType dtype)
    {
        int n = mask.GetLength(0), ph = mask.GetLength(1), pw = mask.GetLength(2);
        var result = new long[n, ph * pw];
        using var scope = NewDisposeScope();
        using var first = (1.0 / patchesPerSide).ToScalar();
        using var stepS = (1.0 / patchesPerSide).ToScalar();
        var boundaries = arange(first, Scalars.OneDouble, stepS, ScalarType.Float32);
        var cache = new Dictionary<(int nb, int len), long[]>();
        long[] Get(int nb, int len)
        {
            if (!cache.TryGetValue((nb, len), out var b)) cache[(nb, len)] = b = Buckets(nb, len, dtype, boundaries);
            return b;
        }
        for (int i = 0; i < n; i++)
        {
            int nbH = 0, nbW = 0;
            for (int r = 0; r < ph; r++) if (mask[i, r, 0]) nbH++;
            for (int c = 0; c < pw; c++) if (mask[i, 0, c]) nbW++;
            var bh = Get(nbH, ph);
            var bw = Get(nbW, pw);
            for (int r = 0; r < ph; r++)
                for (int c = 0; c < pw; c++)
                    if (mask[i, r, c]) result[i, r * pw + c] = bh[r] * patchesPerSide + bw[c];
        }
        return result;
    }

    /// <summary>Buckets of the coordinates 0, 1/nb, 2/nb, … for <paramref name="len"/> grid rows (or columns).</summary>
    private static long[] Buckets(int nb, int len, ScalarType dtype, Tensor boundaries)
    {
        using var scope = NewDisposeScope();
        var step = tensor((long)nb).reciprocal(); // Python's 1.0 / int64 tensor: float32 (inf for an empty extent, as in HF)
        using var below1 = (1.0 - 1e-6).ToScalar();
        var frac = (Scalars.Arange(0, len, ScalarType.Float32) * step).clamp_max(below1).to(dtype);
        return bucketize(frac.to(ScalarType.Float32), boundaries, right: true).to(ScalarType.Int64).data<long>().ToArray();
    }

    /// <summary>pixels [N, C, H, W] in the model dtype, position ids [N, patches] → [N, patches, hidden].</summary>
    public Tensor Forward(Tensor pixels, Tensor positionIds)
    {
        using var scope = NewDisposeScope();
        var patches = patch_embedding.Forward(pixels).flatten(2).transpose(1, 2);
        return patches.Plus(position_embedding.Forward(positionIds)).MoveToOuterDisposeScope();
    }
}

/// <summary>The Idefics3 vision transformer (<c>model.vision_model</c>): embeddings, encoder, post_layernorm.</summary>
internal sealed class Idefics3VisionTransformer : Block
{
#pragma warning disable IDE1006
    public readonly Idefics3VisionEmbeddings embeddings;
    public readonly VitEncoder encoder;
    public readonly LayerNorm post_layernorm;
#pragma warning restore IDE1006

    public Idefics3VisionTransformer(ParamFactory f, VitConfig c) : base(nameof(Idefics3VisionTransformer))
    {
        embeddings = new Idefics3VisionEmbeddings(f, c);
        encoder = new VitEncoder(f, c);
        post_layernorm = new LayerNorm(f, c.HiddenSize, c.LayerNormEps);
        RegisterComponents();
    }

    /// <param name="pixels">[N, C, H, W] in the model dtype.</param>
    /// <param name="positionIds">[N, patches] int64.</param>
    /// <param name="keyMask">bool [N, 1, 1, patches] (padding patches are not attended to), or null when every patch is valid.</param>
    public Tensor Forward(Tensor pixels, Tensor positionIds, Tensor? keyMask)
    {
        using var scope = NewDisposeScope();
        var h = embeddings.Forward(pixels, positionIds);
        foreach (var layer in encoder.layers) h = layer.Forward(h, keyMask);
        return post_layernorm.Forward(h).MoveToOuterDisposeScope();
    }
}

/// <summary><c>modality_projection.proj</c>: a bias-free linear from the shuffled vision width to the text width.</summary>
internal sealed class Idefics3SimpleMlp : Block
{
#pragma warning disable IDE1006
    public readonly Linear proj;
#pragma warning restore IDE1006

    public Idefics3SimpleMlp(ParamFactory f, long inFeatures, long outFeatures) : base(nameof(Idefics3SimpleMlp))
    {
        proj = new Linear(f, inFeatures, outFeatures, false);
        RegisterComponents();
    }
}

/// <summary>
/// <c>model.connector</c>: pixel shuffle (space-to-depth) by <c>scale_factor</c> — [N, side², D] →
/// [N, (side/s)², D·s²] — then the bias-free projection.
/// </summary>
internal sealed class Idefics3Connector : Block
{
#pragma warning disable IDE1006
    public readonly Idefics3SimpleMlp modality_projection;
#pragma warning restore IDE1006
    private readonly int _scale;

    public Idefics3Connector(ParamFactory f, Idefics3Config c) : base(nameof(Idefics3Connector))
    {
        _scale = c.ScaleFactor;
        modality_projection = new Idefics3SimpleMlp(f, (long)c.Vision.HiddenSize * c.ScaleFactor * c.ScaleFactor, c.Text.HiddenSize);
        RegisterComponents();
    }

    public static Tensor PixelShuffle(Tensor x, int s)
    {
        long n = x.shape[0], seq = x.shape[1], d = x.shape[2];
        long side = (long)Math.Round(Math.Sqrt(seq));
        if (side * side != seq || side % s != 0)
            throw new ArgumentException($"pixel shuffle needs a square patch grid divisible by scale_factor {s}; got {seq} patches");
        using var scope = NewDisposeScope();
        // rows r, cols c → [N, side, side/s, D·s] (s neighbouring columns side by side), swap axes, fold s rows likewise
        var y = x.reshape(n, side, side / s, d * s).permute(0, 2, 1, 3)
                 .reshape(n, side / s, side / s, d * s * s).permute(0, 2, 1, 3)
                 .reshape(n, seq / (s * s), d * s * s);
        return y.MoveToOuterDisposeScope();
    }

    public Tensor Forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return modality_projection.proj.Forward(PixelShuffle(x, _scale)).MoveToOuterDisposeScope();
    }
}

/// <summary><c>model</c>: vision_model, connector, text_model.</summary>
internal sealed class Idefics3Model : Block
{
#pragma warning disable IDE1006
    public readonly Idefics3VisionTransformer vision_model;
    public readonly Idefics3Connector connector;
    public readonly LlamaModel text_model;
#pragma warning restore IDE1006

    public Idefics3Model(ParamFactory f, Idefics3Config c) : base(nameof(Idefics3Model))
    {
        vision_model = new Idefics3VisionTransformer(f, c.Vision);
        connector = new Idefics3Connector(f, c);
        text_model = new LlamaModel(f, c.Text);
        RegisterComponents();
    }
}

/// <summary>
/// Idefics3 / SmolVLM (<c>idefics3</c>): every tile of every image (pixel_values [rows, tiles, 3, H, W], the
/// global image last in each row) through the SigLIP-style tower with its patch mask, pixel-shuffled and projected
/// to image_seq_len tokens per tile, written in order at the <c>image_token_id</c> positions of a Llama decoder.
/// As in HF, tiles that are entirely zero are batch padding and are dropped before the tower.
/// </summary>
internal sealed class Idefics3Backbone : DecoderBackbone
{
#pragma warning disable IDE1006
    public readonly Idefics3Model model;
    public readonly Linear lm_head;
#pragma warning restore IDE1006
    private readonly Idefics3Config _cfg;

    /// <summary>Creates the modules with uninitialised parameters; <see cref="Backbones.Load(string, Device, ScalarType, IProgress{ValueTuple{int, int}}?)"/> fills them.</summary>
    public Idefics3Backbone(Idefics3Config cfg, ParamFactory f) : base(nameof(Idefics3Backbone), cfg, f)
    {
        _cfg = cfg;
        if (cfg.Vision.PatchesPerSide % cfg.ScaleFactor != 0)
            throw new ConfigException(cfg.ConfigPath, "scale_factor",
                $"{cfg.ScaleFactor} does not divide the {cfg.Vision.PatchesPerSide} patches per side of the vision tower");
        model = new Idefics3Model(f, cfg);
        lm_head = new Linear(f, cfg.Text.HiddenSize, cfg.Text.VocabSize, false);
        RegisterComponents();
    }

    /// <summary>lm_head → embed_tokens when the text config ties word embeddings (the checkpoint may omit lm_head then); else empty.</summary>
    public static IReadOnlyDictionary<string, string> Tied(Idefics3Config c) =>
        c.Text.TieWordEmbeddings ? new Dictionary<string, string> { ["lm_head.weight"] = "model.text_model.embed_tokens.weight" } : new Dictionary<string, string>();

    /// <inheritdoc/>
    protected override LlamaModel TextModel => model.text_model;
    /// <inheritdoc/>
    protected override Tensor LmHead(Tensor hidden) => lm_head.Forward(hidden);
    internal override Tensor? LmHeadWeight => lm_head.bias is null ? lm_head.weight : null;

    /// <summary>
    /// Features of every real tile in order: [real tiles, image_seq_len, text_hidden]. <paramref name="pixels"/> is
    /// [rows, tiles, C, H, W] (or [tiles, C, H, W]); <paramref name="pixelMask"/> the matching [.., H, W] mask or null.
    /// </summary>
    public Tensor ImageFeatures(Tensor pixels, Tensor? pixelMask)
    {
        using var scope = NewDisposeScope();
        var v = _cfg.Vision;
        if (pixels.dim() == 5) pixels = pixels.flatten(0, 1);
        if (pixels.dim() != 4 || pixels.shape[1] != v.NumChannels)
            throw new ArgumentException($"Idefics3 pixel_values must be [rows, tiles, {v.NumChannels}, H, W], got [{string.Join(",", pixels.shape)}]");
        long total = pixels.shape[0], height = pixels.shape[2], width = pixels.shape[3];
        if (height != v.ImageSize || width != v.ImageSize)
            throw new ArgumentException($"Idefics3 tiles must be {v.ImageSize}x{v.ImageSize} (the connector needs the full patch grid), got {height}x{width}");
        pixels = pixels.to(Device).to(DType);
        Tensor mask;
        if (pixelMask is null) mask = ones(total, height, width, dtype: ScalarType.Bool, device: Device);
        else
        {
            mask = pixelMask.to(Device).reshape(-1, pixelMask.shape[^2], pixelMask.shape[^1]);
            if (mask.shape[0] != total || mask.shape[1] != height || mask.shape[2] != width)
                throw new ArgumentException($"pixel_attention_mask [{string.Join(",", pixelMask.shape)}] does not match pixel_values [{string.Join(",", pixels.shape)}]");
            mask = mask.ne(Scalars.Zero);
        }
        // batch padding: tiles whose every value is 0 (in the model dtype, as HF checks) carry no image
        var real = pixels.eq(Scalars.Zero).flatten(1).all(1).logical_not();
        if (!real.all().item<bool>())
        {
            var keep = real.nonzero().view(-1);
            pixels = pixels.index_select(0, keep);
            mask = mask.index_select(0, keep);
        }
        long n = pixels.shape[0];
        int p = v.PatchSize, side = v.PatchesPerSide;
        long tokensPerTile = (long)side * side / (_cfg.ScaleFactor * _cfg.ScaleFactor);
        if (n == 0) return zeros([0, tokensPerTile, _cfg.Text.HiddenSize], DType, Device).MoveToOuterDisposeScope();
        // a patch counts when any of its pixels is valid
        var patchMask = mask.view(n, side, p, side, p).any(4).any(2); // [n, side, side]
        var hostMask = ToHost(patchMask.cpu());
        var pos = Idefics3VisionEmbeddings.PositionIds(hostMask, side, DType);
        var posIds = tensor(pos, ScalarType.Int64).to(Device);
        Tensor? keyMask = patchMask.all().item<bool>() ? null : patchMask.view(n, 1, 1, (long)side * side);
        var hidden = model.vision_model.Forward(pixels, posIds, keyMask);
        return model.connector.Forward(hidden).MoveToOuterDisposeScope();
    }

    private static bool[,,] ToHost(Tensor m)
    {
        int n = (int)m.shape[0], h = (int)m.shape[1], w = (int)m.shape[2];
        var flat = m.contiguous().data<bool>().ToArray();
        var r = new bool[n, h, w];
        Buffer.BlockCopy(flat, 0, r, 0, flat.Length);
        return r;
    }

    /// <inheritdoc/>
    protected override Tensor PromptEmbeddings(BackboneInputs inputs, CausalDecodeState state)
    {
        using var scope = NewDisposeScope();
        var ids = inputs.InputIds;
        var embeds = EmbedTokens(SafeIds(ids, _cfg.ImageTokenId, _cfg.Text.VocabSize));
        var pixels = inputs.Image("pixel_values");
        if (pixels is null)
        {
            using var imageToken = _cfg.ImageTokenId.ToScalar();
            long count = ids.eq(imageToken).sum().item<long>();
            if (count > 0) throw new ArgumentException($"the prompt has {count} image tokens but no pixel_values were given");
            return embeds.MoveToOuterDisposeScope();
        }
        var features = ImageFeatures(pixels, inputs.Image("pixel_attention_mask"));
        return ScatterImageFeatures(embeds, ids, _cfg.ImageTokenId, features.flatten(0, 1), "vision tower").MoveToOuterDisposeScope();
    }
}
