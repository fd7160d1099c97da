using SafeCoDe.Torch.Runtime;
using System.Text.Json.Nodes;
using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Models.Common;
using SafeCoDe.Torch.Processing;
using SafeCoDe.Torch.Processing.Chat;
using SafeCoDe.Torch.Processing.Images;
using SafeCoDe.Torch.Processing.Tokenizers;
using SafeCoDe.Torch.Safety;
using TorchSharp;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Models.Qwen;

/// <summary>Qwen2-VL (<c>qwen2_vl</c>) and Qwen2.5-VL (<c>qwen2_5_vl</c>): native-resolution vision tower, M-RoPE decoder.</summary>
internal sealed class QwenFamily(string modelType) : IModelFamily
{
    public string ModelType => modelType;

    public ModelConfig ReadConfig(JsonConfig config) => QwenVLConfig.Read(config);

    public IReadOnlyList<TensorRename> TensorRenames { get; } =
    [
        new(@"^model\.visual\.", "visual."),
        new(@"^model\.language_model\.", "model."),
    ];

    public (nn.Module Module, IReadOnlyDictionary<string, string> Tied) CreateBackbone(ModelConfig config, ParamFactory factory)
    {
        var c = (QwenVLConfig)config;
        return (new QwenVLBackbone(c, factory), QwenVLBackbone.Tied(c));
    }

    public void DescribeVision(ModelConfig config, IDictionary<string, object> vision)
    {
        var q = (QwenVLConfig)config;
        vision["depth"] = q.Vision.Depth; vision["embed_dim"] = q.Vision.EmbedDim; vision["heads"] = q.Vision.NumHeads;
        vision["intermediate_size"] = q.Vision.IntermediateSize; vision["out_hidden_size"] = q.Vision.OutHiddenSize;
        vision["patch_size"] = q.Vision.PatchSize; vision["temporal_patch_size"] = q.Vision.TemporalPatchSize;
        vision["spatial_merge_size"] = q.Vision.SpatialMergeSize; vision["act"] = q.Vision.HiddenAct;
        if (q.IsQwen25) { vision["window_size"] = q.Vision.WindowSize; vision["fullatt_blocks"] = string.Join(",", q.Vision.FullAttBlockIndexes); }
        vision["image_token_id"] = q.ImageTokenId;
    }

    public IReadOnlyList<string> ImageProcessorClasses => ["Qwen2VLImageProcessor"];

    public IImageProcessor CreateImageProcessor(ModelConfig config, JsonConfig preprocessor, string processorClass) =>
        new QwenVLImageProcessor((QwenVLConfig)config, preprocessor);

    public JsonObject DefaultPreprocessorConfig(ModelConfig config)
    {
        var q = (QwenVLConfig)config;
        return new JsonObject
        {
            ["image_processor_type"] = "Qwen2VLImageProcessor", ["do_resize"] = true, ["resample"] = 3, ["do_rescale"] = true, ["rescale_factor"] = 1 / 255.0,
            ["do_normalize"] = true, ["image_mean"] = RandomCheckpoint.Floats(RandomCheckpoint.ClipMean), ["image_std"] = RandomCheckpoint.Floats(RandomCheckpoint.ClipStd),
            ["do_convert_rgb"] = true, ["min_pixels"] = 56 * 56, ["max_pixels"] = 28 * 28 * 1280, ["patch_size"] = q.Vision.PatchSize,
            ["temporal_patch_size"] = q.Vision.TemporalPatchSize, ["merge_size"] = q.Vision.SpatialMergeSize,
        };
    }

    public ChatFormat ChatFormat(PromptStyle style) => new QwenFormat(modelType, style);

    public long? ImageTokenId(ModelConfig config, ITokenizer tokenizer) => ((QwenVLConfig)config).ImageTokenId;

    /// <summary>The token types: 1 where an image token sits.</summary>
    public void AddInputs(PromptBuilder builder, EncodedPrompt prompt, ProcessedImages? pixels, Tensor inputIds, IDictionary<string, Tensor> images)
    {
        using var imageToken = ((QwenVLConfig)builder.Config).ImageTokenId.ToScalar();
        using var isImage = inputIds.eq(imageToken);
        images["mm_token_type_ids"] = isImage.to(ScalarType.Int64);
    }

    public long[] PlaceholderTokenIds(ModelConfig config) => [((QwenVLConfig)config).ImageTokenId, ((QwenVLConfig)config).VideoTokenId];

    public IReadOnlyList<string> PlaceholderTokens => ["<|image_pad|>", "<|video_pad|>"];

    public IReadOnlyList<string> EndOfTurnTokens => ["<|im_end|>"];

    /// <summary>The reference code: 30 new tokens after an unsafe verdict, 256 after a safe one.</summary>
    public int? FaithfulBudget(Verdict verdict, int promptLength) => verdict == Verdict.Unsafe ? 30 : 256;

    /// <summary>The reference checks every guided token of Qwen for corruption.</summary>
    public bool RollbackChecksEveryToken => true;
}
