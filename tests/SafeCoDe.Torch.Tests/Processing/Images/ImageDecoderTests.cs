using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using NUnit.Framework;
using SafeCoDe.Torch.Processing.Images;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Bmp;
using SixLabors.ImageSharp.Formats.Jpeg;
using SixLabors.ImageSharp.Formats.Webp;
using SixLabors.ImageSharp.Metadata.Profiles.Exif;
using SixLabors.ImageSharp.PixelFormats;

namespace SafeCoDe.Torch.Tests.Processing.Images;

/// <summary>Encoded test images, made here (ImageSharp's encoders or byte by byte).</summary>
internal static class Encoded
{
    public static Image<Rgba32> Quadrants(int w, int h)
    {
        var img = new Image<Rgba32>(w, h);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                img[x, y] = (x < w / 2, y < h / 2) switch
                {
                    (true, true) => new Rgba32(255, 0, 0),
                    (false, true) => new Rgba32(0, 255, 0),
                    (true, false) => new Rgba32(0, 0, 255),
                    _ => new Rgba32(255, 255, 255),
                };
        return img;
    }

    public static Image<Rgba32> Gradient(int w, int h)
    {
        var img = new Image<Rgba32>(w, h);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                img[x, y] = new Rgba32((byte)(x * 255 / Math.Max(1, w - 1)), (byte)(y * 255 / Math.Max(1, h - 1)), (byte)((x + y) % 256));
        return img;
    }

    public static byte[] Save(Image img, string format)
    {
        using var ms = new MemoryStream();
        switch (format)
        {
            case "png": img.SaveAsPng(ms); break;
            case "jpg": img.Save(ms, new JpegEncoder { Quality = 95 }); break;
            case "gif": img.SaveAsGif(ms); break;
            case "bmp": img.Save(ms, new BmpEncoder { BitsPerPixel = BmpBitsPerPixel.Pixel24 }); break;
            case "webp": img.Save(ms, new WebpEncoder { FileFormat = WebpFileFormatType.Lossless }); break;
            default: throw new ArgumentException(format);
        }
        return ms.ToArray();
    }

    /// <summary>A PNG chunk with its CRC.</summary>
    public static byte[] Chunk(string type, byte[] data)
    {
        var t = Encoding.ASCII.GetBytes(type);
        var chunk = new byte[12 + data.Length];
        BinaryPrimitives.WriteUInt32BigEndian(chunk, (uint)data.Length);
        t.CopyTo(chunk, 4);
        data.CopyTo(chunk, 8);
        BinaryPrimitives.WriteUInt32BigEndian(chunk.AsSpan(8 + data.Length), Crc32(chunk.AsSpan(4, 4 + data.Length)));
        return chunk;
    }

    /// <summary>CRC-32 (ISO-HDLC, as PNG uses), bit by bit.</summary>
    public static uint Crc32(ReadOnlySpan<byte> bytes)
    {
        uint crc = 0xFFFFFFFF;
        foreach (var b in bytes)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB88320 : crc >> 1;
        }
        return ~crc;
    }

    /// <summary>
    /// A grayscale 8-bit PNG of <paramref name="w"/>x<paramref name="h"/> declared in IHDR whose IDAT holds
    /// <paramref name="rows"/> zero rows, deflated (a decompression bomb when rows = h and the image is large).
    /// </summary>
    public static byte[] GrayPng(int w, int h, int rows)
    {
        var ihdr = new byte[13];
        BinaryPrimitives.WriteUInt32BigEndian(ihdr, (uint)w);
        BinaryPrimitives.WriteUInt32BigEndian(ihdr.AsSpan(4), (uint)h);
        ihdr[8] = 8; // bit depth
        ihdr[9] = 0; // grayscale
        using var z = new MemoryStream();
        using (var zs = new ZLibStream(z, CompressionLevel.SmallestSize, leaveOpen: true))
        {
            var row = new byte[w + 1];
            for (int y = 0; y < rows; y++) zs.Write(row);
        }
        using var png = new MemoryStream();
        png.Write([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]);
        png.Write(Chunk("IHDR", ihdr));
        png.Write(Chunk("IDAT", z.ToArray()));
        png.Write(Chunk("IEND", []));
        return png.ToArray();
    }
}

public class ImageDecoderTests
{
    private string _dir = null!;

    [SetUp] public void SetUp() => _dir = TestPaths.NewTempDir();
    [TearDown] public void TearDown() => Directory.Delete(_dir, true);

