using NUnit.Framework;
using SafeCoDe.Torch.Processing.Images;

namespace SafeCoDe.Torch.Tests.Processing.Images;

public class ResamplerTests
{
    private static RgbImage Row(params byte[] gray)
    {
        var img = new RgbImage(gray.Length, 1);
        for (int x = 0; x < gray.Length; x++) img[x, 0] = (gray[x], gray[x], gray[x]);
        return img;
    }

    [Test]
    public void BilinearDownscaleByTwoFollowsTheFixedPointArithmetic()
    {
        // output 0: centre 1.0, support 2 → taps 0..2 with triangle weights 0.75, 0.75, 0.25 → 3/7, 3/7, 1/7;
        // precision 16 (3/7·2^17 ≥ 2^15) → k = 28087, 28087, 9362; (100·28087 + 200·9362 + 2^15) >> 16 = 71
        // output 1: centre 3.0 → taps 1..3: 1/7, 3/7, 3/7 → (100·9362 + 200·28087 + 255·28087 + 2^15) >> 16 = 209
        var r = Resampler.Resize(Row(0, 100, 200, 255), 2, 1, ResampleFilter.Bilinear);
        Assert.That(r[0, 0].R, Is.EqualTo(71));
        Assert.That(r[1, 0].R, Is.EqualTo(209));
        var w = Resampler.Weights.For(4, 2, ResampleFilter.Bilinear);
        Assert.That(w.Precision, Is.EqualTo(16));
        Assert.That(w.K[..3], Is.EqualTo(new short[] { 28087, 28087, 9362 }));
    }

    [Test]
    public void BicubicUpscaleUsesKeysCubicWithAMinusHalf()
    {
        // 2 → 4: output 1 has centre 0.75: taps at distances 0.25, 0.75 (inputs 0, 1) inside the image
        var w = Resampler.Weights.For(2, 4, ResampleFilter.Bicubic);
        int taps = w.Taps;
        Assert.That(taps, Is.EqualTo(5)); // ceil(2)·2 + 1
        Assert.That((w.Start[1], w.Count[1]), Is.EqualTo((0, 2)));
        // cubic(0.25) = 0.8671875, cubic(0.75) = 0.2265625 (a = −0.5), normalised by their sum 1.09375
        double w0 = 0.8671875 / 1.09375, w1 = 0.2265625 / 1.09375;
        Assert.That(w.K[taps * 1], Is.EqualTo((short)(int)(0.5 + w0 * (1 << w.Precision))));
        Assert.That(w.K[taps * 1 + 1], Is.EqualTo((short)(int)(0.5 + w1 * (1 << w.Precision))));
        // and negative lobes appear when downscaling less than 2x
        var d = Resampler.Weights.For(10, 7, ResampleFilter.Bicubic);
        Assert.That(d.K.Any(k => k < 0), Is.True);
    }

    [Test]
    public void UnchangedSizeReturnsTheSameImage()
    {
        var img = OracleImages.Generate("noise", 13, 7);
        Assert.That(Resampler.Resize(img, 13, 7, ResampleFilter.Bicubic), Is.SameAs(img));
    }

    [Test]
    public void OnlyTheChangedAxisIsResampled()
    {
        // a width-only resize leaves every column's vertical profile alone when the rows are constant
        var img = new RgbImage(9, 5);
        for (int y = 0; y < 5; y++)
            for (int x = 0; x < 9; x++) img[x, y] = ((byte)(y * 50), (byte)(y * 50), (byte)(y * 50));
        var r = Resampler.Resize(img, 4, 5, ResampleFilter.Bicubic);
        for (int y = 0; y < 5; y++)
            for (int x = 0; x < 4; x++) Assert.That(r[x, y].R, Is.EqualTo(y * 50));
    }

    [TestCase(ResampleFilter.Bicubic)]
    [TestCase(ResampleFilter.Bilinear)]
    public void FlatImagesStayFlat(ResampleFilter filter)
    {
        foreach (var (w, h) in new[] { (1, 1), (3, 200), (17, 5), (640, 480) })
            foreach (byte v in new byte[] { 0, 1, 128, 254, 255 })
            {
                var r = Resampler.Resize(RgbImage.Filled(50, 40, v, v, v), w, h, filter);
                Assert.That(r.Pixels.All(p => Math.Abs(p - v) <= 1), Is.True, $"{filter} 50x40 → {w}x{h} of {v}");
            }
    }

