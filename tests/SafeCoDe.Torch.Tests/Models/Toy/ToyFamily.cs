using System.Text;
using System.Text.Json.Nodes;
using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Models;
using SafeCoDe.Torch.Models.Common;
using SafeCoDe.Torch.Models.Llava;
using SafeCoDe.Torch.Processing.Chat;
using SafeCoDe.Torch.Processing.Images;
using SafeCoDe.Torch.Processing.Tokenizers;
using TorchSharp;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Tests.Models.Toy;

/// <summary>
/// The toy family's config: its own config.json layout (<c>text</c>, <c>vision</c>, <c>image_placeholder_id</c>)
/// read into its own record; the backbone it builds reuses the LLaVA modules (a research family that swaps the
/// config and naming, not the layers).
/// </summary>
public sealed record ToyConfig : ModelConfig
{
    /// <summary>The LLaVA-shaped settings its backbone is built from.</summary>
    public LlavaConfig Backbone { get; init; } = null!;
}

/// <summary>
/// A family defined only in the test project, to show what adding a family takes: a config reader, tensor renames
/// (files store <c>toy.tower.*</c>, <c>toy.bridge.*</c>, <c>toy.lm.*</c>, <c>toy.head.*</c>), a backbone factory, a
/// chat format, an image processor, placeholders and a random-checkpoint recipe. Registered at run time.
/// </summary>
public sealed class ToyFamily : IModelFamily
{
    public const string Type = "toy_vlm";
    public const string ImageToken = "<image>";

    public string ModelType => Type;

    public ModelConfig ReadConfig(JsonConfig c)
    {
        var text = TextConfig.Read(c.ObjectOrEmpty("text"), TextConfig.Llama, "toy_text", c);
        var vision = VitConfig.Read(c.ObjectOrEmpty("vision"), "toy_vision", 32, 64, 2, 2, 56, 14, "quick_gelu", 1e-5);
        var backbone = ModelConfig.Base<LlavaConfig>(c, text) with
        {
            Vision = vision, ImageTokenId = c.Int("image_placeholder_id"), ProjectorHiddenAct = c.String("bridge_act", "gelu"),
            ProjectorBias = true, VisionFeatureLayers = [-2], VisionFeatureSelectStrategy = "default", ImageSeqLength = vision.NumPatches,
        };
        return ModelConfig.Base<ToyConfig>(c, text) with { Backbone = backbone };
    }

    /// <summary>The toy files' names → the LLaVA modules' canonical names.</summary>
    private static readonly (string File, string Canonical)[] Prefixes =
    [
        ("toy.tower.", "vision_tower."), ("toy.bridge.", "multi_modal_projector."), ("toy.lm.", "language_model.model."), ("toy.head.", "language_model.lm_head."),
    ];

    public IReadOnlyList<TensorRename> TensorRenames { get; } =
        Prefixes.Select(p => new TensorRename("^" + System.Text.RegularExpressions.Regex.Escape(p.File), p.Canonical)).ToArray();

    public IEnumerable<HubTensor> HubTensors(string canonical, long[] shape)
    {
        var (file, canon) = Prefixes.First(p => canonical.StartsWith(p.Canonical));
        return [new HubTensor(file + canonical[canon.Length..], shape)];
    }

    public (nn.Module Module, IReadOnlyDictionary<string, string> Tied) CreateBackbone(ModelConfig config, ParamFactory factory)
    {
        var b = ((ToyConfig)config).Backbone;
        return (new LlavaBackbone(b, factory), LlavaBackbone.Tied(b));
    }

    public void DescribeVision(ModelConfig config, IDictionary<string, object> vision) => vision["toy_patches"] = ((ToyConfig)config).Backbone.Vision.NumPatches;

    public IReadOnlyList<string> ImageProcessorClasses => ["CLIPImageProcessor"];

    public IImageProcessor CreateImageProcessor(ModelConfig config, JsonConfig preprocessor, string processorClass) =>
        BasicImageProcessor.Llava(((ToyConfig)config).Backbone, preprocessor, processorClass);

    public JsonObject DefaultPreprocessorConfig(ModelConfig config)
    {
        int side = ((ToyConfig)config).Backbone.Vision.ImageSize;
        return new JsonObject
        {
            ["image_processor_type"] = "CLIPImageProcessor", ["do_resize"] = true, ["size"] = new JsonObject { ["shortest_edge"] = side },
            ["do_center_crop"] = true, ["crop_size"] = new JsonObject { ["height"] = side, ["width"] = side },
            ["resample"] = 3, ["do_rescale"] = true, ["rescale_factor"] = 1 / 255.0, ["do_normalize"] = true,
            ["image_mean"] = new JsonArray(0.5, 0.5, 0.5), ["image_std"] = new JsonArray(0.5, 0.5, 0.5), ["do_convert_rgb"] = true,
        };
    }

    public ChatFormat ChatFormat(PromptStyle style) => new ToyFormat();

    public long? ImageTokenId(ModelConfig config, ITokenizer tokenizer) => ((ToyConfig)config).Backbone.ImageTokenId;

    public long[] PlaceholderTokenIds(ModelConfig config) => [((ToyConfig)config).Backbone.ImageTokenId];

    public IReadOnlyList<string> PlaceholderTokens => [ImageToken];
}

/// <summary>The toy chat format: <c>[user] images text [/user] [bot]</c>.</summary>
public sealed class ToyFormat : ChatFormat
{
    public override string Family => ToyFamily.Type;

    public override string Render(IReadOnlyList<ChatTurn> turns, bool addGenerationPrompt)
    {
        var sb = new StringBuilder();
        foreach (var t in turns)
            sb.Append('[').Append(t.Role).Append("] ").Append(Images(t.Images)).Append(t.Text).Append(" [/").Append(t.Role).Append("] ");
        if (addGenerationPrompt) sb.Append("[bot]");
        return sb.ToString();
    }

    public override string ImageTokens(ImageLayout layout, int imageIndex) => Repeat(ToyFamily.ImageToken, layout.NumImageTokens);
}