    private static string Oracle(string file) => TestPaths.TestData("ImageOracle", "decode", file);

    private static byte[] PilRgb(string file) => File.ReadAllBytes(Oracle(file) + ".rgb");

    private static ImageDecodeException Rejects(byte[] data, ImageDecodeFailure failure, ImageDecodeOptions? options = null, string name = "test-image")
    {
        var e = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Decode(data, name, options))!;
        TestContext.Out.WriteLine(e.Message);
        Assert.That(e.Failure, Is.EqualTo(failure), e.Message);
        Assert.That(e.FileName, Is.EqualTo(name));
        Assert.That(e.Message, Does.StartWith(name + ": "));
        return e;
    }

    [TestCase("l.png")]
    [TestCase("rgb24.bmp")]
    [TestCase("lossless.webp")]
    [TestCase("frames.gif")]
    public void LosslessFilesDecodeExactlyAsPil(string file)
    {
        var img = ImageDecoder.Load(Oracle(file));
        Assert.That((img.Width, img.Height), Is.EqualTo((41, 29)));
        Assert.That(img.Pixels, Is.EqualTo(PilRgb(file)));
    }

    [TestCase("frames.gif")]
    public void GifGivesTheFirstFrame(string file)
    {
        // the second frame is noise; the first is the smooth test image (PIL's decode of frame 0)
        var img = ImageDecoder.Load(Oracle(file));
        Assert.That(img.Pixels, Is.EqualTo(PilRgb(file)));
        using var two = Encoded.Gradient(20, 10);
        two.Frames.AddFrame(Encoded.Quadrants(20, 10).Frames.RootFrame);
        var decoded = ImageDecoder.Decode(Encoded.Save(two, "gif"), "two-frames.gif");
        // top right: the gradient's red (first frame), not the quadrants' green (second frame)
        var (r, g, _) = decoded[19, 0];
        Assert.That(r, Is.GreaterThan(192));
        Assert.That(g, Is.LessThan(64));
    }

    [TestCase("q95_444_prog.jpg", 2)]
    [TestCase("lossy.webp", 1)]
    public void LossyFilesDecodeCloseToPil(string file, int maxLevels)
    {
        // without chroma subsampling the decoders differ only in IDCT rounding
        var (max, mean) = Difference(ImageDecoder.Load(Oracle(file)).Pixels, PilRgb(file), luma: false);
        TestContext.Out.WriteLine($"{file}: max {max} levels, mean {mean:F3}");
        Assert.That(max, Is.LessThanOrEqualTo(maxLevels));
    }

    [Test]
    public void SubsampledJpegMatchesPilInLuma()
    {
        // 4:2:0: libjpeg (PIL) interpolates the half-resolution chroma ("fancy upsampling"), ImageSharp 2.1 replicates
        // it, so colors differ next to chroma edges (this edge-heavy image: see the output); luma does not
        var ours = ImageDecoder.Load(Oracle("q90_420.jpg")).Pixels;
        var pil = PilRgb("q90_420.jpg");
        var (maxRgb, meanRgb) = Difference(ours, pil, luma: false);
        var (maxY, meanY) = Difference(ours, pil, luma: true);
        TestContext.Out.WriteLine($"q90_420.jpg: RGB max {maxRgb} mean {meanRgb:F3}; luma max {maxY} mean {meanY:F3}");
        Assert.That(meanY, Is.LessThan(1.0));
        Assert.That(maxY, Is.LessThanOrEqualTo(20)); // where a channel clips at 0 or 255
    }

    private static (int Max, double Mean) Difference(byte[] a, byte[] b, bool luma)
    {
        Assert.That(a, Has.Length.EqualTo(b.Length));
        int max = 0;
        double sum = 0;
        int n = 0;
        for (int i = 0; i < a.Length; i += 3)
        {
            if (luma)
            {
                double ya = 0.299 * a[i] + 0.587 * a[i + 1] + 0.114 * a[i + 2];
                double yb = 0.299 * b[i] + 0.587 * b[i + 1] + 0.114 * b[i + 2];
                int d = (int)Math.Round(Math.Abs(ya - yb));
                max = Math.Max(max, d); sum += Math.Abs(ya - yb); n++;
            }
            else
                for (int c = 0; c < 3; c++)
                {
                    int d = Math.Abs(a[i + c] - b[i + c]);
                    max = Math.Max(max, d); sum += d; n++;
                }
        }
        return (max, sum / n);
    }

    [Test]
    public void SixteenBitPngIsScaledToEightBits()
    {
        // rgb16.png holds channel 0 of the smooth oracle image times 257
        var img = ImageDecoder.Load(Oracle("rgb16.png"));
        var smooth = OracleImages.Generate("smooth", 41, 29);
        for (int y = 0; y < 29; y++)
            for (int x = 0; x < 41; x++)
            {
                byte v = smooth[x, y].R;
                Assert.That(img[x, y], Is.EqualTo((v, v, v)), $"pixel ({x}, {y})");
            }
    }

    [TestCase("rgba.png")]
    [TestCase("la.png")]
    public void TransparentRowIsWhiteOpaqueRowKeepsItsColor(string file)
    {
        // the oracle's alpha: row 0 fully transparent, row 1 fully opaque (transformers 5.17 itself drops alpha)
        var img = ImageDecoder.Load(Oracle(file));
        var pil = PilRgb(file);
        int w = img.Width;
        for (int x = 0; x < w; x++)
        {
            Assert.That(img[x, 0], Is.EqualTo(((byte)255, (byte)255, (byte)255)), $"transparent pixel ({x}, 0)");
            int o = (w + x) * 3;
            Assert.That(img[x, 1], Is.EqualTo((pil[o], pil[o + 1], pil[o + 2])), $"opaque pixel ({x}, 1)");
        }
    }

    [Test]
    public void PaletteTransparencyBecomesWhite()
    {
        var img = ImageDecoder.Load(Oracle("p_trns.png"));
        var pil = PilRgb("p_trns.png");
        int whiteInsteadOfColor = 0;
        for (int i = 0; i < pil.Length; i += 3)
        {
            var ours = (img.Pixels[i], img.Pixels[i + 1], img.Pixels[i + 2]);
            var theirs = (pil[i], pil[i + 1], pil[i + 2]);
            if (ours == theirs) continue;
            Assert.That(ours, Is.EqualTo(((byte)255, (byte)255, (byte)255)), $"pixel {i / 3}");
            whiteInsteadOfColor++;
        }
        Assert.That(whiteInsteadOfColor, Is.GreaterThan(0), "the transparent palette entry is used");
    }

    [Test]
    public void AlphaIsCompositedOverWhite()
    {
        using var img = new Image<Rgba32>(4, 1);
        img[0, 0] = new Rgba32(10, 20, 30, 0);
        img[1, 0] = new Rgba32(10, 20, 30, 255);
        img[2, 0] = new Rgba32(0, 100, 200, 128);
        img[3, 0] = new Rgba32(255, 0, 0, 51);
        var rgb = ImageDecoder.Decode(Encoded.Save(img, "png"), "alpha.png");
        Assert.That(rgb[0, 0], Is.EqualTo(((byte)255, (byte)255, (byte)255)));
        Assert.That(rgb[1, 0], Is.EqualTo(((byte)10, (byte)20, (byte)30)));
        // c·a/255 + 255·(1 − a/255), rounded
        Assert.That(rgb[2, 0], Is.EqualTo(((byte)127, (byte)177, (byte)227)));
        Assert.That(rgb[3, 0], Is.EqualTo(((byte)255, (byte)204, (byte)204)));
        var black = ImageDecoder.Decode(Encoded.Save(img, "png"), "alpha.png", new ImageDecodeOptions { Background = (0, 0, 0) });
        Assert.That(black[0, 0], Is.EqualTo(((byte)0, (byte)0, (byte)0)));
    }

    /// <summary>Displayed pixel (x, y) of orientation o comes from stored pixel (sx, sy) of a w x h image (EXIF 2.3).</summary>
    private static (int X, int Y) StoredPixel(int o, int x, int y, int w, int h) => o switch
    {
        1 => (x, y),
        2 => (w - 1 - x, y),            // mirrored horizontally
        3 => (w - 1 - x, h - 1 - y),    // rotated 180°
        4 => (x, h - 1 - y),            // mirrored vertically
        5 => (y, x),                    // transposed
        6 => (y, h - 1 - x),            // stored rotated 90° counter-clockwise: display turns it clockwise
        7 => (w - 1 - y, h - 1 - x),    // transversed
        8 => (w - 1 - y, x),            // display turns it counter-clockwise
        _ => throw new ArgumentOutOfRangeException(nameof(o)),
    };

    [TestCase(1), TestCase(2), TestCase(3), TestCase(4), TestCase(5), TestCase(6), TestCase(7), TestCase(8)]
    public void ExifOrientationIsApplied(int orientation)
    {
        const int w = 64, h = 32;
        using var src = Encoded.Quadrants(w, h);
        src.Metadata.ExifProfile = new ExifProfile();
        src.Metadata.ExifProfile.SetValue(ExifTag.Orientation, (ushort)orientation);
        var jpeg = Encoded.Save(src, "jpg");
        var header = ImageDecoder.Identify(jpeg, "rotated.jpg");
        Assert.That(header.ExifOrientation, Is.EqualTo(orientation));
        var img = ImageDecoder.Decode(jpeg, "rotated.jpg");
        bool swap = orientation >= 5;
        Assert.That((img.Width, img.Height), Is.EqualTo(swap ? (h, w) : (w, h)));
        Assert.That(header.OrientedSize, Is.EqualTo((img.Width, img.Height)));
        // the centre of every displayed quadrant has the color of the stored pixel it maps to
        foreach (var (fx, fy) in new[] { (0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75) })
        {
            int x = (int)(img.Width * fx), y = (int)(img.Height * fy);
            var (sx, sy) = StoredPixel(orientation, x, y, w, h);
            var want = src[sx, sy];
            var got = img[x, y];
            Assert.That(Math.Abs(got.R - want.R) + Math.Abs(got.G - want.G) + Math.Abs(got.B - want.B), Is.LessThan(60),
                $"displayed ({x}, {y}) from stored ({sx}, {sy}): want {want}, got {got}");
        }
        var unrotated = ImageDecoder.Decode(jpeg, "rotated.jpg", new ImageDecodeOptions { ApplyExifOrientation = false });
        Assert.That((unrotated.Width, unrotated.Height), Is.EqualTo((w, h)));
    }

    /// <summary>A PNG with <paramref name="extra"/> chunks inserted after IHDR.</summary>
    private static byte[] InsertAfterIhdr(byte[] png, params byte[][] extra)
    {
        const int afterIhdr = 8 + 12 + 13;
        return png[..afterIhdr].Concat(extra.SelectMany(c => c)).Concat(png[afterIhdr..]).ToArray();
    }

    /// <summary>A TIFF-structured EXIF block with one IFD0 entry: Orientation = <paramref name="o"/>.</summary>
    private static byte[] ExifBlock(int o, bool bigEndian)
    {
        var e = new byte[8 + 2 + 12 + 4];
        void U16(int at, int v) { if (bigEndian) BinaryPrimitives.WriteUInt16BigEndian(e.AsSpan(at), (ushort)v); else BinaryPrimitives.WriteUInt16LittleEndian(e.AsSpan(at), (ushort)v); }
        void U32(int at, uint v) { if (bigEndian) BinaryPrimitives.WriteUInt32BigEndian(e.AsSpan(at), v); else BinaryPrimitives.WriteUInt32LittleEndian(e.AsSpan(at), v); }
        e[0] = e[1] = (byte)(bigEndian ? 'M' : 'I');
        U16(2, 42); U32(4, 8);
        U16(8, 1);                       // one entry
        U16(10, 0x0112); U16(12, 3); U32(14, 1); U16(18, o);
        return e;
    }

    [TestCase(6, false)]
    [TestCase(8, true)]
    [TestCase(3, false)]
    public void PngExifOrientationIsApplied(int orientation, bool bigEndian)
    {
        const int w = 6, h = 4;
        using var src = Encoded.Gradient(w, h);
        var png = InsertAfterIhdr(Encoded.Save(src, "png"), Encoded.Chunk("eXIf", ExifBlock(orientation, bigEndian)));
        Assert.That(ImageDecoder.Identify(png, "exif.png").ExifOrientation, Is.EqualTo(orientation));
        var img = ImageDecoder.Decode(png, "exif.png");
        Assert.That((img.Width, img.Height), Is.EqualTo(orientation >= 5 ? (h, w) : (w, h)));
        for (int y = 0; y < img.Height; y++)
            for (int x = 0; x < img.Width; x++)
            {
                var (sx, sy) = StoredPixel(orientation, x, y, w, h);
                var p = src[sx, sy];
                Assert.That(img[x, y], Is.EqualTo((p.R, p.G, p.B)), $"displayed ({x}, {y})");
            }
    }

    [Test]
    public void CompressedPngTextIsNotInflated()
    {
        // a zTXt chunk of 64 MiB of zeros deflates to ~64 KiB; the decoder must not inflate it
        using var z = new MemoryStream();
        using (var zs = new ZLibStream(z, CompressionLevel.SmallestSize, leaveOpen: true))
        {
            var zeros = new byte[1 << 20];
            for (int i = 0; i < 64; i++) zs.Write(zeros);
        }
        var ztxt = Encoding.ASCII.GetBytes("Comment").Concat(new byte[] { 0, 0 }).Concat(z.ToArray()).ToArray();
        using var src = Encoded.Gradient(8, 8);
        var png = InsertAfterIhdr(Encoded.Save(src, "png"), Encoded.Chunk("zTXt", ztxt), Encoded.Chunk("iTXt",
            Encoding.ASCII.GetBytes("XML:com.adobe.xmp").Concat(new byte[] { 0, 1, 0, 0, 0 }).Concat(z.ToArray()).ToArray()));
        Assert.That(png.Length, Is.LessThan(1 << 20));
        long before = GC.GetAllocatedBytesForCurrentThread();
        var img = ImageDecoder.Decode(png, "text-bomb.png");
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.That((img.Width, img.Height), Is.EqualTo((8, 8)));
        Assert.That(allocated, Is.LessThan(16L << 20), "bytes allocated while decoding");
    }

    [Test]
    public void HeaderClaimingHugeDimensionsIsRejectedBeforeDecoding()
    {
        var png = Encoded.GrayPng(100_000, 100_000, rows: 2);
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Rejects(png, ImageDecodeFailure.TooLarge);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.That(e.Reason, Does.Contain("100000x100000"));
        Assert.That(allocated, Is.LessThan(16L << 20), "bytes allocated while rejecting");
    }

    [Test]
    public void DecompressionBombIsRejectedByThePixelLimit()
    {
        // 9000 x 9000 = 81 MP of zeros deflates to well under a megabyte
        var bomb = Encoded.GrayPng(9000, 9000, rows: 9000);
        Assert.That(bomb.Length, Is.LessThan(1 << 20));
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Rejects(bomb, ImageDecodeFailure.TooLarge);
        Assert.That(GC.GetAllocatedBytesForCurrentThread() - before, Is.LessThan(16L << 20));
        Assert.That(e.Reason, Does.Contain("64000000"));
    }

    [Test]
    public void PixelAndSideLimitsAreConfigurable()
    {
        var png = Encoded.GrayPng(300, 200, rows: 200);
        Assert.That(ImageDecoder.Decode(png, "ok.png").Width, Is.EqualTo(300));
        Rejects(png, ImageDecodeFailure.TooLarge, new ImageDecodeOptions { MaxPixels = 50_000 });
        Rejects(png, ImageDecodeFailure.TooLarge, new ImageDecodeOptions { MaxSide = 256 });
        Rejects(png, ImageDecodeFailure.TooLarge, new ImageDecodeOptions { MaxFileBytes = 32 });
    }

    [Test]
    public void DecoderAllocationLimitBoundsMemory()
    {
        // within the pixel limit, but the 4 bytes/pixel frame buffer (≈ 10 MiB) is over a 2 MiB allocator limit
        var png = Encoded.GrayPng(1800, 1500, rows: 1500);
        var options = new ImageDecodeOptions { MaxBufferMegabytes = 2 };
        var e = Rejects(png, ImageDecodeFailure.TooLarge, options);
        Assert.That(e.Reason, Does.Contain("2 MiB"));
        Assert.That(ImageDecoder.Decode(png, "ok.png").Height, Is.EqualTo(1500));
    }

    [TestCase("jpg")]
    [TestCase("png")]
    [TestCase("gif")]
    [TestCase("webp")]
    [TestCase("bmp")]
    public void TruncatedFilesAreRejected(string format)
    {
        using var img = Encoded.Gradient(64, 48);
        var full = Encoded.Save(img, format);
        Assert.That(ImageDecoder.Decode(full, "full." + format).Width, Is.EqualTo(64));
        foreach (var keep in new[] { full.Length / 2, full.Length * 9 / 10, full.Length - 1 })
        {
            if (format == "gif" && keep == full.Length - 1) continue; // only the trailer byte is gone: the first frame is whole
            var cut = full.AsSpan(0, keep).ToArray();
            var e = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Decode(cut, $"cut.{format}"))!;
            TestContext.Out.WriteLine($"{keep}/{full.Length}: {e.Message}");
            Assert.That(e.Failure, Is.EqualTo(ImageDecodeFailure.Truncated).Or.EqualTo(ImageDecodeFailure.Corrupt));
        }
    }

    [Test]
    public void JpegWithoutEndMarkerIsTruncated()
    {
        using var img = Encoded.Gradient(64, 48);
        var full = Encoded.Save(img, "jpg");
        Assert.That(full[^2..], Is.EqualTo(new byte[] { 0xFF, 0xD9 }));
        var e = Rejects(full[..^2], ImageDecodeFailure.Truncated);
        Assert.That(e.Reason, Does.Contain("EOI"));
    }

    [Test]
    public void NonImagesAreRejected()
    {
        var rng = new Random(1);
        var noise = new byte[4096];
        rng.NextBytes(noise);
        noise[0] = 0x42; noise[1] = 0x00; // not "BM"
        Rejects(noise, ImageDecodeFailure.UnknownFormat);
        Rejects([], ImageDecodeFailure.UnknownFormat);
        var e = Rejects(Encoding.UTF8.GetBytes("{\"not\": \"an image\"}"), ImageDecodeFailure.UnknownFormat);
        Assert.That(e.Reason, Does.Contain("7B 22"));
        // a PNG signature followed by garbage
        var fake = new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }.Concat(noise).ToArray();
        Assert.Throws<ImageDecodeException>(() => ImageDecoder.Decode(fake, "fake.png"));
        // TIFF is a real image format, but not one this engine accepts
        Rejects([0x49, 0x49, 0x2A, 0x00, 8, 0, 0, 0, 0, 0], ImageDecodeFailure.UnknownFormat);
    }

    [Test]
    public void CorruptPixelDataIsRejected()
    {
        // structure intact (valid CRCs, IEND present) but the IDAT is not a zlib stream
        var ihdr = new byte[13];
        BinaryPrimitives.WriteUInt32BigEndian(ihdr, 16);
        BinaryPrimitives.WriteUInt32BigEndian(ihdr.AsSpan(4), 16);
        ihdr[8] = 8; ihdr[9] = 2;
        var garbage = new byte[200];
        new Random(3).NextBytes(garbage);
        var png = new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }
            .Concat(Encoded.Chunk("IHDR", ihdr)).Concat(Encoded.Chunk("IDAT", garbage)).Concat(Encoded.Chunk("IEND", [])).ToArray();
        Rejects(png, ImageDecodeFailure.Corrupt);
    }

    [Test]
    public void FileErrorsNameTheFile()
    {
        var missing = Path.Combine(_dir, "missing.png");
        var e = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Load(missing))!;
        Assert.That((e.Failure, e.FileName), Is.EqualTo((ImageDecodeFailure.Unreadable, missing)));
        Assert.That(e.Message, Does.Contain("missing.png").And.Contain("does not exist"));
        var dirE = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Load(_dir))!;
        Assert.That(dirE.Failure, Is.EqualTo(ImageDecodeFailure.Unreadable));
        var text = Path.Combine(_dir, "notes.txt");
        File.WriteAllText(text, "hello");
        var textE = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Load(text))!;
        Assert.That((textE.Failure, textE.FileName), Is.EqualTo((ImageDecodeFailure.UnknownFormat, text)));
    }

    [Test]
    public void DamagedFilesNeverEscapeAsOtherExceptions()
    {
        // random byte flips and cuts in valid files of every format: decoded, or an ImageDecodeException
        var rng = new Random(42);
        using var img = Encoded.Gradient(40, 30);
        int decoded = 0, rejected = 0;
        foreach (var format in new[] { "png", "jpg", "gif", "webp", "bmp" })
        {
            var good = Encoded.Save(img, format);
            for (int trial = 0; trial < 60; trial++)
            {
                var bad = (byte[])good.Clone();
                int flips = 1 + rng.Next(8);
                for (int f = 0; f < flips; f++) bad[rng.Next(bad.Length)] = (byte)rng.Next(256);
                if (rng.Next(3) == 0) bad = bad[..rng.Next(1, bad.Length)];
                try
                {
                    var r = ImageDecoder.Decode(bad, $"fuzz.{format}", new ImageDecodeOptions { MaxPixels = 4_000_000 });
                    Assert.That(r.Pixels, Has.Length.EqualTo(r.Width * r.Height * 3));
                    decoded++;
                }
                catch (ImageDecodeException) { rejected++; }
            }
        }
        TestContext.Out.WriteLine($"decoded {decoded}, rejected {rejected}");
        Assert.That(rejected, Is.GreaterThan(0));
    }
}