    [Test]
    public void NearestPicksSourcePixels()
    {
        // NEAREST_EXACT 4 → 2 samples inputs floor(0.5·2) = 1 and floor(1.5·2) = 3
        var r = Resampler.Resize(Row(10, 20, 30, 40), 2, 1, ResampleFilter.Nearest);
        Assert.That((r[0, 0].R, r[1, 0].R), Is.EqualTo(((byte)20, (byte)40)));
    }
}

public class TransformsTests
{
    [TestCase(480, 640, 336, 336, 448)]
    [TestCase(640, 480, 336, 448, 336)]
    [TestCase(60, 80, 56, 56, 74)]
    [TestCase(1000, 3, 224, 74666, 224)]
    public void ShortestEdgeKeepsTheAspectRatio(int h, int w, int size, int eh, int ew)
        => Assert.That(Transforms.ShortestEdge(h, w, size), Is.EqualTo((eh, ew)));

    [Test]
    public void ShortestEdgeCappedByLongestEdge()
    {
        Assert.That(Transforms.SizeWithAspectRatio(480, 640, 800, 1333), Is.EqualTo((800, 1066)));
        Assert.That(Transforms.SizeWithAspectRatio(100, 1000, 800, 1333), Is.EqualTo((133, 1333)));
        Assert.That(Transforms.ResizeTarget(100, 200, new SizeSpec(MaxHeight: 50, MaxWidth: 50)), Is.EqualTo((25, 50)));
        Assert.That(Transforms.ResizeTarget(100, 200, SizeSpec.Square(30)), Is.EqualTo((30, 30)));
        Assert.Throws<ArgumentException>(() => Transforms.ResizeTarget(10, 10, new SizeSpec(LongestEdge: 5)));
    }

    [Test]
    public void CenterCropTakesTheMiddleAndPadsWhenTooSmall()
    {
        var img = OracleImages.Generate("noise", 10, 7);
        var c = Transforms.CenterCrop(img, 3, 4);
        // top = int((7 − 3) / 2) = 2, left = int((10 − 4) / 2) = 3
        Assert.That(c[0, 0], Is.EqualTo(img[3, 2]));
        Assert.That(c[3, 2], Is.EqualTo(img[6, 4]));
        // 10x7 → 12x9: pads 1 left/right and 1 top/bottom with zeros
        var p = Transforms.CenterCrop(img, 9, 12);
        Assert.That((p.Width, p.Height), Is.EqualTo((12, 9)));
        Assert.That(p[0, 0], Is.EqualTo(((byte)0, (byte)0, (byte)0)));
        Assert.That(p[1, 1], Is.EqualTo(img[0, 0]));
        Assert.That(p[11, 8], Is.EqualTo(((byte)0, (byte)0, (byte)0)));
        // one side larger: padded on that side, cropped on the other
        var q = Transforms.CenterCrop(img, 3, 13);
        Assert.That((q.Width, q.Height), Is.EqualTo((13, 3)));
        Assert.That(q[1, 0], Is.EqualTo(img[0, 2]));
    }

    [Test]
    public void NormalisationUsesFusedFloat32Arithmetic()
    {
        var s = new PreprocessorSettings { ImageMean = [0.5, 0.25, 0.1], ImageStd = [0.5, 0.2, 0.3] };
        var img = RgbImage.Filled(1, 1, 255, 0, 128);
        var dst = new float[3];
        Transforms.ToChw(img, dst, s);
        float inv = (float)(1.0 / s.RescaleFactor);
        Assert.That(dst[0], Is.EqualTo((255f - 0.5f * inv) / (0.5f * inv)));
        Assert.That(dst[1], Is.EqualTo((0f - 0.25f * inv) / (0.2f * inv)));
        Assert.That(dst[2], Is.EqualTo((128f - 0.1f * inv) / (0.3f * inv)));
        Assert.That(dst[0], Is.EqualTo(1.0f).Within(1e-6));
        Transforms.ToChw(img, dst, s with { DoNormalize = false });
        Assert.That(dst, Is.EqualTo(new[] { 255f * (float)(1 / 255.0), 0f, 128f * (float)(1 / 255.0) }));
        Transforms.ToChw(img, dst, s with { DoRescale = false });
        Assert.That(dst[0], Is.EqualTo((255f - 0.5f) / 0.5f));
    }

