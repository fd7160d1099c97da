using NUnit.Framework;
using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Processing.Images;
using TorchSharp;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Tests.Processing.Images;

/// <summary>
/// For every fixture folder (seven families, Hub and transformers-5 layouts): decode image.png, process it with the
/// processor chosen from config.json + preprocessor_config.json, and compare with the inputs HF built
/// (reference.safetensors): identical shapes and geometry tensors, pixel values within one 8-bit level on ≥ 99%
/// and two everywhere, and the image-token count equal to the image tokens in the reference prompt.
/// </summary>
public class FixtureParityTests
{
    public static IEnumerable<TestCaseData> Folders()
    {
        var root = Path.Combine(TestPaths.Root, "weights", "fixtures");
        foreach (var family in Directory.GetDirectories(root).Order())
            foreach (var variant in Directory.GetDirectories(family).Order())
                yield return new TestCaseData(Path.GetRelativePath(root, variant)).SetName($"Fixture({Path.GetFileName(family)}/{Path.GetFileName(variant)})");
    }

    [Test]
    public void AllSevenFamiliesHaveFixtures()
    {
        var names = Folders().Select(c => ((string)c.Arguments[0]!).Split('/', '\\')[0]).Distinct().Order().ToArray();
        Assert.That(names, Is.EqualTo(ModelFamilies.All.Order().ToArray()));
    }

    [TestCaseSource(nameof(Folders))]
    public void MatchesReference(string relative)
    {
        var dir = Path.Combine(TestPaths.Root, "weights", "fixtures", relative);
        var config = ModelConfig.Load(dir);
        var processor = ImageProcessors.For(config, JsonConfig.Load(Path.Combine(dir, "preprocessor_config.json")));
        var reference = SafetensorsFile.Open(Path.Combine(dir, "reference.safetensors"));
        Assert.That(processor.ProcessorClass, Is.EqualTo(reference.Metadata["image_processor_class"]));

        var image = ImageDecoder.Load(Path.Combine(dir, "image.png"));
        Assert.That((image.Width, image.Height), Is.EqualTo((80, 60)));
        using var result = processor.Process([image]);
        using var scope = NewDisposeScope();

        var expectedKeys = new[] { "pixel_values", "image_sizes", "image_grid_thw", "pixel_attention_mask" }.Where(reference.Entries.ContainsKey).Order();
        Assert.That(result.Tensors.Keys.Order(), Is.EqualTo(expectedKeys), "tensor names");

        foreach (var name in result.Tensors.Keys.Where(k => k != "pixel_values"))
        {
            var ours = result[name];
            var refT = reference.Read(name);
            Assert.That(ours.shape, Is.EqualTo(refT.shape), $"{name} shape");
            Assert.That(ours.dtype, Is.EqualTo(refT.dtype), $"{name} dtype");
            Assert.That(ours.to(ScalarType.Float64).data<double>().ToArray(), Is.EqualTo(refT.to(ScalarType.Float64).data<double>().ToArray()), $"{name} values");
        }

        var pv = result["pixel_values"];
        var refPv = reference.Read("pixel_values");
        Assert.That(pv.shape, Is.EqualTo(refPv.shape), "pixel_values shape");
        var channel = config.ModelType is ModelFamilies.Qwen2VL or ModelFamilies.Qwen25VL
            ? LevelStats.QwenRows((int)pv.shape[1])
            : LevelStats.Chw((int)pv.shape[^2], (int)pv.shape[^1]);
        var stats = LevelStats.Compare(pv.data<float>().ToArray(), refPv.data<float>().ToArray(), channel, processor.Settings.ImageStd);
        TestContext.Out.WriteLine($"{relative}: {processor.ProcessorClass} pixel_values {string.Join("x", pv.shape)}: {stats}");
        Assert.That(stats.MaxLevels, Is.LessThanOrEqualTo(2.0), stats.ToString());
        Assert.That(stats.FractionWithinOne, Is.GreaterThanOrEqualTo(0.99), stats.ToString());

        // the prompt HF built holds exactly as many image tokens as the layout asks for
        var ids = reference.Read("input_ids").data<long>().ToArray();
        long imageToken = ImageTokenId(dir, config);
        Assert.That(result.Images, Has.Count.EqualTo(1));
        Assert.That(result.Images[0].NumImageTokens, Is.EqualTo(ids.Count(i => i == imageToken)), "image tokens in the reference prompt");
        Assert.That(processor.Layout(80, 60), Is.EqualTo(result.Images[0]));
    }

    private static long ImageTokenId(string dir, ModelConfig config)
    {
        var c = JsonConfig.Load(Path.Combine(dir, "config.json"));
        return c.IntOrNull("image_token_index") ?? c.IntOrNull("image_token_id") ?? config.Text.VocabSize; // IDEFICS: <image> is the first added token
    }
}
