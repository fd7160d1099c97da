using System.Runtime.CompilerServices;

namespace SafeCoDe.Torch.Processing.Images;

/// <summary>Interpolation used to resize, by the PIL numbering <c>resample</c> uses in preprocessor_config.json.</summary>
public enum ResampleFilter
{
    /// <summary>PIL 0: nearest neighbour (torchvision NEAREST_EXACT).</summary>
    Nearest = 0,
    /// <summary>PIL 2: antialiased bilinear (triangle filter).</summary>
    Bilinear = 2,
    /// <summary>PIL 3: antialiased bicubic (Keys cubic, a = −0.5).</summary>
    Bicubic = 3,
}

/// <summary>
/// Separable resizing of 8-bit images with the arithmetic of torchvision's tensor resize on CPU
/// (<c>antialias=True</c>, uint8 kept native): per axis, the filter is stretched by the downscale factor, its weights
/// are normalised in double precision and then turned into 16-bit fixed point with the largest precision that keeps
/// them in range; a pass sums pixel × weight in integers, rounds once and clamps to 0–255. The width is resampled
/// first, then the height, each pass rounding to 8 bits; an axis whose size does not change is not touched. This is
/// Pillow's scheme too, so PIL-based references agree within one level.
/// </summary>
public static class Resampler
{
    /// <summary>Returns a <paramref name="width"/>x<paramref name="height"/> copy (the image itself when the size is unchanged).</summary>
    public static RgbImage Resize(RgbImage src, int width, int height, ResampleFilter filter)
    {
        ArgumentNullException.ThrowIfNull(src);
        if (width <= 0 || height <= 0) throw new ArgumentOutOfRangeException(nameof(width), $"target size must be positive, got {width}x{height}");
        long max = Runtime.InputLimits.Current.MaxProcessedPixels;
        if ((long)width * height > max)
            throw new Runtime.InputLimitException($"the preprocessor would resize the image to {width}x{height} pixels, over the {max:N0}-pixel limit (InputLimits.MaxProcessedPixels; check preprocessor_config.json's sizes)");
        if (width == src.Width && height == src.Height) return src;
        if (filter == ResampleFilter.Nearest) return Nearest(src, width, height);
        var img = src;
        if (width != src.Width) img = Horizontal(img, width, Weights.Cached(src.Width, width, filter));
        if (height != src.Height) img = Vertical(img, height, Weights.Cached(src.Height, height, filter));
        return img;
    }

    /// <summary>Fixed-point weights of one axis: for output i, taps start at input <c>Start[i]</c>, <c>Count[i]</c> of them.</summary>
    internal sealed class Weights
    {
        public int[] Start = [];
        public int[] Count = [];
        public short[] K = [];
        public int Taps;
        public int Precision;

        private static readonly System.Collections.Concurrent.ConcurrentDictionary<(int, int, ResampleFilter), Weights> Made = new();

        /// <summary>
        /// <see cref="For"/>, kept per (input size, output size, filter) for the process: a server resizes the same
        /// camera sizes to the same tile size again and again. The tables are never changed once made; at most
        /// <c>MaxCached</c> of them are kept (they are a few kB each).
        /// </summary>
        public static Weights Cached(int inSize, int outSize, ResampleFilter filter)
        {
            if (Made.TryGetValue((inSize, outSize, filter), out var w)) return w;
            w = For(inSize, outSize, filter);
            if (Made.Count < MaxCached) Made.TryAdd((inSize, outSize, filter), w);
            return w;
        }

        private const int MaxCached = 256;

        public static Weights For(int inSize, int outSize, ResampleFilter filter)
        {
            double support0 = filter == ResampleFilter.Bicubic ? 2.0 : 1.0; // interp_size / 2
            Func<double, double> f = filter == ResampleFilter.Bicubic ? Cubic : Triangle;
            double scale = (double)inSize / outSize;
            double support = scale >= 1.0 ? support0 * scale : support0;
            int taps = (int)Math.Ceiling(support) * 2 + 1;
            double invScale = scale >= 1.0 ? 1.0 / scale : 1.0;
            var w = new double[outSize * taps];
            var start = new int[outSize];
            var count = new int[outSize];
            for (int i = 0; i < outSize; i++)
            {
                double center = scale * (i + 0.5);
                long xmin = Math.Max((long)(center - support + 0.5), 0L);
                long xsize = Math.Min((long)(center + support + 0.5), inSize) - xmin;
                if (xsize < 0) xsize = 0;
                double total = 0;
                int b = i * taps;
                for (int j = 0; j < xsize; j++)
                {
                    double v = f((j + xmin - center + 0.5) * invScale);
                    w[b + j] = v;
                    total += v;
                }
                if (total != 0.0)
                    for (int j = 0; j < xsize; j++) w[b + j] /= total;
                start[i] = (int)xmin;
                count[i] = (int)xsize;
            }
            double wMax = w[0];
            foreach (var v in w) if (v > wMax) wMax = v;
            int precision;
            for (precision = 0; precision < 22; precision++)
            {
                int next = (int)(0.5 + wMax * (1 << (precision + 1)));
                if (next >= 1 << 15) break;
            }
            var k = new short[w.Length];
            double one = 1 << precision;
            for (int i = 0; i < w.Length; i++)
                k[i] = (short)(int)(w[i] < 0 ? -0.5 + w[i] * one : 0.5 + w[i] * one);
            return new Weights { Start = start, Count = count, K = k, Taps = taps, Precision = precision };
        }

