using System.Runtime.CompilerServices;

namespace SafeCoDe.Torch.Processing.Images;

/// <summary>
/// The geometric and numeric steps of HF's torchvision image-processor backend, on 8-bit images (every step before
/// normalisation stays in 8 bits there too), with the same integer and floating-point arithmetic.
/// </summary>
public static class Transforms
{
    /// <summary>
    /// Output (height, width) for a size spec, as the backend's resize computes it: shortest+longest edge (DETR
    /// style), shortest edge keeping the aspect ratio, max height/width, or an exact height/width.
    /// </summary>
    public static (int Height, int Width) ResizeTarget(int height, int width, SizeSpec size)
    {
        if (size.ShortestEdge is { } se && size.LongestEdge is { } le) return SizeWithAspectRatio(height, width, se, le);
        if (size.ShortestEdge is { } s) return ShortestEdge(height, width, s);
        if (size.MaxHeight is { } mh && size.MaxWidth is { } mw)
        {
            double scale = Math.Min((double)mh / height, (double)mw / width);
            return ((int)(height * scale), (int)(width * scale));
        }
        if (size.Height is { } h && size.Width is { } w) return (h, w);
        throw new ArgumentException($"size {size} has neither height and width, max_height and max_width, nor shortest_edge");
    }

    /// <summary>HF get_resize_output_image_size with default_to_square=False: the short side becomes <paramref name="size"/>.</summary>
    public static (int Height, int Width) ShortestEdge(int height, int width, int size)
    {
        int shortSide = Math.Min(height, width), longSide = Math.Max(height, width);
        int newLong = (int)((double)size * longSide / shortSide);
        return width <= height ? (newLong, size) : (size, newLong);
    }

    /// <summary>HF get_size_with_aspect_ratio (shortest edge capped by a longest edge).</summary>
    public static (int Height, int Width) SizeWithAspectRatio(int height, int width, int size, int maxSize)
    {
        double? raw = null;
        double minOrig = Math.Min(height, width), maxOrig = Math.Max(height, width);
        if (maxOrig / minOrig * size > maxSize)
        {
            raw = maxSize * minOrig / maxOrig;
            size = (int)Math.Round(raw.Value, MidpointRounding.ToEven);
        }
        if ((height <= width && height == size) || (width <= height && width == size)) return (height, width);
        if (width < height)
            return (raw is { } r1 ? (int)(r1 * height / width) : (int)((double)size * height / width), size);
        return (size, raw is { } r2 ? (int)(r2 * width / height) : (int)((double)size * width / height));
    }

    /// <summary>HF's resize: the target size derived from <paramref name="size"/> (as <c>ResizeTarget</c> computes it), resampled with <paramref name="filter"/>.</summary>
    public static RgbImage Resize(RgbImage img, SizeSpec size, ResampleFilter filter)
    {
        var (h, w) = ResizeTarget(img.Height, img.Width, size);
        return Resampler.Resize(img, w, h, filter);
    }

    /// <summary>
    /// Center crop to height x width; a crop larger than the image first pads it with zeros (more on the right and
    /// bottom when the difference is odd), as the backend does.
    /// </summary>
    public static RgbImage CenterCrop(RgbImage img, int height, int width)
    {
        if (height <= 0 || width <= 0) throw new ArgumentOutOfRangeException(nameof(height), $"crop size must be positive, got {height}x{width}");
        if (width > img.Width || height > img.Height)
        {
            int left = width > img.Width ? (width - img.Width) / 2 : 0;
            int top = height > img.Height ? (height - img.Height) / 2 : 0;
            int right = width > img.Width ? (width - img.Width + 1) / 2 : 0;
            int bottom = height > img.Height ? (height - img.Height + 1) / 2 : 0;
            img = img.PlaceOn(img.Width + left + right, img.Height + top + bottom, left, top);
            if (img.Width == width && img.Height == height) return img;
        }
        int cropTop = (int)((img.Height - height) / 2.0);
        int cropLeft = (int)((img.Width - width) / 2.0);
        if (cropTop == 0 && cropLeft == 0 && img.Width == width && img.Height == height) return img;
        return img.Crop(cropLeft, cropTop, width, height);
    }

    /// <summary>
    /// Rescale and normalise into <paramref name="dst"/> as [3, H, W] floats, with the backend's float32
    /// arithmetic: with both steps fused, (x − mean·(1/f)) / (std·(1/f)); otherwise x·f, or (x − mean) / std.
    /// </summary>
    /// <remarks>Compiled fully optimised at once: a per-pixel loop a request runs twice would otherwise run unoptimised for its first dozens of calls.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void ToChw(RgbImage img, Span<float> dst, PreprocessorSettings s)
    {
        int n = img.Width * img.Height;
        if (dst.Length < 3 * n) throw new ArgumentException($"destination holds {dst.Length} floats, need {3 * n}");
        var (mean, std, scale) = Coefficients(s);
        var p = img.Pixels;
        for (int c = 0; c < 3; c++)
        {
            var plane = dst.Slice(c * n, n);
            float m = mean[c], sd = std[c];
            if (s.DoNormalize)
                for (int i = 0; i < n; i++) plane[i] = (p[i * 3 + c] - m) / sd;
            else if (s.DoRescale)
                for (int i = 0; i < n; i++) plane[i] = p[i * 3 + c] * scale;
            else
                for (int i = 0; i < n; i++) plane[i] = p[i * 3 + c];
        }
    }

    /// <summary>Per-channel (mean, std) in the units of the 8-bit input, and the rescale factor, as float32.</summary>
    internal static (float[] Mean, float[] Std, float Scale) Coefficients(PreprocessorSettings s)
    {
        var mean = new float[3];
        var std = new float[3];
        float inv = (float)(1.0 / s.RescaleFactor);
        for (int c = 0; c < 3; c++)
        {
            mean[c] = (float)s.ImageMean[c];
            std[c] = (float)s.ImageStd[c];
            if (s.DoNormalize && s.DoRescale) { mean[c] *= inv; std[c] *= inv; }
        }
        return (mean, std, (float)s.RescaleFactor);
    }
}
