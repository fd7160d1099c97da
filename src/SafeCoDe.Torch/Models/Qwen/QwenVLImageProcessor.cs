using SafeCoDe.Torch.Checkpoints;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Processing.Images;

/// <summary>
/// Qwen2-VL / Qwen2.5-VL (HF Qwen2VLImageProcessor): <see cref="SmartResize"/> to multiples of patch·merge within
/// [min_pixels, max_pixels], normalise, then flatten into patches: rows ordered by merge window (row-major) and
/// within it by patch (row-major); each row holds channel × temporal × patch × patch values, the single frame
/// repeated over the temporal patch.
/// </summary>
public sealed class QwenVLImageProcessor : IImageProcessor
{
    private readonly QwenVLConfig _cfg;

    /// <inheritdoc/>
    public string Family => _cfg.ModelType;
    /// <inheritdoc/>
    public string ProcessorClass => "Qwen2VLImageProcessor";
    /// <inheritdoc/>
    public PreprocessorSettings Settings { get; }
    /// <summary>Smallest pixel count (height × width) after the smart resize.</summary>
    public int MinPixels { get; }
    /// <summary>Largest pixel count (height × width) after the smart resize.</summary>
    public int MaxPixels { get; }
    /// <summary>Vision patch side in pixels (must equal the vision config's).</summary>
    public int PatchSize { get; }
    /// <summary>Frames per patch; a still image is repeated this many times.</summary>
    public int TemporalPatchSize { get; }
    /// <summary>Patches merged per side into one token (2 → 4 patches per token).</summary>
    public int MergeSize { get; }

    internal static readonly PreprocessorSettings Defaults = new()
    {
        Size = new SizeSpec(ShortestEdge: 56 * 56, LongestEdge: 28 * 28 * 1280), ResampleCode = 3,
        ImageMean = PreprocessorSettings.ClipMean, ImageStd = PreprocessorSettings.ClipStd,
    };

    internal QwenVLImageProcessor(QwenVLConfig cfg, JsonConfig pre)
    {
        _cfg = cfg;
        // size may be {shortest_edge, longest_edge} (transformers 5) or {min_pixels, max_pixels}; top-level
        // min_pixels / max_pixels override it, as HF's constructor does
        var size = SizeSpec.Read(pre, "size", false, out var extras, "min_pixels", "max_pixels");
        var s = PreprocessorSettings.Read(pre, Defaults, false, "min_pixels", "max_pixels");
        int min = size?.ShortestEdge ?? (extras.TryGetValue("min_pixels", out var a) ? a : Defaults.Size!.ShortestEdge!.Value);
        int max = size?.LongestEdge ?? (extras.TryGetValue("max_pixels", out var b) ? b : Defaults.Size!.LongestEdge!.Value);
        min = pre.Int("min_pixels", min);
        max = pre.Int("max_pixels", max);
        if (min <= 0 || max < min) throw new ConfigException(pre.File, "max_pixels", $"need 0 < min_pixels <= max_pixels, found {min} and {max}");
        MinPixels = min; MaxPixels = max;
        PatchSize = pre.Int("patch_size", cfg.Vision.PatchSize);
        TemporalPatchSize = pre.Int("temporal_patch_size", cfg.Vision.TemporalPatchSize);
        MergeSize = pre.Int("merge_size", cfg.Vision.SpatialMergeSize);
        if (PatchSize <= 0 || TemporalPatchSize <= 0 || MergeSize <= 0)
            throw new ConfigException(pre.File, "patch_size", "patch_size, temporal_patch_size and merge_size must be positive");
        if (PatchSize != cfg.Vision.PatchSize || TemporalPatchSize != cfg.Vision.TemporalPatchSize || MergeSize != cfg.Vision.SpatialMergeSize)
            throw new ConfigException(pre.File, "patch_size",
                $"patch {PatchSize}/temporal {TemporalPatchSize}/merge {MergeSize} differ from the vision config's {cfg.Vision.PatchSize}/{cfg.Vision.TemporalPatchSize}/{cfg.Vision.SpatialMergeSize}");
        Settings = s with { Size = new SizeSpec(ShortestEdge: min, LongestEdge: max) };
    }

