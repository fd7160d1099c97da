using System.Text.Json.Nodes;
using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Models.Common;
using SafeCoDe.Torch.Processing.Chat;
using SafeCoDe.Torch.Processing.Images;
using SafeCoDe.Torch.Processing.Tokenizers;
using SafeCoDe.Torch.Safety;
using TorchSharp;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Models.Llava;

/// <summary>LLaVA-1.5 (<c>llava</c>) and LLaVA-NeXT (<c>llava_next</c>): CLIP tower, MLP projector, Llama/Vicuna decoder.</summary>
internal sealed class LlavaFamily(string modelType) : IModelFamily
{
    private bool Next => modelType == ModelFamilies.LlavaNext;

    public string ModelType => modelType;

    public ModelConfig ReadConfig(JsonConfig config) => LlavaConfig.Read(config);

    public IReadOnlyList<TensorRename> TensorRenames { get; } =
    [
        new(@"^vision_tower\.vision_model\.", "vision_tower."),
        new(@"^model\.vision_tower\.(vision_model\.)?", "vision_tower."),
        new(@"^model\.language_model\.", "language_model.model."),
        new(@"^model\.multi_modal_projector\.", "multi_modal_projector."),
        new(@"^model\.image_newline$", "image_newline"),
        new(@"^lm_head\.", "language_model.lm_head."),
    ];

    public (nn.Module Module, IReadOnlyDictionary<string, string> Tied) CreateBackbone(ModelConfig config, ParamFactory factory)
    {
        var c = (LlavaConfig)config;
        return (new LlavaBackbone(c, factory), LlavaBackbone.Tied(c));
    }

    public IEnumerable<HubTensor> HubTensors(string canonical, long[] shape) =>
        [new(canonical.StartsWith("vision_tower.") ? "vision_tower.vision_model." + canonical["vision_tower.".Length..] : canonical, shape)];

    public void DescribeVision(ModelConfig config, IDictionary<string, object> vision)
    {
        var l = (LlavaConfig)config;
        InspectReport.AddVit(vision, l.Vision);
        vision["feature_layers"] = string.Join(",", l.VisionFeatureLayers);
        vision["select_strategy"] = l.VisionFeatureSelectStrategy;
        vision["image_token_id"] = l.ImageTokenId;
        vision["projector_act"] = l.ProjectorHiddenAct;
        if (l.ImageGridPinpoints is { } p) vision["grid_pinpoints"] = string.Join(" ", p.Select(x => $"{x[0]}x{x[1]}"));
    }

    public IReadOnlyList<string> ImageProcessorClasses => Next ? ["LlavaNextImageProcessor"] : ["CLIPImageProcessor", "LlavaImageProcessor"];

    public IImageProcessor CreateImageProcessor(ModelConfig config, JsonConfig preprocessor, string processorClass) => Next
        ? new LlavaNextImageProcessor((LlavaConfig)config, preprocessor)
        : BasicImageProcessor.Llava((LlavaConfig)config, preprocessor, processorClass);

    public JsonObject DefaultPreprocessorConfig(ModelConfig config)
    {
        var l = (LlavaConfig)config;
        var j = new JsonObject
        {
            ["image_processor_type"] = l.ImageGridPinpoints is null ? "CLIPImageProcessor" : "LlavaNextImageProcessor",
            ["do_resize"] = true, ["size"] = new JsonObject { ["shortest_edge"] = l.Vision.ImageSize },
            ["do_center_crop"] = true, ["crop_size"] = new JsonObject { ["height"] = l.Vision.ImageSize, ["width"] = l.Vision.ImageSize },
            ["resample"] = 3, ["do_rescale"] = true, ["rescale_factor"] = 1 / 255.0, ["do_normalize"] = true,
            ["image_mean"] = RandomCheckpoint.Floats(RandomCheckpoint.ClipMean), ["image_std"] = RandomCheckpoint.Floats(RandomCheckpoint.ClipStd),
            ["do_convert_rgb"] = true,
        };
        if (l.ImageGridPinpoints is { } pins)
        {
            j["do_pad"] = true;
            j["image_grid_pinpoints"] = new JsonArray(pins.Select(p => (JsonNode)new JsonArray(p[0], p[1])).ToArray());
        }
        return j;
    }

    public ChatFormat ChatFormat(PromptStyle style) => new LlavaFormat(modelType, style);

    public long? ImageTokenId(ModelConfig config, ITokenizer tokenizer) => ((LlavaConfig)config).ImageTokenId;

    public long[] PlaceholderTokenIds(ModelConfig config) => [((LlavaConfig)config).ImageTokenId];

    public IReadOnlyList<string> PlaceholderTokens => [LlavaFormat.ImageToken];

    /// <summary>The reference code: 20 new tokens after an unsafe verdict, 256 after a safe one.</summary>
    public int? FaithfulBudget(Verdict verdict, int promptLength) => verdict == Verdict.Unsafe ? 20 : 256;
}
