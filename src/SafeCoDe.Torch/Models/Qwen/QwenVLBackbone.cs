#pragma warning disable CS1591 // public fields mirror the checkpoint's tensor names; the class summaries document them
using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Models.Common;
using TorchSharp;
using static TorchSharp.torch;
using Linear = SafeCoDe.Torch.Models.Common.Linear;

namespace SafeCoDe.Torch.Models.Qwen;

/// <summary>
/// Qwen2-VL (<c>qwen2_vl</c>) and Qwen2.5-VL (<c>qwen2_5_vl</c>): the vision transformer's merged features written at the
/// image placeholder tokens of a Qwen2 decoder (q/k/v biases) with multimodal rotary positions (M-RoPE). Inputs as HF's
/// processor makes them: <c>pixel_values</c> [patches, C·T·P·P] and <c>image_grid_thw</c> [images, 3] of all rows in row
/// order, optional <c>mm_token_type_ids</c> [B, T] (1 = image token). Images only: video inputs are rejected.
/// </summary>
internal sealed class QwenVLBackbone : DecoderBackbone
{
#pragma warning disable IDE1006
    public readonly LlamaModel model;
    public readonly QwenVisionTower visual;
    public readonly Linear lm_head;
#pragma warning restore IDE1006
    private readonly QwenVLConfig _cfg;
    private readonly int[] _section;

    /// <summary>Creates the modules with uninitialised parameters; <see cref="Backbones.Load(string, Device, ScalarType, IProgress{ValueTuple{int, int}}?)"/> fills them.</summary>
    /// <param name="cfg">The checkpoint's config.</param>
    /// <param name="f">Device and dtype of the parameters.</param>
    /// <param name="derivePositionsWithoutTokenTypes">See <see cref="DerivePositionsWithoutTokenTypes"/>.</param>
    public QwenVLBackbone(QwenVLConfig cfg, ParamFactory f, bool derivePositionsWithoutTokenTypes = false) : base(nameof(QwenVLBackbone), cfg, f)
    {
        _cfg = cfg;
        DerivePositionsWithoutTokenTypes = derivePositionsWithoutTokenTypes;
        _section = cfg.Text.Rope.MropeSection ?? throw new ArgumentException("Qwen-VL needs mrope_section");
        model = new LlamaModel(f, cfg.Text);
        visual = new QwenVisionTower(f, cfg.Vision, cfg.IsQwen25);
        lm_head = new Linear(f, cfg.Text.HiddenSize, cfg.Text.VocabSize, false);
        RegisterComponents();
    }

    /// <summary>lm_head → embed_tokens when the text config ties word embeddings (the checkpoint may omit lm_head then); else empty.</summary>
    public static IReadOnlyDictionary<string, string> Tied(QwenVLConfig c) =>
        c.Text.TieWordEmbeddings ? new Dictionary<string, string> { ["lm_head.weight"] = "model.embed_tokens.weight" } : new Dictionary<string, string>();

    /// <inheritdoc/>
    protected override LlamaModel TextModel => model;
    /// <inheritdoc/>
    protected override Tensor LmHead(Tensor hidden) => lm_head.Forward(hidden);
    internal override Tensor? LmHeadWeight => lm_head.bias is null ? lm_head.weight : null;

    private static readonly string[] VideoInputs = ["pixel_values_videos", "video_grid_thw", "second_per_grid_ts"];

    /// <summary>The image grids of the batch, or null when it has no image input.</summary>
    private static List<(long t, long h, long w)>? Grids(BackboneInputs inputs)
    {
        if (VideoInputs.FirstOrDefault(k => inputs.Images.ContainsKey(k)) is { } v)
            throw new NotSupportedException($"Qwen-VL video inputs ('{v}') are not supported: images only");
        var pixels = inputs.Image("pixel_values");
        var thw = inputs.Image("image_grid_thw");
        if (pixels is null && thw is null) return null;
        if (pixels is null || thw is null)
            throw new ArgumentException("Qwen-VL needs pixel_values and image_grid_thw together");
        if (thw.dim() != 2 || thw.shape[1] != 3) throw new ArgumentException($"image_grid_thw must be [images, 3], got [{string.Join(", ", thw.shape)}]");
        var flat = thw.to(ScalarType.Int64).cpu().data<long>().ToArray();
        return Enumerable.Range(0, (int)thw.shape[0]).Select(i => (flat[3 * i], flat[3 * i + 1], flat[3 * i + 2])).ToList();
    }

    /// <summary>
    /// What Qwen2.5-VL does when <c>mm_token_type_ids</c> is absent. transformers 5.x finds image spans for M-RoPE only
    /// through the token types and otherwise gives every token a plain text position (the image features still go in
    /// at the image tokens); false (default) reproduces that, so references made by HF from such inputs verify. True
    /// derives the spans from the image-token id (transformers 4 behaviour). The engine's own prompts always carry
    /// token types, so generation gets 3-D positions either way. Qwen2-VL always derives (HF 5.x rejects such inputs).
    /// Set at construction.
    /// </summary>
    public bool DerivePositionsWithoutTokenTypes { get; }

