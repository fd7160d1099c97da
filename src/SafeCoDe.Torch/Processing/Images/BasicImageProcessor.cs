using SafeCoDe.Torch.Checkpoints;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Processing.Images;

/// <summary>
/// The single-tile processors: CLIPImageProcessor / LlavaImageProcessor (LLaVA-1.5: shortest-edge resize, center
/// crop; Llava's optional pad-to-square first), BlipImageProcessor (InstructBLIP: resize to height x width) and
/// IdeficsImageProcessor (IDEFICS v1: resize to image_size²). Each image becomes one [3, H, W] tile.
/// </summary>
public sealed class BasicImageProcessor : IImageProcessor
{
    private readonly Func<int, int, ImageLayout> _layout;
    private readonly bool _padToSquare;
    private readonly bool _perSample;

    /// <inheritdoc/>
    public string Family { get; }
    /// <inheritdoc/>
    public string ProcessorClass { get; }
    /// <inheritdoc/>
    public PreprocessorSettings Settings { get; }

    private BasicImageProcessor(string family, string cls, PreprocessorSettings s, Func<int, int, ImageLayout> layout, bool padToSquare, bool perSample)
    {
        Family = family; ProcessorClass = cls; Settings = s; _layout = layout; _padToSquare = padToSquare; _perSample = perSample;
    }

    internal static readonly PreprocessorSettings ClipDefaults = new()
    {
        Size = new SizeSpec(ShortestEdge: 224), CropSize = SizeSpec.Square(224), DoCenterCrop = true, ResampleCode = 3,
        ImageMean = PreprocessorSettings.ClipMean, ImageStd = PreprocessorSettings.ClipStd,
    };

    internal static readonly PreprocessorSettings BlipDefaults = new()
    {
        Size = SizeSpec.Square(384), ResampleCode = 3, ImageMean = PreprocessorSettings.ClipMean, ImageStd = PreprocessorSettings.ClipStd,
    };

    internal static readonly PreprocessorSettings IdeficsDefaults = BlipDefaults with { Size = SizeSpec.Square(224) };

    /// <summary>LLaVA-1.5 with CLIPImageProcessor or LlavaImageProcessor.</summary>
    internal static BasicImageProcessor Llava(LlavaConfig cfg, JsonConfig pre, string cls)
    {
        var s = PreprocessorSettings.Read(pre, ClipDefaults, sizeDefaultsToSquare: false);
        Require(pre, s, crop: s.DoCenterCrop);
        int side = cfg.Vision.PatchesPerSide;
        int tokens = side * side + (cfg.VisionFeatureSelectStrategy == "full" ? 1 : 0);
        return new BasicImageProcessor(cfg.ModelType, cls, s, (w, h) => new ImageLayout(w, h, tokens), padToSquare: cls == "LlavaImageProcessor", perSample: false);
    }

    /// <summary>InstructBLIP with BlipImageProcessor: the language model sees the Q-Former's query tokens.</summary>
    internal static BasicImageProcessor InstructBlip(InstructBlipConfig cfg, JsonConfig pre)
    {
        var s = PreprocessorSettings.Read(pre, BlipDefaults, sizeDefaultsToSquare: true);
        Require(pre, s, crop: s.DoCenterCrop);
        int tokens = cfg.NumQueryTokens;
        return new BasicImageProcessor(cfg.ModelType, "BlipImageProcessor", s, (w, h) => new ImageLayout(w, h, tokens), false, false);
    }

    /// <summary>IDEFICS v1: image_size (when present) sets a square size; one &lt;image&gt; token per image.</summary>
    internal static BasicImageProcessor Idefics(IdeficsConfig cfg, JsonConfig pre)
    {
        var s = PreprocessorSettings.Read(pre, IdeficsDefaults, sizeDefaultsToSquare: true);
        if (pre.IntOrNull("image_size") is { } side)
        {
            if (side <= 0) throw new ConfigException(pre.File, "image_size", $"must be positive, found {side}");
            s = s with { Size = SizeSpec.Square(side) };
        }
        Require(pre, s, crop: s.DoCenterCrop);
        return new BasicImageProcessor(cfg.ModelType, "IdeficsImageProcessor", s, (w, h) => new ImageLayout(w, h, 1), false, perSample: true);
    }

    private static void Require(JsonConfig pre, PreprocessorSettings s, bool crop)
    {
        if (s.DoResize && s.Size is null) throw new ConfigException(pre.File, "size", "do_resize is set but no size is given");
        if (crop && (s.CropSize?.Height is null || s.CropSize.Width is null))
            throw new ConfigException(pre.File, "crop_size", "do_center_crop is set but crop_size has no height and width");
    }

    /// <inheritdoc/>
    public ImageLayout Layout(int width, int height) => _layout(width, height);

    /// <summary>The 8-bit tile an image becomes before normalisation.</summary>
    public RgbImage Prepare(RgbImage img)
    {
        var s = Settings;
        if (_padToSquare && s.DoPad && img.Width != img.Height)
        {
            // LlavaImageProcessor: pad to a square of the long side, centred, in the mean color (int(mean * 255))
            int side = Math.Max(img.Width, img.Height);
            int left = (side - img.Width) / 2, top = (side - img.Height) / 2;
            var bg = s.ImageMean.Select(m => (byte)Math.Clamp((int)(m * 255), 0, 255)).ToArray();
            var sq = RgbImage.Filled(side, side, bg[0], bg[1], bg[2]);
            for (int y = 0; y < img.Height; y++)
                Buffer.BlockCopy(img.Pixels, y * img.Width * 3, sq.Pixels, ((top + y) * side + left) * 3, img.Width * 3);
            img = sq;
        }
        if (s.DoResize) img = Transforms.Resize(img, s.Size!, s.Filter);
        if (s.DoCenterCrop) img = Transforms.CenterCrop(img, s.CropSize!.Height!.Value, s.CropSize.Width!.Value);
        return img;
    }

    /// <inheritdoc/>
    /// <exception cref="ArgumentException">No images, or images that end up with different tile sizes.</exception>
    public ProcessedImages Process(IReadOnlyList<RgbImage> images)
    {
        if (images.Count == 0) throw new ArgumentException("no images to process", nameof(images));
        var tiles = images.Select(Prepare).ToList();
        int h = tiles[0].Height, w = tiles[0].Width;
        for (int i = 1; i < tiles.Count; i++)
            if (tiles[i].Height != h || tiles[i].Width != w)
                throw new ArgumentException($"{ProcessorClass}: image {i} becomes {tiles[i].Width}x{tiles[i].Height} but image 0 becomes {w}x{h}; " +
                                            "without a center crop, images of different aspect ratios cannot share one pixel_values tensor");
        int per = 3 * h * w;
        long[] shape = _perSample ? [1, tiles.Count, 3, h, w] : [tiles.Count, 3, h, w];
        var pv = ProcessedImages.Floats(shape);
        var data = ProcessedImages.Span(pv);
        for (int i = 0; i < tiles.Count; i++) Transforms.ToChw(tiles[i], data.Slice(i * per, per), Settings);
        var tensors = new Dictionary<string, Tensor> { ["pixel_values"] = pv };
        return new ProcessedImages(tensors, images.Select(img => Layout(img.Width, img.Height)).ToList());
    }
}
