using NUnit.Framework;
using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Processing.Images;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Tests.Processing.Images;

public class ImageProcessorsTests
{
    private static string Fixture(string family) => Path.Combine(TestPaths.Root, "weights", "fixtures", family, "v5");

    private static ModelConfig Config(string family) => ModelConfig.Load(Fixture(family));

    private static IImageProcessor With(string family, string json) => ImageProcessors.For(Config(family), JsonConfig.FromJson(json, "preprocessor_config.json"));

    [TestCase("llava", "CLIPImageProcessor", 16)]
    [TestCase("llava_next", "LlavaNextImageProcessor", 70)]
    [TestCase("qwen2_vl", "Qwen2VLImageProcessor", 6)]
    [TestCase("qwen2_5_vl", "Qwen2VLImageProcessor", 6)]
    [TestCase("instructblip", "BlipImageProcessor", 8)]
    [TestCase("idefics", "IdeficsImageProcessor", 1)]
    [TestCase("idefics3", "Idefics3ImageProcessor", 20)]
    public void ModelDirectoryPicksTheFamilysProcessor(string family, string cls, int tokens)
    {
        var dir = ModelDirectory.Open(Fixture(family));
        var p = ImageProcessors.For(dir);
        Assert.That((p.Family, p.ProcessorClass), Is.EqualTo((family, cls)));
        Assert.That(p.Layout(80, 60).NumImageTokens, Is.EqualTo(tokens));
        Assert.That(ImageProcessors.ForFolder(Fixture(family)).ProcessorClass, Is.EqualTo(cls));
    }

    [Test]
    public void MissingPreprocessorConfigNamesTheFile()
    {
        var tmp = TestPaths.NewTempDir();
        try
        {
            File.Copy(Path.Combine(Fixture("llava"), "config.json"), Path.Combine(tmp, "config.json"));
            var e = Assert.Throws<ConfigException>(() => ImageProcessors.ForFolder(tmp))!;
            Assert.That(e.FilePath, Does.EndWith("preprocessor_config.json"));
        }
        finally { Directory.Delete(tmp, true); }
    }

    [Test]
    public void ProcessorClassMustFitTheFamily()
    {
        var e = Assert.Throws<ConfigException>(() => With("llava", """{"image_processor_type": "Qwen2VLImageProcessor"}"""))!;
        Assert.That(e.Item, Is.EqualTo("image_processor_type"));
        Assert.That(e.Message, Does.Contain("CLIPImageProcessor"));
        Assert.That(With("llava", """{"image_processor_type": "CLIPImageProcessorFast"}""").ProcessorClass, Is.EqualTo("CLIPImageProcessor"));
        Assert.That(With("llava", """{"feature_extractor_type": "CLIPFeatureExtractor"}""").ProcessorClass, Is.EqualTo("CLIPImageProcessor"));
        Assert.That(With("idefics3", """{"image_processor_type": "Idefics3ImageProcessorPil"}""").ProcessorClass, Is.EqualTo("Idefics3ImageProcessor"));
    }

    [Test]
    public void ClassDefaultsApplyWhenFieldsAreAbsent()
    {
        var clip = With("llava", "{}");
        Assert.That(clip.Settings.Size, Is.EqualTo(new SizeSpec(ShortestEdge: 224)));
        Assert.That(clip.Settings.CropSize, Is.EqualTo(SizeSpec.Square(224)));
        Assert.That(clip.Settings.DoCenterCrop, Is.True);
        Assert.That(With("instructblip", "{}").Settings.Size, Is.EqualTo(SizeSpec.Square(384)));
        Assert.That(With("idefics", """{"image_size": 64}""").Settings.Size, Is.EqualTo(SizeSpec.Square(64)));
        var i3 = (Idefics3ImageProcessor)With("idefics3", "{}");
        Assert.That((i3.Settings.Size, i3.MaxTileSize, i3.Settings.Filter), Is.EqualTo((new SizeSpec(LongestEdge: 1456), 364, ResampleFilter.Bicubic)));
        // older files: sizes as integers
        Assert.That(With("llava", """{"size": 336, "crop_size": 336}""").Settings.CropSize, Is.EqualTo(SizeSpec.Square(336)));
        Assert.That(With("llava", """{"size": 336}""").Settings.Size, Is.EqualTo(new SizeSpec(ShortestEdge: 336)));
        Assert.That(With("instructblip", """{"size": 224}""").Settings.Size, Is.EqualTo(SizeSpec.Square(224)));
    }