    /// <summary>
    /// Which tokens are image placeholders ([B·T], row-major): <c>mm_token_type_ids</c> == 1 when given (it must agree
    /// with the image token id), else the image token id.
    /// </summary>
    private bool[] ImageTokens(BackboneInputs inputs, long[] ids)
    {
        long img = _cfg.ImageTokenId, video = _cfg.VideoTokenId;
        var types = inputs.Image("mm_token_type_ids");
        if (types is null)
        {
            if (ids.Contains(video)) throw new NotSupportedException($"the prompt holds the video token (id {video}): Qwen-VL video inputs are not supported");
            return ids.Select(x => x == img).ToArray();
        }
        if (!types.shape.SequenceEqual(inputs.InputIds.shape))
            throw new ArgumentException($"mm_token_type_ids is [{string.Join(", ", types.shape)}] but input_ids is [{string.Join(", ", inputs.InputIds.shape)}]");
        var t = types.to(ScalarType.Int64).cpu().data<long>().ToArray();
        var result = new bool[ids.Length];
        for (int i = 0; i < ids.Length; i++)
        {
            if (t[i] == 2) throw new NotSupportedException("mm_token_type_ids marks video tokens (2): Qwen-VL video inputs are not supported");
            result[i] = t[i] == 1;
            if (result[i] != (ids[i] == img))
                throw new ArgumentException($"mm_token_type_ids and input_ids disagree at flat position {i}: type {t[i]}, token {ids[i]} (image token id {img})");
        }
        return result;
    }

    /// <inheritdoc/>
    protected override Tensor PromptEmbeddings(BackboneInputs inputs, CausalDecodeState state)
    {
        using var scope = NewDisposeScope();
        var ids = inputs.InputIds;
        var hostIds = ids.cpu().data<long>().ToArray();
        var isImage = ImageTokens(inputs, hostIds);
        var grids = Grids(inputs);
        long n = isImage.LongCount(x => x);
        var embeds = EmbedTokens(SafeIds(ids, _cfg.ImageTokenId, _cfg.Text.VocabSize));
        if (grids is null)
        {
            if (n > 0) throw new ArgumentException($"the prompt has {n} image tokens but no pixel_values were given");
            return embeds.MoveToOuterDisposeScope();
        }
        var features = visual.Forward(inputs.Image("pixel_values")!.to(Device), grids);
        if (n != features.shape[0])
            throw new ArgumentException($"the prompt has {n} image tokens but image_grid_thw gives {features.shape[0]} image features");
        var mask = tensor(isImage, device: Device).view(ids.shape[0], ids.shape[1], 1).expand_as(embeds);
        return embeds.masked_scatter(mask, features.to(embeds.dtype)).MoveToOuterDisposeScope();
    }

    /// <summary>M-RoPE positions [3, B, T] (temporal, height, width) computed on the host from the ids and image grids; the per-row delta is kept for decode steps.</summary>
    protected override (Tensor positions, Tensor next) PromptPositions(BackboneInputs inputs, Tensor mask, CausalDecodeState? state)
    {
        using var scope = NewDisposeScope();
        long b = inputs.BatchSize, t = inputs.SeqLen;
        var hostIds = inputs.InputIds.cpu().data<long>().ToArray();
        var valid = mask.to(ScalarType.Bool).cpu().data<bool>().ToArray();
        if (_cfg.IsQwen25 && inputs.Image("mm_token_type_ids") is null && !DerivePositionsWithoutTokenTypes)
        {
            // HF 5.x: no token types → every token gets a plain text position (see the property)
            var (p1, n1) = base.PromptPositions(inputs, mask, state);
            return (p1.unsqueeze(0).expand(3, -1, -1).contiguous().MoveToOuterDisposeScope(), n1.MoveToOuterDisposeScope());
        }
        var isImage = ImageTokens(inputs, hostIds);
        var (pos, next) = MRopeIndex.Compute(b, t, valid, isImage, Grids(inputs),
            _cfg.Vision.SpatialMergeSize, temporalIndex: !_cfg.IsQwen25);
        var positions = tensor(pos, device: Device).view(3, b, t);
        var nextT = tensor(next, device: Device);
        return (positions.MoveToOuterDisposeScope(), nextT.MoveToOuterDisposeScope());
    }

    /// <summary>Every row's next position (prompt maximum + 1 + steps so far) on all three axes: [3, B, 1].</summary>
    protected override Tensor StepPositions(CausalDecodeState state) => state.NextPosition.view(1, -1, 1).expand(3, -1, 1);

    /// <summary>
    /// M-RoPE cos/sin [B, T, head_dim] from positions [3, B, T]: the head's frequency slots are split by mrope_section
    /// into temporal, height and width parts, each rotated by its own axis (float32 math, as HF).
    /// </summary>
    protected override (Tensor cos, Tensor sin) CosSin(Tensor positions)
    {
        using var scope = NewDisposeScope();
        if (positions.dim() == 2) positions = positions.unsqueeze(0).expand(3, -1, -1);
        var freqs = positions.to(ScalarType.Float32).unsqueeze(-1) * Rotary.InvFreq(positions.device); // [3, B, T, D/2]
        int s0 = _section[0], s1 = _section[1], s2 = _section[2];
        var sel = cat([freqs[0].narrow(-1, 0, s0), freqs[1].narrow(-1, s0, s1), freqs[2].narrow(-1, s0 + s1, s2)], -1);
        var emb = cat([sel, sel], -1);
        return (emb.cos().to(DType).MoveToOuterDisposeScope(), emb.sin().to(DType).MoveToOuterDisposeScope());
    }
}
