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

namespace SafeCoDe.Torch.Models.Idefics;

/// <summary>IDEFICS v1 (<c>idefics</c>): CLIP-style encoder, perceiver resampler, gated cross-attention into Llama.</summary>
internal sealed class IdeficsFamily : IModelFamily
{
    public string ModelType => ModelFamilies.Idefics;

    public ModelConfig ReadConfig(JsonConfig config) => IdeficsConfig.Read(config);

    public (nn.Module Module, IReadOnlyDictionary<string, string> Tied) CreateBackbone(ModelConfig config, ParamFactory factory)
    {
        var c = (IdeficsConfig)config;
        return (new IdeficsBackbone(c, factory), IdeficsBackbone.Tied(c));
    }

    public void DescribeVision(ModelConfig config, IDictionary<string, object> vision)
    {
        var i = (IdeficsConfig)config;
        InspectReport.AddVit(vision, i.Vision);
        vision["resampler"] = i.Perceiver.UseResampler ? $"{i.Perceiver.NumLatents} latents, depth {i.Perceiver.Depth}, {i.Perceiver.NumHeads}x{i.Perceiver.HeadDim}" : "off";
        vision["cross_layer_interval"] = i.CrossLayerInterval; vision["additional_vocab_size"] = i.AdditionalVocabSize;
    }

    public IReadOnlyList<string> ImageProcessorClasses => ["IdeficsImageProcessor"];

    public IImageProcessor CreateImageProcessor(ModelConfig config, JsonConfig preprocessor, string processorClass) =>
        BasicImageProcessor.Idefics((IdeficsConfig)config, preprocessor);

    public JsonObject DefaultPreprocessorConfig(ModelConfig config) => new()
    {
        ["image_processor_type"] = "IdeficsImageProcessor", ["image_size"] = ((IdeficsConfig)config).Vision.ImageSize,
        ["image_mean"] = RandomCheckpoint.Floats(RandomCheckpoint.ClipMean), ["image_std"] = RandomCheckpoint.Floats(RandomCheckpoint.ClipStd),
        ["image_num_channels"] = 3,
    };

    public ChatFormat ChatFormat(PromptStyle style) => new IdeficsFormat(style);

    /// <summary>The tokenizer's <c>&lt;image&gt;</c>, once per image (the features enter by cross-attention).</summary>
    public long? ImageTokenId(ModelConfig config, ITokenizer tokenizer) => tokenizer.TokenToId(IdeficsFormat.ImageToken);

    public long ImageTokenCount(IReadOnlyList<ImageLayout> layouts) => layouts.Count;

    /// <summary>The image-attention mask: each token attends to the most recent image at or before it (tokens before any image see none).</summary>
    public void AddInputs(PromptBuilder builder, EncodedPrompt prompt, ProcessedImages? pixels, Tensor inputIds, IDictionary<string, Tensor> images)
    {
        if (pixels is null) return;
        var imageId = builder.Tokenizer.TokenToId(IdeficsFormat.ImageToken) ?? throw new InvalidOperationException("the IDEFICS tokenizer has no <image> token");
        long[] ids = prompt.Ids;
        int nImages = prompt.Layouts.Count;
        var m = new long[ids.Length * nImages];
        int current = -1;
        for (int t = 0; t < ids.Length; t++)
        {
            if (ids[t] == imageId) current++;
            if (current >= 0 && current < nImages) m[t * nImages + current] = 1;
        }
        images["image_attention_mask"] = tensor(m, ScalarType.Int64).view(1, ids.Length, nImages);
    }

    public IReadOnlyList<string> PlaceholderTokens => [IdeficsFormat.ImageToken, IdeficsFormat.Fake];

    public IReadOnlyList<string> EndOfTurnTokens => [IdeficsFormat.EndOfUtterance];

    /// <summary>The reference code: max_length 1024, the prompt included.</summary>
    public int? FaithfulBudget(Verdict verdict, int promptLength) => Math.Max(0, 1024 - promptLength);

    /// <summary>Not checked for this family's layouts (the config-vs-weights check skipped IDEFICS models before the family split).</summary>
    public bool EmbeddingWidthIsHiddenSize => false;
}
