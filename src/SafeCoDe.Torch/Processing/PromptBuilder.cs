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

    /// <summary>
    /// Renders and tokenises a conversation; images are described by their layouts (pixels not needed). The turns'
    /// text is user data: special-token strings in it are encoded as plain text unless <paramref name="parseSpecial"/>
    /// (an expert opt-in), and image placeholders in it are refused either way (see <see cref="UserText"/>).
    /// </summary>
    public EncodedPrompt Encode(IReadOnlyList<ChatTurn> turns, IReadOnlyList<ImageLayout> layouts, bool parseSpecial = false)
    {
        UserText.RefusePlaceholders(turns);
        string text;
        long[] ids;
        long[]? qformer = null;
        var marked = UserText.Mark(turns);
        if (Format is InstructBlipFormat)
        {
            // query-token placeholders go before everything, BOS included (HF's InstructBlipProcessor)
            var (plain, spans) = marked.Resolve(Format.Render(marked.Turns.Select(t => t with { Images = 0 }).ToList(), addGenerationPrompt: true));
            var imageId = ((InstructBlipConfig)Config).ImageTokenId
                ?? throw new NotSupportedException("this InstructBLIP config has no image_token_index (older checkpoints put the queries before the text differently)");
            var n = layouts.Sum(l => l.NumImageTokens);
            ids = [.. Enumerable.Repeat((long)imageId, n), .. Tokenizer.Encode(plain, true, parseSpecial ? [] : spans).Select(i => (long)i)];
            text = plain;
            if (qformerTokenizer is not null)
            {
                var q = string.Join("\n", turns.Where(t => t.Role == "user").Select(t => t.Text));
                qformer = qformerTokenizer.Encode(q, true, parseSpecial ? [] : [Range.All]).Select(i => (long)i).ToArray();
            }
        }
        else
        {
            var rendered = Format.ExpandImages(Format.Render(marked.Turns, addGenerationPrompt: true), layouts);
            if (Format is IdeficsFormat) rendered = IdeficsFormat.CollapseFakes(rendered);
            (text, var spans) = marked.Resolve(rendered);
            ids = Tokenizer.Encode(text, true, parseSpecial ? [] : spans).Select(i => (long)i).ToArray();
        }
        CheckImageTokens(ids, layouts);
        return new EncodedPrompt(ids, text, layouts, qformer);
    }

    /// <summary>The tokenizer must map the placeholder text to the config's image id, as many times as the images need.</summary>
    private void CheckImageTokens(long[] ids, IReadOnlyList<ImageLayout> layouts)
    {
        long? imageId = Config switch
        {
            LlavaConfig l => l.ImageTokenId, QwenVLConfig q => q.ImageTokenId, Idefics3Config s => s.ImageTokenId,
            InstructBlipConfig b => b.ImageTokenId, _ => Tokenizer.TokenToId("<image>"),
        };
        if (imageId is null) return;
        long want = Config is IdeficsConfig ? layouts.Count : layouts.Sum(l => (long)l.NumImageTokens);
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
        switch (Config)
        {
            case QwenVLConfig q:
                images["mm_token_type_ids"] = ids.eq(q.ImageTokenId).to(ScalarType.Int64);
                break;
            case InstructBlipConfig when p.QFormerIds is { } qf:
                images["qformer_input_ids"] = tensor(qf, ScalarType.Int64).view(1, -1);
                images["qformer_attention_mask"] = ones(1, qf.Length, ScalarType.Int64);
                break;
            case IdeficsConfig when pixels is not null:
                images["image_attention_mask"] = IdeficsImageAttention(p.Ids, p.Layouts.Count);
                break;
        }
        return new BackboneInputs(ids, mask, images);
    }

    /// <summary>IDEFICS: each token attends to the most recent image at or before it (tokens before any image see none).</summary>
    private Tensor IdeficsImageAttention(long[] ids, int nImages)
    {
        var imageId = Tokenizer.TokenToId("<image>") ?? throw new InvalidOperationException("the IDEFICS tokenizer has no <image> token");
        var m = new long[ids.Length * nImages];
        int current = -1;
        for (int t = 0; t < ids.Length; t++)
        {
            if (ids[t] == imageId) current++;
            if (current >= 0 && current < nImages) m[t * nImages + current] = 1;
        }
        return tensor(m, ScalarType.Int64).view(1, ids.Length, nImages);
    }
}
