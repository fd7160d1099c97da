using SafeCoDe.Torch.Runtime;
#pragma warning disable CS1591 // public fields mirror the checkpoint's tensor names; the class summaries document them
using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Models.Common;
using TorchSharp;
using TorchSharp.Modules;
using Linear = SafeCoDe.Torch.Models.Common.Linear;
using LayerNorm = SafeCoDe.Torch.Models.Common.LayerNorm;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Models.Llava;

/// <summary>multi_modal_projector: linear_1 → act → linear_2.</summary>
internal sealed class LlavaProjector : Block
{
#pragma warning disable IDE1006
    public readonly Linear linear_1, linear_2;
#pragma warning restore IDE1006
    private readonly Func<Tensor, Tensor> _act;

    public LlavaProjector(ParamFactory f, long visionHidden, long textHidden, string act, bool bias) : base(nameof(LlavaProjector))
    {
        linear_1 = new Linear(f, visionHidden, textHidden, bias);
        linear_2 = new Linear(f, textHidden, textHidden, bias);
        _act = Activations.Get(act);
        RegisterComponents();
    }

    public Tensor Forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return linear_2.Forward(_act(linear_1.Forward(x))).MoveToOuterDisposeScope();
    }
}

/// <summary>language_model: the decoder under <c>model</c> and the <c>lm_head</c>.</summary>
internal sealed class CausalLm : Block
{
#pragma warning disable IDE1006
    public readonly LlamaModel model;
    public readonly Linear lm_head;
#pragma warning restore IDE1006

    public CausalLm(ParamFactory f, TextConfig c) : base(nameof(CausalLm))
    {
        model = new LlamaModel(f, c);
        lm_head = new Linear(f, c.HiddenSize, c.VocabSize, false);
        RegisterComponents();
    }
}

/// <summary>
/// LLaVA-1.5 (<c>llava</c>) and LLaVA-NeXT (<c>llava_next</c>): CLIP tower → selected hidden layer(s) → projector →
/// features at the image-token positions of a Llama decoder. NeXT adds anyres tiles, unpadding and image_newline.
/// </summary>
internal sealed class LlavaBackbone : DecoderBackbone
{
#pragma warning disable IDE1006
    public readonly ClipVisionTower vision_tower;
    public readonly LlavaProjector multi_modal_projector;
    public readonly CausalLm language_model;
    public readonly Parameter? image_newline;
#pragma warning restore IDE1006
    private readonly LlavaConfig _cfg;

    /// <summary>LLaVA-1.5 and LLaVA-NeXT: plain Llama/Mistral decoder, HF's left-padding positions, no per-row state.</summary>
    protected override bool BatchesPrefills => true;

    /// <summary>Creates the modules with uninitialised parameters; <see cref="Backbones.Load(string, Device, ScalarType, IProgress{ValueTuple{int, int}}?)"/> fills them.</summary>
    public LlavaBackbone(LlavaConfig cfg, ParamFactory f) : base(nameof(LlavaBackbone), cfg, f)
    {
        _cfg = cfg;
        vision_tower = new ClipVisionTower(f, cfg.Vision);
        multi_modal_projector = new LlavaProjector(f, cfg.Vision.HiddenSize * cfg.VisionFeatureLayers.Length, cfg.Text.HiddenSize,
            cfg.ProjectorHiddenAct, cfg.ProjectorBias);
        language_model = new CausalLm(f, cfg.Text);
        if (cfg.ModelType == ModelFamilies.LlavaNext) image_newline = f.Make(cfg.Text.HiddenSize);
        RegisterComponents();
    }

    /// <summary>lm_head → embed_tokens when the text config ties word embeddings (the checkpoint may omit lm_head then); else empty.</summary>
    public static IReadOnlyDictionary<string, string> Tied(LlavaConfig c) =>
        c.Text.TieWordEmbeddings ? new Dictionary<string, string> { ["language_model.lm_head.weight"] = "language_model.model.embed_tokens.weight" } : new Dictionary<string, string>();

    /// <inheritdoc/>
    protected override LlamaModel TextModel => language_model.model;
    /// <inheritdoc/>
    protected override Tensor LmHead(Tensor hidden) => language_model.lm_head.Forward(hidden);
    internal override Tensor? LmHeadWeight => language_model.lm_head.bias is null ? language_model.lm_head.weight : null;