    [Test]
    public void InvalidSettingsAreConfigErrors()
    {
        Assert.That(Assert.Throws<ConfigException>(() => With("llava", """{"resample": 4}"""))!.Item, Is.EqualTo("resample"));
        Assert.That(Assert.Throws<ConfigException>(() => With("llava", """{"image_std": [0.5, 0, 0.5]}"""))!.Item, Is.EqualTo("image_std[1]"));
        Assert.That(Assert.Throws<ConfigException>(() => With("llava", """{"image_mean": [0.5, 0.5]}"""))!.Item, Is.EqualTo("image_mean"));
        Assert.That(Assert.Throws<ConfigException>(() => With("llava", """{"size": {"height": 3}}"""))!.Item, Is.EqualTo("size"));
        Assert.That(Assert.Throws<ConfigException>(() => With("llava", """{"size": {"shortest_edge": -3}}"""))!.Item, Is.EqualTo("size.shortest_edge"));
        Assert.That(Assert.Throws<ConfigException>(() => With("llava_next", """{"image_grid_pinpoints": [[336]]}"""))!.Item, Is.EqualTo("image_grid_pinpoints"));
        Assert.That(Assert.Throws<ConfigException>(() => With("qwen2_vl", """{"patch_size": 16}"""))!.Item, Is.EqualTo("patch_size"));
        Assert.That(Assert.Throws<ConfigException>(() => With("qwen2_vl", """{"min_pixels": 5000, "max_pixels": 100}"""))!.Item, Is.EqualTo("max_pixels"));
    }

    [Test]
    public void QwenPixelRangeFromAnyOfItsSpellings()
    {
        var a = (QwenVLImageProcessor)With("qwen2_vl", """{"size": {"shortest_edge": 100, "longest_edge": 200000}}""");
        var b = (QwenVLImageProcessor)With("qwen2_vl", """{"size": {"min_pixels": 100, "max_pixels": 200000}}""");
        var c = (QwenVLImageProcessor)With("qwen2_vl", """{"size": {"shortest_edge": 1, "longest_edge": 2}, "min_pixels": 100, "max_pixels": 200000}""");
        var d = (QwenVLImageProcessor)With("qwen2_vl", "{}");
        foreach (var p in new[] { a, b, c }) Assert.That((p.MinPixels, p.MaxPixels), Is.EqualTo((100, 200000)));
        Assert.That((d.MinPixels, d.MaxPixels), Is.EqualTo((56 * 56, 28 * 28 * 1280)));
        // a 1000x1000 image under a 200000-pixel cap: floor(1000 / sqrt(5) / 28) · 28 = 420, 30 patches a side
        Assert.That(a.Layout(1000, 1000).GridThw, Is.EqualTo((1, 30, 30)));
        Assert.That(a.Layout(1000, 1000).NumImageTokens, Is.EqualTo(225));
    }

