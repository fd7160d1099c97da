using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Models.Llava;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Processing.Images;

/// <summary>
/// LLaVA-NeXT "anyres" (HF LlavaNextImageProcessor): the best resolution among image_grid_pinpoints, an
/// aspect-preserving resize into it, zero padding to it (centred), tiles of the crop size in row order, and in front
/// of them a base image resized to the square size; every tile then goes through the CLIP steps (shortest-edge
/// resize, center crop, normalise). Images with fewer tiles are zero-padded to the most tiles of the prompt.
/// </summary>
public sealed class LlavaNextImageProcessor : IImageProcessor
{
    private readonly LlavaConfig _cfg;
    private readonly int[][] _pinpoints;
    private readonly (int H, int W) _baseSize;
    private readonly int _tile;

    /// <inheritdoc/>
    public string Family => _cfg.ModelType;
    /// <inheritdoc/>
    public string ProcessorClass => "LlavaNextImageProcessor";
    /// <inheritdoc/>
    public PreprocessorSettings Settings { get; }

    internal static readonly PreprocessorSettings Defaults = BasicImageProcessor.ClipDefaults with { DoPad = true };
    internal static readonly int[][] DefaultPinpoints = [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]];

    internal LlavaNextImageProcessor(LlavaConfig cfg, JsonConfig pre)
    {
        _cfg = cfg;
        var s = PreprocessorSettings.Read(pre, Defaults, sizeDefaultsToSquare: false);
        if (s.Size is null) throw new ConfigException(pre.File, "size", "LLaVA-NeXT needs a size");
        if (s.DoCenterCrop && (s.CropSize?.Height is null || s.CropSize.Width is null))
            throw new ConfigException(pre.File, "crop_size", "do_center_crop is set but crop_size has no height and width");
        Settings = s;
        _pinpoints = pre.IntMatrix("image_grid_pinpoints", cfg.ImageGridPinpoints ?? DefaultPinpoints);
        if (_pinpoints.Length == 0 || _pinpoints.Any(p => p.Length != 2 || p[0] <= 0 || p[1] <= 0))
            throw new ConfigException(pre.File, "image_grid_pinpoints", "expected a non-empty list of positive [height, width] pairs");
        _baseSize = s.Size is { Height: { } h, Width: { } w } ? (h, w)
            : s.Size.ShortestEdge is { } se ? (se, se)
            : throw new ConfigException(pre.File, "size", $"LLaVA-NeXT needs size {{height, width}} or {{shortest_edge}}, found {s.Size}");
        _tile = s.CropSize?.Height ?? s.Size.Height ?? s.Size.ShortestEdge!.Value;
    }

    /// <summary>HF get_patch_output_size: the image scaled to fit the target, the constrained side exact.</summary>
    public static (int Height, int Width) PatchOutputSize(int height, int width, int targetHeight, int targetWidth)
    {
        double scaleW = (double)targetWidth / width, scaleH = (double)targetHeight / height;
        if (scaleW < scaleH) return (Math.Min((int)Math.Ceiling(height * scaleW), targetHeight), targetWidth);
        return (targetHeight, Math.Min((int)Math.Ceiling(width * scaleH), targetWidth));
    }

    /// <summary>The 8-bit tiles of one image before normalisation: base image first, then the grid in row order.</summary>
    public List<RgbImage> Tiles(RgbImage img)
    {
        var s = Settings;
        var (bh, bw) = AnyRes.SelectBestResolution(img.Height, img.Width, _pinpoints);
        var (nh, nw) = PatchOutputSize(img.Height, img.Width, bh, bw);
        var resized = Resampler.Resize(img, nw, nh, s.Filter);
        var padded = resized.PlaceOn(bw, bh, (bw - nw) / 2, (bh - nh) / 2);
        var tiles = new List<RgbImage> { Resampler.Resize(img, _baseSize.W, _baseSize.H, s.Filter) };
        for (int y = 0; y < bh; y += _tile)
            for (int x = 0; x < bw; x += _tile)
                tiles.Add(padded.Crop(x, y, Math.Min(_tile, bw - x), Math.Min(_tile, bh - y)));
        for (int i = 0; i < tiles.Count; i++)
        {
            var t = tiles[i];
            if (s.DoResize) t = Transforms.Resize(t, s.Size!, s.Filter);
            if (s.DoCenterCrop) t = Transforms.CenterCrop(t, s.CropSize!.Height!.Value, s.CropSize.Width!.Value);
            tiles[i] = t;
        }
        return tiles;
    }

    /// <inheritdoc/>
    public ImageLayout Layout(int width, int height)
    {
        int towerTile = _cfg.Vision.ImageSize, side = _cfg.Vision.PatchesPerSide;
        int baseTokens = side * side + (_cfg.VisionFeatureSelectStrategy == "full" ? 1 : 0);
        var (rows, cols) = AnyRes.GridShape(height, width, _pinpoints, towerTile);
        if (rows * cols == 0) return new ImageLayout(width, height, baseTokens + 1, 1);
        var (_, hh, _, ww) = AnyRes.UnpadRegion(rows * side, cols * side, height, width);
        // unpadded grid features plus one image_newline per feature row
        return new ImageLayout(width, height, baseTokens + hh * ww + hh, rows * cols + 1, rows, cols);
    }

    /// <inheritdoc/>
    public ProcessedImages Process(IReadOnlyList<RgbImage> images)
    {
        if (images.Count == 0) throw new ArgumentException("no images to process", nameof(images));
        var all = images.Select(Tiles).ToList();
        int h = all[0][0].Height, w = all[0][0].Width;
        foreach (var (tiles, i) in all.Select((t, i) => (t, i)))
            foreach (var t in tiles)
                if (t.Height != h || t.Width != w)
                    throw new ArgumentException($"LlavaNextImageProcessor: image {i} has a {t.Width}x{t.Height} tile but others are {w}x{h}");
        int maxTiles = all.Max(t => t.Count);
        if (!Settings.DoPad && all.Any(t => t.Count != maxTiles))
            throw new ArgumentException("LlavaNextImageProcessor: images have different tile counts and do_pad is off, so they cannot share one pixel_values tensor");
        int per = 3 * h * w;
        var pv = ProcessedImages.Floats(images.Count, maxTiles, 3, h, w); // tiles past an image's own stay zero
        var data = ProcessedImages.Span(pv);
        for (int i = 0; i < all.Count; i++)
            for (int j = 0; j < all[i].Count; j++)
                Transforms.ToChw(all[i][j], data.Slice((i * maxTiles + j) * per, per), Settings);
        var sizes = images.SelectMany(img => new long[] { img.Height, img.Width }).ToArray();
        var tensors = new Dictionary<string, Tensor>
        {
            ["pixel_values"] = pv,
            ["image_sizes"] = ProcessedImages.Longs(sizes, images.Count, 2),
        };
        return new ProcessedImages(tensors, images.Select(img => Layout(img.Width, img.Height)).ToList());
    }
}