    [TestCase(480, 640, 28, 3136, 12845056, 476, 644)]
    [TestCase(60, 80, 28, 3136, 12544, 56, 84)]
    [TestCase(1, 1, 28, 3136, 12845056, 56, 56)]
    [TestCase(3000, 4000, 28, 3136, 12845056, 2996, 4004)]
    [TestCase(3000, 4000, 28, 3136, 1003520, 840, 1148)]
    public void SmartResize(int h, int w, int factor, int min, int max, int eh, int ew)
        => Assert.That(QwenVLImageProcessor.SmartResize(h, w, factor, min, max), Is.EqualTo((eh, ew)));

    [Test]
    public void SmartResizeRefusesExtremeAspectRatios()
        => Assert.Throws<ArgumentException>(() => QwenVLImageProcessor.SmartResize(9, 2000, 28, 3136, 12845056));

    [Test]
    public void Idefics3Geometry()
    {
        // 640x480 → longest edge 1456: 1456x1092; vision encoder: 1456 = 4·364, 1092 = 3·364
        Assert.That(Idefics3ImageProcessor.LongestEdgeSize(480, 640, 1456), Is.EqualTo((1092, 1456)));
        Assert.That(Idefics3ImageProcessor.VisionEncoderSize(1092, 1456, 364), Is.EqualTo((1092, 1456)));
        // odd heights are made even; nothing exceeds 4096
        Assert.That(Idefics3ImageProcessor.LongestEdgeSize(61, 80, 112), Is.EqualTo((86, 112)));
        Assert.That(Idefics3ImageProcessor.LongestEdgeSize(100, 10000, 5000), Is.EqualTo((40, 4096)));
        // 9x2000 → 1456 wide, 6 high → one row of four tiles
        Assert.That(Idefics3ImageProcessor.VisionEncoderSize(6, 1456, 364), Is.EqualTo((364, 1456)));
    }

    [Test]
    public void LlavaNextPatchOutputSize()
    {
        Assert.That(LlavaNextImageProcessor.PatchOutputSize(60, 80, 112, 112), Is.EqualTo((84, 112)));
        Assert.That(LlavaNextImageProcessor.PatchOutputSize(1000, 200, 672, 336), Is.EqualTo((672, 135)));
    }
}

public class RgbImageTests
{
    [Test]
    public void ValidatesItsBuffer()
    {
        Assert.Throws<ArgumentException>(() => new RgbImage(2, 2, new byte[11]));
        Assert.Throws<ArgumentOutOfRangeException>(() => new RgbImage(0, 2));
        var img = new RgbImage(2, 2, new byte[12]);
        Assert.Throws<ArgumentOutOfRangeException>(() => _ = img[2, 0]);
    }

    [Test]
    public void CropPlaceAndClone()
    {
        var img = OracleImages.Generate("noise", 6, 5);
        var c = img.Crop(2, 1, 3, 2);
        Assert.That(c[0, 0], Is.EqualTo(img[2, 1]));
        Assert.That(c[2, 1], Is.EqualTo(img[4, 2]));
        Assert.Throws<ArgumentOutOfRangeException>(() => img.Crop(4, 0, 3, 1));
        var p = img.PlaceOn(8, 9, 1, 2);
        Assert.That(p[1, 2], Is.EqualTo(img[0, 0]));
        Assert.That(p[0, 0], Is.EqualTo(((byte)0, (byte)0, (byte)0)));
        var cut = img.PlaceOn(3, 3, -2, -1);
        Assert.That(cut[0, 0], Is.EqualTo(img[2, 1]));
        var clone = img.Clone();
        clone.Pixels[0] ^= 0xFF;
        Assert.That(clone.Pixels[0], Is.Not.EqualTo(img.Pixels[0]));
    }
}
