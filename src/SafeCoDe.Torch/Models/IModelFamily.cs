using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Models.Common;
using SafeCoDe.Torch.Processing;
using SafeCoDe.Torch.Processing.Chat;
using SafeCoDe.Torch.Processing.Images;
using SafeCoDe.Torch.Processing.Tokenizers;
using SafeCoDe.Torch.Safety;
using TorchSharp;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Models;

/// <summary>One rule mapping a file's tensor name to the engine's canonical name (the first matching rule applies).</summary>
/// <param name="Pattern">Matched against the name as the file stores it.</param>
/// <param name="Replacement">Replaces the first match (Regex replacement syntax).</param>
public sealed record TensorRename(Regex Pattern, string Replacement)
{
    /// <summary>A rule from a regular expression.</summary>
    public TensorRename(string pattern, string replacement) : this(new Regex(pattern, RegexOptions.CultureInvariant), replacement) { }
}

/// <summary>A Hub-layout tensor written by a random checkpoint for one canonical parameter.</summary>
/// <param name="Name">Name in the safetensors file.</param>
/// <param name="Shape">Shape in the file.</param>
/// <param name="Part">−1 for the whole parameter, else which third of it (InstructBLIP's split q/v biases).</param>
public sealed record HubTensor(string Name, long[] Shape, int Part = -1);

/// <summary>
/// Everything that is particular to one <c>model_type</c>: how its config.json reads, how its tensors are named, which
/// module it builds, which image processor and chat format it uses, its special tokens, extra inputs, SafeCoDe budget,
/// random-checkpoint recipe and inspect summary. Each family lives in its folder under <c>Models/</c> and is
/// registered in <see cref="ModelFamilies"/>; nothing outside those places branches on the family.
/// </summary>
public interface IModelFamily
{
    /// <summary>config.json's <c>model_type</c> this family reads.</summary>
    string ModelType { get; }

    // --- checkpoint ---

    /// <summary>Reads config.json (either layout: transformers 4 flat fields or transformers 5 nested ones) with the Python defaults.</summary>
    ModelConfig ReadConfig(JsonConfig config);

    /// <summary>File tensor name → canonical name rules (first match applies; none: names are already canonical).</summary>
    IReadOnlyList<TensorRename> TensorRenames => [];

    /// <summary>True when the Hub files store attention q/v biases separately (<c>q_bias</c>, <c>v_bias</c>) to be fused with a zero k third.</summary>
    bool SplitsQkvBias => false;

    /// <summary>The part of the model a canonical tensor belongs to (reports): vision, projector, qformer, resampler, lm_head or language_model.</summary>
    string Component(string canonical) => ModelComponents.Of(canonical);

    /// <summary>
    /// Builds the family's module with parameters from <paramref name="factory"/>; <c>Tied</c> maps parameters a
    /// checkpoint may omit to the one they copy.
    /// </summary>
    (nn.Module Module, IReadOnlyDictionary<string, string> Tied) CreateBackbone(ModelConfig config, ParamFactory factory);

    /// <summary>The Hub-layout tensors a random checkpoint writes for one canonical parameter (default: the parameter as is).</summary>
    IEnumerable<HubTensor> HubTensors(string canonical, long[] shape) => [new HubTensor(canonical, shape)];

    /// <summary>Adds the family's vision settings to an inspect report.</summary>
    void DescribeVision(ModelConfig config, IDictionary<string, object> vision) { }

    // --- images and prompts ---

    /// <summary>HF image-processor classes accepted in preprocessor_config.json (the first is the default).</summary>
    IReadOnlyList<string> ImageProcessorClasses { get; }

    /// <summary>The image processor for the config and preprocessor settings (<paramref name="processorClass"/> is one of <see cref="ImageProcessorClasses"/>).</summary>
    IImageProcessor CreateImageProcessor(ModelConfig config, JsonConfig preprocessor, string processorClass);

