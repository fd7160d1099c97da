namespace SafeCoDe.Torch.Processing.Images;

/// <summary>
/// An 8-bit RGB image in memory: <see cref="Pixels"/> holds <c>Height</c> rows of <c>Width</c> pixels, each pixel three
/// bytes R, G, B (row-major, interleaved, no padding). This is what decoding produces and what every image processor
/// consumes; steps that change pixels (e.g. SafeCoDe's noise) work on <see cref="Pixels"/> directly or on a
/// <see cref="Clone"/>.
/// </summary>
public sealed class RgbImage
{
    /// <summary>Width in pixels.</summary>
    public int Width { get; }
    /// <summary>Height in pixels.</summary>
    public int Height { get; }

    /// <summary>R, G, B bytes of every pixel, row by row; length is <c>Width * Height * 3</c>.</summary>
    public byte[] Pixels { get; }

    /// <summary>Wraps <paramref name="pixels"/> (not copied).</summary>
    public RgbImage(int width, int height, byte[] pixels)
    {
        if (width <= 0 || height <= 0) throw new ArgumentOutOfRangeException(nameof(width), $"image size must be positive, got {width}x{height}");
        ArgumentNullException.ThrowIfNull(pixels);
        long need = checked((long)width * height * 3);
        if (pixels.LongLength != need)
            throw new ArgumentException($"a {width}x{height} RGB image needs {need} bytes, got {pixels.LongLength}", nameof(pixels));
        Width = width;
        Height = height;
        Pixels = pixels;
    }

    /// <summary>A black image.</summary>
    public RgbImage(int width, int height) : this(width, height, new byte[checked((long)width * height * 3)]) { }

    /// <summary>An image filled with one color.</summary>
    public static RgbImage Filled(int width, int height, byte r, byte g, byte b)
    {
        var img = new RgbImage(width, height);
        var p = img.Pixels;
        for (int i = 0; i < p.Length; i += 3) { p[i] = r; p[i + 1] = g; p[i + 2] = b; }
        return img;
    }

    /// <summary>Width × height.</summary>
    public long PixelCount => (long)Width * Height;

    /// <summary>Index of the R byte of pixel (x, y).</summary>
    public int Offset(int x, int y) => (y * Width + x) * 3;

    /// <summary>The pixel at column <paramref name="x"/>, row <paramref name="y"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">(x, y) lies outside the image.</exception>
    public (byte R, byte G, byte B) this[int x, int y]
    {
        get
        {
            if ((uint)x >= (uint)Width || (uint)y >= (uint)Height) throw new ArgumentOutOfRangeException(nameof(x), $"({x}, {y}) is outside {Width}x{Height}");
            int o = Offset(x, y);
            return (Pixels[o], Pixels[o + 1], Pixels[o + 2]);
        }
        set
        {
            if ((uint)x >= (uint)Width || (uint)y >= (uint)Height) throw new ArgumentOutOfRangeException(nameof(x), $"({x}, {y}) is outside {Width}x{Height}");
            int o = Offset(x, y);
            Pixels[o] = value.R; Pixels[o + 1] = value.G; Pixels[o + 2] = value.B;
        }
    }

    /// <summary>A copy with its own pixel buffer.</summary>
    public RgbImage Clone() => new(Width, Height, (byte[])Pixels.Clone());

    /// <summary>The rectangle (x, y, width, height), which must lie inside the image.</summary>
    public RgbImage Crop(int x, int y, int width, int height)
    {
        if (x < 0 || y < 0 || width <= 0 || height <= 0 || x + width > Width || y + height > Height)
            throw new ArgumentOutOfRangeException(nameof(x), $"crop ({x}, {y}, {width}x{height}) does not fit in {Width}x{Height}");
        var dst = new RgbImage(width, height);
        for (int row = 0; row < height; row++)
            Buffer.BlockCopy(Pixels, Offset(x, y + row), dst.Pixels, row * width * 3, width * 3);
        return dst;
    }

    /// <summary>
    /// Places this image at (left, top) on a new <paramref name="width"/>x<paramref name="height"/> canvas of
    /// <paramref name="fill"/>; parts falling outside the canvas are cut off.
    /// </summary>
    public RgbImage PlaceOn(int width, int height, int left, int top, byte fill = 0)
    {
        var dst = new RgbImage(width, height);
        if (fill != 0) Array.Fill(dst.Pixels, fill);
        int x0 = Math.Max(0, left), x1 = Math.Min(width, left + Width);
        int y0 = Math.Max(0, top), y1 = Math.Min(height, top + Height);
        if (x1 <= x0) return dst;
        for (int y = y0; y < y1; y++)
            Buffer.BlockCopy(Pixels, Offset(x0 - left, y - top), dst.Pixels, (y * width + x0) * 3, (x1 - x0) * 3);
        return dst;
    }

    /// <summary>"RgbImage WxH".</summary>
    public override string ToString() => $"RgbImage {Width}x{Height}";
}