    /// <summary>Selected tower features of a stack of tiles/images, projected: [N, tokens, text_hidden].</summary>
    private Tensor TileFeatures(Tensor pixels)
    {
        using var scope = NewDisposeScope();
        var states = vision_tower.HiddenStates(pixels, _cfg.VisionFeatureLayers);
        var sel = states.Length == 1 ? states[0] : cat(states, -1);
        if (_cfg.VisionFeatureSelectStrategy == "default") sel = sel.narrow(1, 1, sel.shape[1] - 1);
        return multi_modal_projector.Forward(sel).MoveToOuterDisposeScope();
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
        long n = ids.eq(imageToken).sum().item<long>();
            if (n > 0) throw new ArgumentException($"the prompt has {n} image tokens but no pixel_values were given");
            return embeds.MoveToOuterDisposeScope();
        }
        pixels = pixels.to(Device);
        Tensor features = _cfg.ImageGridPinpoints is null ? TileFeatures(pixels).flatten(0, 1) : NextFeatures(pixels, inputs.Image("image_sizes"));
        return ScatterImageFeatures(embeds, ids, _cfg.ImageTokenId, features, "vision tower").MoveToOuterDisposeScope();
    }

    /// <summary>LLaVA-NeXT: per image, base tile features then the unpadded grid with a newline column, concatenated.</summary>
    private Tensor NextFeatures(Tensor pixels, Tensor? imageSizes)
    {
        if (imageSizes is null) throw new ArgumentException("LLaVA-NeXT needs image_sizes with pixel_values");
        if (pixels.dim() != 5) throw new ArgumentException($"LLaVA-NeXT pixel_values must be [images, tiles, 3, H, W], got [{string.Join(",", pixels.shape)}]");
        using var scope = NewDisposeScope();
        var sizes = imageSizes.to(ScalarType.Int64).cpu().data<long>().ToArray();
        int tile = _cfg.Vision.ImageSize, side = _cfg.Vision.PatchesPerSide;
        long nImages = pixels.shape[0];
        var counts = new int[nImages];
        var tiles = new List<Tensor>();
        for (int i = 0; i < nImages; i++)
        {
            int h = (int)sizes[2 * i], w = (int)sizes[2 * i + 1];
            counts[i] = AnyRes.NumPatches(h, w, _cfg.ImageGridPinpoints!, tile);
            if (counts[i] > pixels.shape[1]) throw new ArgumentException($"image {i} of size {h}x{w} needs {counts[i]} tiles but pixel_values has {pixels.shape[1]}");
            tiles.Add(pixels[i].narrow(0, 0, counts[i]));
        }
        var all = TileFeatures(cat(tiles, 0)); // [sum tiles, side*side, C]
        var parts = new List<Tensor>();
        long offset = 0;
        for (int i = 0; i < nImages; i++)
        {
            var f = all.narrow(0, offset, counts[i]);
            offset += counts[i];
            int h = (int)sizes[2 * i], w = (int)sizes[2 * i + 1];
            if (counts[i] == 1)
            {
                parts.Add(f[0]);
                if (image_newline is not null) parts.Add(image_newline.view(1, -1));
                continue;
            }
            var baseF = f[0];
            var (rows, cols) = AnyRes.GridShape(h, w, _cfg.ImageGridPinpoints!, tile);
            long c = f.shape[2];
            var grid = f.narrow(0, 1, counts[i] - 1).view(rows, cols, side, side, c)
                        .permute(4, 0, 2, 1, 3).reshape(c, rows * side, cols * side);
            var (top, hh, left, ww) = AnyRes.UnpadRegion(rows * side, cols * side, h, w);
            grid = grid.narrow(1, top, hh).narrow(2, left, ww);
            if (image_newline is not null)
                grid = cat([grid, image_newline.view(c, 1, 1).expand(c, hh, 1).to(grid.dtype)], 2);
            parts.Add(baseF);
            parts.Add(grid.flatten(1, 2).transpose(0, 1));
        }
        return cat(parts, 0).MoveToOuterDisposeScope();
    }
}