    /// <summary>The family's default preprocessor_config.json for the config's vision geometry (random checkpoints).</summary>
    JsonObject DefaultPreprocessorConfig(ModelConfig config);

    /// <summary>The chat format in a prompt style.</summary>
    ChatFormat ChatFormat(PromptStyle style);

    /// <summary>The id the prompt repeats for image tokens (checked against the tokenizer), or null when there is none to check.</summary>
    long? ImageTokenId(ModelConfig config, ITokenizer tokenizer);

    /// <summary>How many <see cref="ImageTokenId"/> ids a prompt with these images holds.</summary>
    long ImageTokenCount(IReadOnlyList<ImageLayout> layouts) => layouts.Sum(l => (long)l.NumImageTokens);

    /// <summary>
    /// Encodes a conversation when the family does not follow the common path (render → expand images → tokenise);
    /// null: the common path. The turns come marked (<see cref="UserText"/>): render <c>marked.Turns</c>, resolve the
    /// rendering, and encode the user spans as plain text unless <paramref name="parseSpecial"/>.
    /// </summary>
    EncodedPrompt? Encode(PromptBuilder builder, UserText marked, IReadOnlyList<ImageLayout> layouts, bool parseSpecial) => null;

    /// <summary>Adds the family's extra model inputs (token types, masks, side-tokenizer ids) for one encoded row.</summary>
    void AddInputs(PromptBuilder builder, EncodedPrompt prompt, ProcessedImages? pixels, Tensor inputIds, IDictionary<string, Tensor> images) { }

    /// <summary>A second tokenizer the prompts need (InstructBLIP's Q-Former tokenizer); null when the family needs none.</summary>
    ITokenizer? LoadSideTokenizer(ModelDirectory dir) => null;

    /// <summary>True when the family can run a prompt without an image.</summary>
    bool SupportsTextOnly => true;

    // --- tokens and decoding ---

    /// <summary>Ids from the config that only mark where images go; decoding bans them.</summary>
    long[] PlaceholderTokenIds(ModelConfig config) => [];

    /// <summary>Placeholder token texts, banned during decoding when the tokenizer knows them.</summary>
    IReadOnlyList<string> PlaceholderTokens => [];

    /// <summary>End-of-turn token texts that end generation when the tokenizer knows them (besides the checkpoint's EOS ids).</summary>
    IReadOnlyList<string> EndOfTurnTokens => [];

    /// <summary>The faithful preset's length budget after guidance (the reference code's per-family rule); null: the uniform budget.</summary>
    int? FaithfulBudget(Verdict verdict, int promptLength) => null;

    /// <summary>True when the corruption rollback looks at every guided token (Qwen in the reference), false when only at the first.</summary>
    bool RollbackChecksEveryToken => false;

    /// <summary>
    /// True when the first <c>embed_tokens.weight</c> in the checkpoint has the text hidden size as its width (checked
    /// against the config before loading); false for layouts where that tensor may be another width.
    /// </summary>
    bool EmbeddingWidthIsHiddenSize => true;
}

/// <summary>The default component split of canonical tensor names, shared by the built-in families.</summary>
public static class ModelComponents
{
    /// <summary>The component of a canonical name by its prefix.</summary>
    public static string Of(string n)
    {
        if (n.StartsWith("visual.merger.") || n.StartsWith("multi_modal_projector.") || n == "image_newline" || n.StartsWith("language_projection")
            || n.StartsWith("model.connector.")) return "projector";
        if (n.StartsWith("qformer.") || n == "query_tokens") return "qformer";
        if (n.StartsWith("model.perceiver_resampler.")) return "resampler";
        if (n.StartsWith("vision_tower.") || n.StartsWith("visual.") || n.StartsWith("vision_model.") || n.StartsWith("model.vision_model.")) return "vision";
        if (n.StartsWith("lm_head.") || n.StartsWith("language_model.lm_head.")) return "lm_head";
        return "language_model";
    }
}