    [Test]
    public void LlavaImageProcessorPadsToASquareOfTheMeanColor()
    {
        var p = (BasicImageProcessor)With("llava", """{"image_processor_type": "LlavaImageProcessor", "do_pad": true, "do_resize": false, "do_center_crop": false}""");
        var img = OracleImages.Generate("noise", 4, 2);
        var sq = p.Prepare(img);
        Assert.That((sq.Width, sq.Height), Is.EqualTo((4, 4)));
        var bg = ((byte)122, (byte)116, (byte)104); // int(mean · 255)
        for (int x = 0; x < 4; x++)
        {
            Assert.That(sq[x, 0], Is.EqualTo(bg));
            Assert.That(sq[x, 1], Is.EqualTo(img[x, 0]));
            Assert.That(sq[x, 2], Is.EqualTo(img[x, 1]));
            Assert.That(sq[x, 3], Is.EqualTo(bg));
        }
        // CLIPImageProcessor has no such step
        var clip = (BasicImageProcessor)With("llava", """{"do_pad": true, "do_resize": false, "do_center_crop": false}""");
        Assert.That(clip.Prepare(img), Is.SameAs(img));
    }

    [Test]
    public void ImagesOfOnePromptShareTheTensors()
    {
        var a = OracleImages.Generate("smooth", 80, 60);
        var b = OracleImages.Generate("noise", 30, 90);
        using (var r = ImageProcessors.ForFolder(Fixture("llava_next")).Process([a, b]))
        {
            Assert.That(r["pixel_values"].shape, Is.EqualTo(new long[] { 2, 5, 3, 56, 56 }));
            Assert.That(r["image_sizes"].data<long>().ToArray(), Is.EqualTo(new long[] { 60, 80, 90, 30 }));
            Assert.That(r.Images.Select(i => i.Tiles), Is.EqualTo(new[] { 5, 3 }));
            // the second image has three tiles; its last two slots are zero padding
            Assert.That(r["pixel_values"][1, 3].abs().max().item<float>(), Is.EqualTo(0f));
            Assert.That(r["pixel_values"][1, 2].abs().max().item<float>(), Is.GreaterThan(0f));
            Assert.That(r.TotalImageTokens, Is.EqualTo(r.Images.Sum(i => i.NumImageTokens)));
        }
        using (var r = ImageProcessors.ForFolder(Fixture("idefics3")).Process([a, b]))
        {
            Assert.That(r["pixel_values"].shape, Is.EqualTo(new long[] { 1, 8, 3, 56, 56 }));
            Assert.That(r["pixel_attention_mask"].shape, Is.EqualTo(new long[] { 1, 8, 56, 56 }));
            Assert.That(r.Images.Select(i => (i.Rows, i.Cols)), Is.EqualTo(new[] { (2, 2), (2, 1) }));
        }
        using (var r = ImageProcessors.ForFolder(Fixture("qwen2_vl")).Process([a, b]))
        {
            // 30x90 is under min_pixels at 28x84, so it grows to 56x112
            Assert.That(r["image_grid_thw"].data<long>().ToArray(), Is.EqualTo(new long[] { 1, 4, 6, 1, 8, 4 }));
            Assert.That(r["pixel_values"].shape, Is.EqualTo(new long[] { 24 + 32, 1176 }));
        }
        using (var r = ImageProcessors.ForFolder(Fixture("idefics")).Process([a, b]))
            Assert.That(r["pixel_values"].shape, Is.EqualTo(new long[] { 1, 2, 3, 56, 56 }));
        Assert.Throws<ArgumentException>(() => ImageProcessors.ForFolder(Fixture("llava")).Process([]));
        // without a crop, two aspect ratios cannot be stacked
        var noCrop = With("llava", """{"size": {"shortest_edge": 56}, "do_center_crop": false}""");
        Assert.Throws<ArgumentException>(() => noCrop.Process([a, b]));
    }

    [Test]
    public void Idefics3WithoutSplittingGivesOneSquareTile()
    {
        var p = (Idefics3ImageProcessor)With("idefics3", """{"do_image_splitting": false, "size": {"longest_edge": 112}, "max_image_size": {"longest_edge": 56}}""");
        using var r = p.Process([OracleImages.Generate("smooth", 80, 60)]);
        Assert.That(r["pixel_values"].shape, Is.EqualTo(new long[] { 1, 1, 3, 56, 56 }));
        Assert.That(r.Images[0], Is.EqualTo(new ImageLayout(80, 60, 4, 1, 0, 0, 4)));
    }
}
