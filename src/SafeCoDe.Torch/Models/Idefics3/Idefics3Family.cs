using System.Text.Json.Nodes;
using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Models.Common;
using SafeCoDe.Torch.Processing.Chat;
using SafeCoDe.Torch.Processing.Images;
using SafeCoDe.Torch.Processing.Tokenizers;
using SafeCoDe.Torch.Safety;
using TorchSharp;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Models.Idefics3;

/// <summary>Idefics3 / SmolVLM (<c>idefics3</c>): SigLIP tiles, pixel-shuffle connector, Llama decoder.</summary>
internal sealed class Idefics3Family : IModelFamily
{
    public string ModelType => ModelFamilies.Idefics3;

    public ModelConfig ReadConfig(JsonConfig config) => Idefics3Config.Read(config);

    public (nn.Module Module, IReadOnlyDictionary<string, string> Tied) CreateBackbone(ModelConfig config, ParamFactory factory)
    {
        var c = (Idefics3Config)config;
        return (new Idefics3Backbone(c, factory), Idefics3Backbone.Tied(c));
    }

    public void DescribeVision(ModelConfig config, IDictionary<string, object> vision)
    {
        var s3 = (Idefics3Config)config;
        InspectReport.AddVit(vision, s3.Vision);
        vision["scale_factor"] = s3.ScaleFactor; vision["image_token_id"] = s3.ImageTokenId;
        vision["tokens_per_tile"] = s3.Vision.NumPatches / (s3.ScaleFactor * s3.ScaleFactor);
    }

    public IReadOnlyList<string> ImageProcessorClasses => ["Idefics3ImageProcessor"];

    public IImageProcessor CreateImageProcessor(ModelConfig config, JsonConfig preprocessor, string processorClass) =>
        new Idefics3ImageProcessor((Idefics3Config)config, preprocessor);

    public JsonObject DefaultPreprocessorConfig(ModelConfig config)
    {
        var s = (Idefics3Config)config;
        return new JsonObject
        {
            ["image_processor_type"] = "Idefics3ImageProcessor", ["do_resize"] = true, ["size"] = new JsonObject { ["longest_edge"] = s.Vision.ImageSize * 4 },
            ["resample"] = 1, ["do_rescale"] = true, ["rescale_factor"] = 1 / 255.0, ["do_normalize"] = true,
            ["image_mean"] = RandomCheckpoint.Floats(0.5, 0.5, 0.5), ["image_std"] = RandomCheckpoint.Floats(0.5, 0.5, 0.5),
            ["do_convert_rgb"] = true, ["do_image_splitting"] = true, ["max_image_size"] = new JsonObject { ["longest_edge"] = s.Vision.ImageSize }, ["do_pad"] = true,
        };
    }

    public ChatFormat ChatFormat(PromptStyle style) => new Idefics3Format();

    public long? ImageTokenId(ModelConfig config, ITokenizer tokenizer) => ((Idefics3Config)config).ImageTokenId;

    public long[] PlaceholderTokenIds(ModelConfig config) => [((Idefics3Config)config).ImageTokenId];

    public IReadOnlyList<string> PlaceholderTokens => [Idefics3Format.ImageToken, Idefics3Format.Fake, Idefics3Format.Global];

    public IReadOnlyList<string> EndOfTurnTokens => ["<end_of_utterance>"];

    /// <summary>The reference ran IDEFICS with max_length 1024 (prompt included); its sibling Idefics3 takes the same rule.</summary>
    public int? FaithfulBudget(Verdict verdict, int promptLength) => Math.Max(0, 1024 - promptLength);

    /// <summary>Not checked for this family's layouts (the config-vs-weights check skipped IDEFICS models before the family split).</summary>
    public bool EmbeddingWidthIsHiddenSize => false;
}