        private static double Triangle(double x)
        {
            if (x < 0.0) x = -x;
            return x < 1.0 ? 1.0 - x : 0.0;
        }

        private static double Cubic(double x)
        {
            const double a = -0.5;
            x = Math.Abs(x);
            if (x < 1.0) return ((a + 2) * x - (a + 3)) * x * x + 1;
            if (x < 2.0) return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
            return 0.0;
        }
    }

    private static RgbImage Horizontal(RgbImage src, int outW, Weights wt)
    {
        int h = src.Height, inW = src.Width;
        var dst = new RgbImage(outW, h);
        byte[] s = src.Pixels, d = dst.Pixels;
        int prec = wt.Precision, round = prec > 0 ? 1 << (prec - 1) : 0;
        Rows(h, outW, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (int y) =>
        {
            int rowIn = y * inW * 3, rowOut = y * outW * 3;
            for (int x = 0; x < outW; x++)
            {
                int start = wt.Start[x], n = wt.Count[x], kb = x * wt.Taps;
                int r = round, g = round, b = round;
                int p = rowIn + start * 3;
                for (int j = 0; j < n; j++, p += 3)
                {
                    int k = wt.K[kb + j];
                    r += s[p] * k; g += s[p + 1] * k; b += s[p + 2] * k;
                }
                int o = rowOut + x * 3;
                d[o] = Clamp(r >> prec); d[o + 1] = Clamp(g >> prec); d[o + 2] = Clamp(b >> prec);
            }
        });
        return dst;
    }

    private static RgbImage Vertical(RgbImage src, int outH, Weights wt)
    {
        int w = src.Width;
        var dst = new RgbImage(w, outH);
        byte[] s = src.Pixels, d = dst.Pixels;
        int prec = wt.Precision, round = prec > 0 ? 1 << (prec - 1) : 0;
        int stride = w * 3;
        Rows(outH, w, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (int y) =>
        {
            int start = wt.Start[y], n = wt.Count[y], kb = y * wt.Taps;
            var acc = new int[stride];
            Array.Fill(acc, round);
            for (int j = 0; j < n; j++)
            {
                int k = wt.K[kb + j];
                int row = (start + j) * stride;
                for (int i = 0; i < stride; i++) acc[i] += s[row + i] * k;
            }
            int o = y * stride;
            for (int i = 0; i < stride; i++) d[o + i] = Clamp(acc[i] >> prec);
        });
        return dst;
    }

    /// <summary>torchvision NEAREST_EXACT: source index floor((i + 0.5) · in/out), clamped.</summary>
    private static RgbImage Nearest(RgbImage src, int outW, int outH)
    {
        var xs = NearestIndex(src.Width, outW);
        var ys = NearestIndex(src.Height, outH);
        var dst = new RgbImage(outW, outH);
        for (int y = 0; y < outH; y++)
            for (int x = 0; x < outW; x++)
            {
                int si = src.Offset(xs[x], ys[y]), di = (y * outW + x) * 3;
                dst.Pixels[di] = src.Pixels[si]; dst.Pixels[di + 1] = src.Pixels[si + 1]; dst.Pixels[di + 2] = src.Pixels[si + 2];
            }
        return dst;
    }

    private static int[] NearestIndex(int inSize, int outSize)
    {
        float scale = (float)inSize / outSize;
        var idx = new int[outSize];
        for (int i = 0; i < outSize; i++)
            idx[i] = (int)Math.Min((long)MathF.Floor((float)((i + 0.5) * scale)), inSize - 1);
        return idx;
    }

    private static byte Clamp(int v) => v < 0 ? (byte)0 : v > 255 ? (byte)255 : (byte)v;

    /// <summary>Runs <paramref name="row"/> for every output row: on the thread pool for large images, inline below 64k pixels.</summary>
    private static void Rows(int rows, int width, Action<int> row)
    {
        if ((long)rows * width < 1 << 16)
            for (int y = 0; y < rows; y++) row(y);
        else
            Parallel.For(0, rows, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, row);
    }
}