    /// <summary>
    /// HF smart_resize: both sides multiples of <paramref name="factor"/> (rounded half to even), scaled down when
    /// over <paramref name="maxPixels"/> and up when under <paramref name="minPixels"/>; aspect ratios over 200 are refused.
    /// </summary>
    public static (int Height, int Width) SmartResize(int height, int width, int factor, int minPixels, int maxPixels)
    {
        double ratio = (double)Math.Max(height, width) / Math.Min(height, width);
        if (ratio > 200) throw new ArgumentException($"absolute aspect ratio must be smaller than 200, got {ratio:R} for a {width}x{height} image");
        long hBar = (long)Math.Round((double)height / factor, MidpointRounding.ToEven) * factor;
        long wBar = (long)Math.Round((double)width / factor, MidpointRounding.ToEven) * factor;
        if (hBar * wBar > maxPixels)
        {
            double beta = Math.Sqrt((double)((long)height * width) / maxPixels);
            hBar = Math.Max(factor, (long)Math.Floor(height / beta / factor) * factor);
            wBar = Math.Max(factor, (long)Math.Floor(width / beta / factor) * factor);
        }
        else if (hBar * wBar < minPixels)
        {
            double beta = Math.Sqrt(minPixels / (double)((long)height * width));
            hBar = (long)Math.Ceiling(height * beta / factor) * factor;
            wBar = (long)Math.Ceiling(width * beta / factor) * factor;
        }
        return (checked((int)hBar), checked((int)wBar));
    }

    private (int H, int W) Target(int height, int width)
    {
        if (!Settings.DoResize) return (height, width);
        return SmartResize(height, width, PatchSize * MergeSize, MinPixels, MaxPixels);
    }

    /// <inheritdoc/>
    public ImageLayout Layout(int width, int height)
    {
        var (h, w) = Target(height, width);
        int gh = h / PatchSize, gw = w / PatchSize;
        return new ImageLayout(width, height, gh * gw / (MergeSize * MergeSize), GridThw: (1, gh, gw));
    }

    /// <inheritdoc/>
    public ProcessedImages Process(IReadOnlyList<RgbImage> images)
    {
        if (images.Count == 0) throw new ArgumentException("no images to process", nameof(images));
        int p = PatchSize, m = MergeSize, t = TemporalPatchSize, unit = p * m;
        int rowLen = 3 * t * p * p;
        var prepared = new List<(RgbImage Img, int Gh, int Gw)>();
        long rows = 0;
        foreach (var img in images)
        {
            var (h, w) = Target(img.Height, img.Width);
            if (h % unit != 0 || w % unit != 0)
                throw new ArgumentException($"Qwen2VLImageProcessor: a {w}x{h} image is not a multiple of patch_size x merge_size = {unit} (do_resize is off)");
            var r = Resampler.Resize(img, w, h, Settings.Filter);
            prepared.Add((r, h / p, w / p));
            rows += (long)(h / p) * (w / p);
        }
        var pv = ProcessedImages.Floats(rows, rowLen);
        var data = ProcessedImages.Span(pv);
        long row = 0;
        foreach (var (img, gh, gw) in prepared)
        {
            int hh = img.Height, ww = img.Width, plane = hh * ww;
            var chw = new float[3 * plane];
            Transforms.ToChw(img, chw, Settings);
            for (int by = 0; by < gh / m; by++)
                for (int bx = 0; bx < gw / m; bx++)
                    for (int my = 0; my < m; my++)
                        for (int mx = 0; mx < m; mx++, row++)
                        {
                            int y0 = (by * m + my) * p, x0 = (bx * m + mx) * p;
                            var dst = data.Slice(checked((int)(row * rowLen)), rowLen);
                            int o = 0;
                            for (int c = 0; c < 3; c++)
                            {
                                int start = o;
                                for (int py = 0; py < p; py++)
                                {
                                    chw.AsSpan(c * plane + (y0 + py) * ww + x0, p).CopyTo(dst.Slice(o, p));
                                    o += p;
                                }
                                for (int k = 1; k < t; k++, o += p * p) dst.Slice(start, p * p).CopyTo(dst.Slice(o, p * p));
                            }
                        }
        }
        var thw = prepared.SelectMany(x => new long[] { 1, x.Gh, x.Gw }).ToArray();
        var tensors = new Dictionary<string, Tensor>
        {
            ["pixel_values"] = pv,
            ["image_grid_thw"] = ProcessedImages.Longs(thw, images.Count, 3),
        };
        return new ProcessedImages(tensors, images.Select(img => Layout(img.Width, img.Height)).ToList());
    }
}
