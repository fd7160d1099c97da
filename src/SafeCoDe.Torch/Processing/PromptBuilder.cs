using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Models;
using SafeCoDe.Torch.Processing.Chat;
using SafeCoDe.Torch.Processing.Images;
using SafeCoDe.Torch.Processing.Tokenizers;
using TorchSharp;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Processing;

/// <summary>A tokenised prompt: ids and the text-side extras each family needs besides the pixels.</summary>
public sealed record EncodedPrompt(long[] Ids, string Text, IReadOnlyList<ImageLayout> Layouts, long[]? QFormerIds)
{
    /// <summary>Number of prompt ids.</summary>
    public int Length => Ids.Length;
}

/// <summary>
/// Turns a user query (and optionally one image) into model inputs for a family: chat format → image placeholders
/// expanded from the image processor's layouts → token ids, plus the per-family extras (Qwen token types, IDEFICS
/// image-attention mask, InstructBLIP Q-Former ids). The same ids serve the real and the noised image.
/// </summary>
public sealed class PromptBuilder(ModelConfig config, ITokenizer tokenizer, ChatFormat format, ITokenizer? qformerTokenizer = null)
{
    /// <summary>The checkpoint's config (image token ids, InstructBLIP's settings).</summary>
    public ModelConfig Config { get; } = config;
    /// <summary>The text tokenizer.</summary>
    public ITokenizer Tokenizer { get; } = tokenizer;
    /// <summary>The chat format the prompts are rendered with.</summary>
    public ChatFormat Format { get; } = format;

    /// <summary>The second tokenizer the family's prompts need (InstructBLIP's Q-Former tokenizer), or null.</summary>
    public ITokenizer? SideTokenizer { get; } = qformerTokenizer;

    private readonly IModelFamily _family = ModelFamilies.Of(config);

    /// <summary>
    /// Renders and tokenises a conversation; images are described by their layouts (pixels not needed). The turns'
    /// text is user data: special-token strings in it are encoded as plain text unless <paramref name="parseSpecial"/>
    /// (an expert opt-in), and image placeholders in it are refused either way (see <see cref="UserText"/>).
    /// </summary>
    public EncodedPrompt Encode(IReadOnlyList<ChatTurn> turns, IReadOnlyList<ImageLayout> layouts, bool parseSpecial = false)
    {
        UserText.RefusePlaceholders(turns);
        var marked = UserText.Mark(turns);
        var encoded = _family.Encode(this, marked, layouts, parseSpecial);
        if (encoded is null)
        {
            var (text, spans) = marked.Resolve(Format.ExpandImages(Format.Render(marked.Turns, addGenerationPrompt: true), layouts));
            encoded = new EncodedPrompt(Tokenizer.Encode(text, true, parseSpecial ? [] : spans).Select(i => (long)i).ToArray(), text, layouts, null);
        }
        CheckImageTokens(encoded.Ids, layouts);
        return encoded;
    }

    /// <summary>The tokenizer must map the placeholder text to the config's image id, as many times as the images need.</summary>
    private void CheckImageTokens(long[] ids, IReadOnlyList<ImageLayout> layouts)
    {
        long? imageId = _family.ImageTokenId(Config, Tokenizer);
        if (imageId is null) return;
        long want = _family.ImageTokenCount(layouts);
        long have = ids.LongCount(i => i == imageId);
        if (have != want)
            throw new InvalidOperationException(
                $"the prompt encodes to {have} image tokens (id {imageId}) but the image(s) need {want}: the tokenizer does not map the image placeholder to id {imageId} (check added_tokens / tokenizer.json against config.json)");
    }

    /// <summary>Model inputs for one row: the encoded prompt with one set of processed pixels (real or noised).</summary>
    public BackboneInputs Inputs(EncodedPrompt p, ProcessedImages? pixels, ScalarType pixelDType)
    {
        var ids = tensor(p.Ids, ScalarType.Int64).view(1, -1);
        var mask = ones_like(ids);
        var images = new Dictionary<string, Tensor>();
        if (pixels is not null)
            foreach (var (k, v) in pixels.Tensors)
                images[k] = k == "pixel_values" ? v.to(pixelDType) : v.alias();
        _family.AddInputs(this, p, pixels, ids, images);
        return new BackboneInputs(ids, mask, images);
    }
}
