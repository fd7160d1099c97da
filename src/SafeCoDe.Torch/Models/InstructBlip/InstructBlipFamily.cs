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

namespace SafeCoDe.Torch.Models.InstructBlip;

/// <summary>InstructBLIP (<c>instructblip</c>) with a Llama/Vicuna decoder: BLIP vision, instruction-aware Q-Former.</summary>
internal sealed class InstructBlipFamily : IModelFamily
{
    public string ModelType => ModelFamilies.InstructBlip;

    public ModelConfig ReadConfig(JsonConfig config) => InstructBlipConfig.Read(config);

    public IReadOnlyList<TensorRename> TensorRenames { get; } =
    [
        new(@"^model\.language_model\.(model\.)?", "language_model.model."),
        new(@"^language_model\.(?!model\.|lm_head\.)", "language_model.model."),
        new(@"^lm_head\.", "language_model.lm_head."),
        new(@"^model\.(vision_model|qformer|language_projection|query_tokens)", "$1"),
    ];

    /// <summary>The Hub files hold <c>q_bias</c> and <c>v_bias</c> of the vision attention; k has none.</summary>
    public bool SplitsQkvBias => true;

    public (nn.Module Module, IReadOnlyDictionary<string, string> Tied) CreateBackbone(ModelConfig config, ParamFactory factory)
    {
        var c = (InstructBlipConfig)config;
        return (new InstructBlipBackbone(c, factory), InstructBlipBackbone.Tied(c));
    }

    public IEnumerable<HubTensor> HubTensors(string canonical, long[] shape)
    {
        if (!canonical.EndsWith(".self_attn.qkv.bias")) return [new(canonical, shape)];
        var stem = canonical[..^"qkv.bias".Length];
        return [new(stem + "q_bias", [shape[0] / 3], 0), new(stem + "v_bias", [shape[0] / 3], 2)];
    }

    public void DescribeVision(ModelConfig config, IDictionary<string, object> vision)
    {
        var b = (InstructBlipConfig)config;
        InspectReport.AddVit(vision, b.Vision);
        vision["qformer_layers"] = b.QFormer.NumLayers; vision["qformer_hidden"] = b.QFormer.HiddenSize;
        vision["cross_attention_frequency"] = b.QFormer.CrossAttentionFrequency; vision["query_tokens"] = b.NumQueryTokens;
        if (b.ImageTokenId is { } it) vision["image_token_id"] = it;
    }

    public IReadOnlyList<string> ImageProcessorClasses => ["BlipImageProcessor"];

    public IImageProcessor CreateImageProcessor(ModelConfig config, JsonConfig preprocessor, string processorClass) =>
        BasicImageProcessor.InstructBlip((InstructBlipConfig)config, preprocessor);

    public JsonObject DefaultPreprocessorConfig(ModelConfig config)
    {
        var b = (InstructBlipConfig)config;
        return new JsonObject
        {
            ["image_processor_type"] = "BlipImageProcessor", ["do_resize"] = true, ["size"] = new JsonObject { ["height"] = b.Vision.ImageSize, ["width"] = b.Vision.ImageSize },
            ["resample"] = 3, ["do_rescale"] = true, ["rescale_factor"] = 1 / 255.0, ["do_normalize"] = true,
            ["image_mean"] = RandomCheckpoint.Floats(RandomCheckpoint.ClipMean), ["image_std"] = RandomCheckpoint.Floats(RandomCheckpoint.ClipStd),
            ["do_convert_rgb"] = true,
        };
    }

    public ChatFormat ChatFormat(PromptStyle style) => new InstructBlipFormat(style);

    public long? ImageTokenId(ModelConfig config, ITokenizer tokenizer) => ((InstructBlipConfig)config).ImageTokenId;

    /// <summary>Query-token placeholders go before everything, BOS included (HF's InstructBlipProcessor); the Q-Former gets the user text.</summary>
    public EncodedPrompt? Encode(PromptBuilder builder, UserText marked, IReadOnlyList<ImageLayout> layouts, bool parseSpecial)
    {
        var (plain, spans) = marked.Resolve(builder.Format.Render(marked.Turns.Select(t => t with { Images = 0 }).ToList(), addGenerationPrompt: true));
        var imageId = ((InstructBlipConfig)builder.Config).ImageTokenId
            ?? throw new NotSupportedException("this InstructBLIP config has no image_token_index (older checkpoints put the queries before the text differently)");
        var n = layouts.Sum(l => l.NumImageTokens);
        long[] ids = [.. Enumerable.Repeat((long)imageId, n), .. builder.Tokenizer.Encode(plain, true, parseSpecial ? [] : spans).Select(i => (long)i)];
        var question = string.Join("\n", marked.Original.Where(t => t.Role == "user").Select(t => t.Text));
        var qformer = builder.SideTokenizer?.Encode(question, true, parseSpecial ? [] : [Range.All]).Select(i => (long)i).ToArray();
        return new EncodedPrompt(ids, plain, layouts, qformer);
    }

    public void AddInputs(PromptBuilder builder, EncodedPrompt prompt, ProcessedImages? pixels, Tensor inputIds, IDictionary<string, Tensor> images)
    {
        if (prompt.QFormerIds is not { } qf) return;
        images["qformer_input_ids"] = tensor(qf, ScalarType.Int64).view(1, -1);
        images["qformer_attention_mask"] = ones(1, qf.Length, ScalarType.Int64);
    }

    public ITokenizer? LoadSideTokenizer(ModelDirectory dir) =>
        Directory.Exists(Path.Combine(dir.Dir, "qformer_tokenizer")) ? TokenizerLoader.LoadQFormer(dir.Dir)
            : throw new CheckpointException(dir.Dir, "qformer_tokenizer", "InstructBLIP needs the Q-Former tokenizer folder qformer_tokenizer/");

    /// <summary>The Q-Former always gets the image.</summary>
    public bool SupportsTextOnly => false;

    public long[] PlaceholderTokenIds(ModelConfig config) => ((InstructBlipConfig)config).ImageTokenId is { } id ? [id] : [];

    public IReadOnlyList<string> PlaceholderTokens => [InstructBlipFormat.ImageToken];

    /// <summary>The reference code: 1024 new tokens.</summary>
    public int? FaithfulBudget(Verdict verdict, int promptLength) => 1024;
}
