using SafeCoDe.Eval.Benchmarks;
using SafeCoDe.Torch.Processing.Images;

namespace SafeCoDe.Eval;

/// <summary>
/// Several images as one, for an engine that takes one image per request: side by side, as VLMEvalKit's
/// <c>concat_images_vlmeval</c> (mode 'h', no target size) combines them for single-image models — width the sum,
/// height the tallest, each pasted at the top, black where an image is shorter.
/// </summary>
public static class ImageStrip
{
    /// <summary>The images side by side.</summary>
    public static RgbImage Horizontal(IReadOnlyList<RgbImage> images)
    {
        ArgumentOutOfRangeException.ThrowIfZero(images.Count);
        int width = images.Sum(i => i.Width), height = images.Max(i => i.Height);
        var strip = new RgbImage(width, height);
        int x = 0;
        foreach (var im in images)
        {
            for (int y = 0; y < im.Height; y++)
                Array.Copy(im.Pixels, (long)y * im.Width * 3, strip.Pixels, ((long)y * width + x) * 3, (long)im.Width * 3);
            x += im.Width;
        }
        return strip;
    }

    /// <summary>Decodes a prompt's images (its image, then <see cref="EvalPrompt.MoreImages"/>) and puts them side by side.</summary>
    public static RgbImage Combine(EvalPrompt prompt, ImageDecodeOptions? limits) =>
        Horizontal(new[] { prompt.Image! }.Concat(prompt.MoreImages).Select(r => r switch
        {
            ImageRef.File f => ImageDecoder.Load(f.Path, limits),
            ImageRef.Embedded e => ImageDecoder.Decode(e.Bytes, e.Origin, limits),
            _ => throw new ArgumentException($"unknown image reference {r}"),
        }).ToList());

    /// <summary>What a run records for a prompt with several images: how many, and how they were combined.</summary>
    public static string? Note(EvalPrompt prompt) => prompt.MoreImages.Count == 0 ? null
        : $"{prompt.MoreImages.Count + 1} images combined side by side into one (the engine takes one image per request; as VLMEvalKit does for single-image models)";
}
