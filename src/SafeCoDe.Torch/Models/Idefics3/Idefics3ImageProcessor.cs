using SafeCoDe.Torch.Checkpoints;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Processing.Images;

/// <summary>
/// Idefics3 (HF Idefics3ImageProcessor): resize so the longest edge is <c>size.longest_edge</c> (the other side
/// even, everything under 4096), then with splitting resize up to multiples of <c>max_image_size</c>, cut that into
/// max_image_size² tiles in row order and append the whole image squashed to one tile (the global image); without
/// splitting, the image is squashed to one tile. Tiles are normalised and zero-padded to the largest tile with a
/// <c>pixel_attention_mask</c> marking real pixels.
/// </summary>
public sealed class Idefics3ImageProcessor : IImageProcessor
{
    /// <summary>HF's absolute cap on either side after the first resize.</summary>
    public const int MaxImageSide = 4096;

    private readonly Idefics3Config _cfg;

    /// <inheritdoc/>
    public string Family => _cfg.ModelType;
    /// <inheritdoc/>
    public string ProcessorClass => "Idefics3ImageProcessor";
    /// <inheritdoc/>
    public PreprocessorSettings Settings { get; }
    /// <summary>Side of a square tile in pixels (<c>max_image_size.longest_edge</c>).</summary>
    public int MaxTileSize { get; }
    /// <summary>Whether large images are cut into tiles plus a global image (<c>do_image_splitting</c>, default true).</summary>
    public bool DoImageSplitting { get; }

    /// <summary>Image tokens per tile: (vision image_size / patch_size)² / scale_factor².</summary>
    public int TokensPerTile { get; }

    internal static readonly PreprocessorSettings Defaults = new()
    {
        Size = new SizeSpec(LongestEdge: 4 * 364), ResampleCode = 1, DoPad = true,
        ImageMean = PreprocessorSettings.HalfMean, ImageStd = PreprocessorSettings.HalfMean,
    };

    internal Idefics3ImageProcessor(Idefics3Config cfg, JsonConfig pre)
    {
        _cfg = cfg;
        var s = PreprocessorSettings.Read(pre, Defaults, sizeDefaultsToSquare: false);
        if (s.DoResize && s.Size is not { LongestEdge: not null } && s.Size is not { Height: not null, Width: not null })
            throw new ConfigException(pre.File, "size", $"Idefics3 needs size {{longest_edge}} or {{height, width}}, found {s.Size}");
        Settings = s;
        var max = SizeSpec.Read(pre, "max_image_size", false, out _) ?? new SizeSpec(LongestEdge: 364);
        MaxTileSize = max.LongestEdge ?? throw new ConfigException(pre.File, "max_image_size", $"expected {{longest_edge}}, found {max}");
        DoImageSplitting = pre.Bool("do_image_splitting", true);
        int side = cfg.Vision.PatchesPerSide;
        TokensPerTile = side * side / (cfg.ScaleFactor * cfg.ScaleFactor);
    }

    /// <summary>HF get_resize_output_image_size of Idefics3: longest edge to <paramref name="longestEdge"/>, other side even, then capped at 4096.</summary>
    public static (int Height, int Width) LongestEdgeSize(int height, int width, int longestEdge)
    {
        double aspect = (double)width / height;
        if (width >= height)
        {
            width = longestEdge;
            height = (int)(width / aspect);
            if (height % 2 != 0) height++;
        }
        else
        {
            height = longestEdge;
            width = (int)(height * aspect);
            if (width % 2 != 0) width++;
        }
        height = Math.Max(height, 1);
        width = Math.Max(width, 1);
        aspect = (double)width / height;
        if (width >= height && width > MaxImageSide)
        {
            width = MaxImageSide;
            height = (int)(width / aspect);
        }
        else if (height > width && height > MaxImageSide)
        {
            height = MaxImageSide;
            width = (int)(height * aspect);
        }
        return (Math.Max(height, 1), Math.Max(width, 1));
    }

    /// <summary>HF resize_for_vision_encoder: both sides up to multiples of the tile size, the short side following the long one.</summary>
    public static (int Height, int Width) VisionEncoderSize(int height, int width, int tile)
    {
        double aspect = (double)width / height;
        if (width >= height)
        {
            width = (int)Math.Ceiling((double)width / tile) * tile;
            height = (int)(width / aspect);
            height = (int)Math.Ceiling((double)height / tile) * tile;
        }
        else
        {
            height = (int)Math.Ceiling((double)height / tile) * tile;
            width = (int)(height * aspect);
            width = (int)Math.Ceiling((double)width / tile) * tile;
        }
        return (height, width);
    }

