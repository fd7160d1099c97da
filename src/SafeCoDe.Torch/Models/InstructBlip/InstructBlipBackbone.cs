using SafeCoDe.Torch.Runtime;
#pragma warning disable CS1591 // public fields mirror the checkpoint's tensor names; the class summaries document them
using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Models.Common;
using SafeCoDe.Torch.Models.Llava;
using TorchSharp;
using TorchSharp.Modules;
using Linear = SafeCoDe.Torch.Models.Common.Linear;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Models.InstructBlip;

/// <summary>
/// InstructBLIP (<c>instructblip</c>) with a Llama/Vicuna decoder: BLIP-2 ViT → Q-Former (learned query tokens plus
/// the instruction's <c>qformer_input_ids</c>, cross-attending to the image) → <c>language_projection</c> → the
/// query outputs written at the image-token positions of the decoder's input. Needs <c>image_token_index</c> in the
/// config (the 2024 Hub re-upload has it); the legacy "prepend the queries" layout is not supported.
/// </summary>
internal sealed class InstructBlipBackbone : DecoderBackbone
{
#pragma warning disable IDE1006
    public readonly BlipVisionModel vision_model;
    public readonly Parameter query_tokens;
    public readonly QFormerModel qformer;
    public readonly Linear language_projection;
    public readonly CausalLm language_model;
#pragma warning restore IDE1006
    private readonly InstructBlipConfig _cfg;
    private readonly long _imageTokenId;

    /// <summary>Creates the modules with uninitialised parameters; <see cref="Backbones.Load(string, Device, ScalarType, IProgress{ValueTuple{int, int}}?)"/> fills them.</summary>
    public InstructBlipBackbone(InstructBlipConfig cfg, ParamFactory f) : base(nameof(InstructBlipBackbone), cfg, f)
    {
        _cfg = cfg;
        _imageTokenId = cfg.ImageTokenId ?? throw new ConfigException(cfg.ConfigPath, "image_token_index",
            "InstructBLIP needs image_token_index (the query outputs are written at those token positions); " +
            "checkpoints from before the 2024 re-upload lack it and are not supported");
        if (cfg.QFormer.EncoderHiddenSize != cfg.Vision.HiddenSize)
            throw new ConfigException(cfg.ConfigPath, "qformer_config.encoder_hidden_size",
                $"is {cfg.QFormer.EncoderHiddenSize} but the vision hidden_size is {cfg.Vision.HiddenSize}");
        vision_model = new BlipVisionModel(f, cfg.Vision);
        query_tokens = f.Make(1, cfg.NumQueryTokens, cfg.QFormer.HiddenSize);
        qformer = new QFormerModel(f, cfg.QFormer);
        language_projection = new Linear(f, cfg.QFormer.HiddenSize, cfg.Text.HiddenSize, true);
        language_model = new CausalLm(f, cfg.Text);
        RegisterComponents();
    }

    /// <summary>lm_head → embed_tokens when the text config ties word embeddings (the checkpoint may omit lm_head then); else empty.</summary>
    public static IReadOnlyDictionary<string, string> Tied(InstructBlipConfig c) =>
        c.Text.TieWordEmbeddings ? new Dictionary<string, string> { ["language_model.lm_head.weight"] = "language_model.model.embed_tokens.weight" } : new Dictionary<string, string>();

    /// <inheritdoc/>
    protected override LlamaModel TextModel => language_model.model;
    /// <inheritdoc/>
    protected override Tensor LmHead(Tensor hidden) => language_model.lm_head.Forward(hidden);
    internal override Tensor? LmHeadWeight => language_model.lm_head.bias is null ? language_model.lm_head.weight : null;

    /// <summary>
    /// The projected query outputs of each image: [images, num_query_tokens, text_hidden]. Image i is conditioned on
    /// row i of <paramref name="qformerIds"/> (the instruction in the Q-Former's own vocabulary).
    /// </summary>
    public Tensor ImageFeatures(Tensor pixels, Tensor qformerIds, Tensor? qformerMask)
    {
        using var scope = NewDisposeScope();
        long n = pixels.shape[0];
        if (qformerIds.dim() != 2 || qformerIds.shape[0] != n)
            throw new ArgumentException($"qformer_input_ids [{string.Join(",", qformerIds.shape)}] must hold one row per image; pixel_values has {n} images");
        if (qformerMask is not null && !qformerMask.shape.SequenceEqual(qformerIds.shape))
            throw new ArgumentException($"qformer_attention_mask [{string.Join(",", qformerMask.shape)}] does not match qformer_input_ids [{string.Join(",", qformerIds.shape)}]");
        var image = vision_model.Forward(pixels.to(Device));
        var queries = query_tokens.expand(n, -1, -1);
        var q = qformer.Forward(queries, qformerIds.to(Device).to(ScalarType.Int64), qformerMask?.to(Device), image);
        return language_projection.Forward(q).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    protected override Tensor PromptEmbeddings(BackboneInputs inputs, CausalDecodeState state)
    {
        using var scope = NewDisposeScope();
        var ids = inputs.InputIds;
        var embeds = EmbedTokens(SafeIds(ids, _imageTokenId, _cfg.Text.VocabSize));
        var pixels = inputs.Image("pixel_values");
        if (pixels is null)
        {
            using var imageToken = _imageTokenId.ToScalar();
        long n = ids.eq(imageToken).sum().item<long>();
            if (n > 0) throw new ArgumentException($"the prompt has {n} image tokens but no pixel_values were given");
            return embeds.MoveToOuterDisposeScope();
        }
        var qformerIds = inputs.Image("qformer_input_ids")
            ?? throw new ArgumentException("InstructBLIP needs qformer_input_ids with pixel_values: the instruction tokenized with the Q-Former's tokenizer (qformer_tokenizer/)");
        var features = ImageFeatures(pixels, qformerIds, inputs.Image("qformer_attention_mask"));
        return ScatterImageFeatures(embeds, ids, _imageTokenId, features.flatten(0, 1), "Q-Former").MoveToOuterDisposeScope();
    }
}