    private (int H, int W) FirstResize(int height, int width)
    {
        if (!Settings.DoResize) return (height, width);
        if (Settings.Size!.LongestEdge is { } le) return LongestEdgeSize(height, width, le);
        return (Settings.Size.Height!.Value, Settings.Size.Width!.Value);
    }

    /// <inheritdoc/>
    public ImageLayout Layout(int width, int height)
    {
        var (h, w) = FirstResize(height, width);
        int rows = 0, cols = 0, tiles = 1;
        if (DoImageSplitting)
        {
            var (vh, vw) = VisionEncoderSize(h, w, MaxTileSize);
            if (vh > MaxTileSize || vw > MaxTileSize)
            {
                rows = (int)Math.Ceiling((double)vh / MaxTileSize);
                cols = (int)Math.Ceiling((double)vw / MaxTileSize);
                tiles = rows * cols + 1;
            }
        }
        return new ImageLayout(width, height, tiles * TokensPerTile, tiles, rows, cols, TokensPerTile);
    }

    /// <summary>The 8-bit tiles of one image before normalisation: the grid in row order, then the global image.</summary>
    public List<RgbImage> Tiles(RgbImage img)
    {
        var f = Settings.Filter;
        var (h, w) = FirstResize(img.Height, img.Width);
        img = Resampler.Resize(img, w, h, f);
        if (!DoImageSplitting) return [Resampler.Resize(img, MaxTileSize, MaxTileSize, f)];
        var (vh, vw) = VisionEncoderSize(img.Height, img.Width, MaxTileSize);
        img = Resampler.Resize(img, vw, vh, f);
        if (vh <= MaxTileSize && vw <= MaxTileSize) return [img];
        var tiles = new List<RgbImage>();
        for (int y = 0; y + MaxTileSize <= vh; y += MaxTileSize)
            for (int x = 0; x + MaxTileSize <= vw; x += MaxTileSize)
                tiles.Add(img.Crop(x, y, MaxTileSize, MaxTileSize));
        tiles.Add(Resampler.Resize(img, MaxTileSize, MaxTileSize, f));
        return tiles;
    }

    /// <inheritdoc/>
    public ProcessedImages Process(IReadOnlyList<RgbImage> images)
    {
        if (images.Count == 0) throw new ArgumentException("no images to process", nameof(images));
        var tiles = images.SelectMany(Tiles).ToList();
        int maxH = tiles.Max(t => t.Height), maxW = tiles.Max(t => t.Width);
        if (!Settings.DoPad && tiles.Any(t => t.Height != maxH || t.Width != maxW))
            throw new ArgumentException("Idefics3ImageProcessor: tiles differ in size and do_pad is off, so they cannot share one pixel_values tensor");
        int plane = maxH * maxW, per = 3 * plane;
        var pv = ProcessedImages.Floats(1, tiles.Count, 3, maxH, maxW);
        var maskT = ProcessedImages.Floats(1, tiles.Count, maxH, maxW);
        var data = ProcessedImages.Span(pv);
        var mask = ProcessedImages.Span(maskT);
        for (int i = 0; i < tiles.Count; i++)
        {
            var t = tiles[i];
            var chw = new float[3 * t.Width * t.Height];
            Transforms.ToChw(t, chw, Settings);
            for (int c = 0; c < 3; c++)
                for (int y = 0; y < t.Height; y++)
                    chw.AsSpan((c * t.Height + y) * t.Width, t.Width).CopyTo(data.Slice(i * per + c * plane + y * maxW, t.Width));
            for (int y = 0; y < t.Height; y++) mask.Slice(i * plane + y * maxW, t.Width).Fill(1f);
        }
        var tensors = new Dictionary<string, Tensor> { ["pixel_values"] = pv };
        if (Settings.DoPad) tensors["pixel_attention_mask"] = maskT;
        else maskT.Dispose();
        return new ProcessedImages(tensors, images.Select(img => Layout(img.Width, img.Height)).ToList());
    }
}
