using System.Text.Json;
using NUnit.Framework;
using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Processing.Images;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Tests.Processing.Images;

/// <summary>
/// The images tools/fixtures/make_image_oracle.py feeds HF's processors, made by the same integer formulas.
/// </summary>
public static class OracleImages
{
    public static RgbImage Generate(string kind, int width, int height)
    {
        var img = new RgbImage(width, height);
        var p = img.Pixels;
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                for (int c = 0; c < 3; c++)
                {
                    long v;
                    if (kind == "noise")
                    {
                        ulong h = (((ulong)x * 73856093UL) ^ ((ulong)y * 19349663UL) ^ ((ulong)c * 83492791UL)) & 0xFFFFFFFFUL;
                        v = (long)(((h * 2654435761UL) & 0xFFFFFFFFUL) >> 24);
                    }
                    else
                    {
                        long dx = 2L * x - width, dy = 2L * y - height;
                        v = (x * 3L + y * 5L + c * 60L + (dx * dx + dy * dy) / 64) % 256;
                    }
                    p[(y * width + x) * 3 + c] = (byte)v;
                }
        return img;
    }
}

/// <summary>
/// HF transformers 5.17's own processors (the classes the fixtures name, torchvision backend) run by
/// make_image_oracle.py on generated images of many sizes: the fixtures' tiny configs (upscaling, downscaling,
/// extreme aspect ratios, noise that stresses rounding, two images in one prompt) and the real checkpoints'
/// configs (LLaVA-1.5 336, LLaVA-NeXT 336 with its five pinpoints, Qwen2-VL's pixel range, Idefics3-8B's 1456/364,
/// BLIP 224, IDEFICS 224) on sizes from 1x1 to 4000x3000. Shapes, geometry tensors, row/column info and LLaVA-NeXT
/// token counts must match exactly; pixel values (a strided sample of up to 4096 per case) within the parity bounds.
/// </summary>
public class OracleTests
{
    private static readonly Lazy<JsonDocument> Oracle = new(() =>
        JsonDocument.Parse(File.ReadAllBytes(TestPaths.TestData("ImageOracle", "oracle.json"))));

    private static readonly Lazy<SafetensorsFile> Samples = new(() =>
        SafetensorsFile.Open(TestPaths.TestData("ImageOracle", "oracle.safetensors")));

    private static IEnumerable<JsonElement> Cases() => Oracle.Value.RootElement.GetProperty("cases").EnumerateArray();

    public static IEnumerable<TestCaseData> CaseNames() =>
        Cases().Select(c => c.GetProperty("name").GetString()!).Select(n => new TestCaseData(n).SetName($"Oracle({n})"));

    [Test]
    public void OracleWasMadeByTheFixturesTransformers()
    {
        var root = Oracle.Value.RootElement;
        Assert.That(root.GetProperty("transformers").GetString(), Is.EqualTo("5.17.0"));
        Assert.That(Cases().Count(), Is.GreaterThanOrEqualTo(160));
    }

    /// <summary>A model config of the case's family whose vision settings fit the case's processor config.</summary>
    private static ModelConfig ConfigFor(string family, bool real)
    {
        var fixtureFamily = family == "qwen2_vl" ? "qwen2_vl" : family;
        var cfg = ModelConfig.Load(Path.Combine(TestPaths.Root, "weights", "fixtures", fixtureFamily, "v5"));
        if (!real) return cfg;
        return cfg switch
        {
            LlavaConfig l => l with { Vision = l.Vision with { ImageSize = 336, PatchSize = 14 } },
            Idefics3Config i => i with { Vision = i.Vision with { ImageSize = 364, PatchSize = 14 } },
            _ => cfg,
        };
    }

    [TestCaseSource(nameof(CaseNames))]
    public void MatchesHf(string name)
    {
        var c = Cases().Single(x => x.GetProperty("name").GetString() == name);
        string family = c.GetProperty("family").GetString()!;
        bool real = name.StartsWith("real-");
        var config = ConfigFor(family, real);
        var processor = ImageProcessors.For(config, JsonConfig.FromJson(c.GetProperty("config").GetRawText(), $"oracle:{name}"));
        Assert.That(processor.ProcessorClass, Is.EqualTo(c.GetProperty("processor_class").GetString()));
        var images = c.GetProperty("images").EnumerateArray()
            .Select(i => OracleImages.Generate(i.GetProperty("kind").GetString()!, i.GetProperty("width").GetInt32(), i.GetProperty("height").GetInt32()))
            .ToList();

        if (c.TryGetProperty("error", out var error))
        {
            var e = Assert.Throws<ArgumentException>(() => processor.Process(images).Dispose());
            TestContext.Out.WriteLine($"HF: {error.GetString()}\nours: {e!.Message}");
            Assert.That(e.Message, Does.Contain("aspect ratio"));
            return;
        }

        using var result = processor.Process(images);
        using var scope = NewDisposeScope();
        var outputs = c.GetProperty("outputs");
        foreach (var o in outputs.EnumerateObject())
        {
            if (o.Name is "rows" or "cols")
            {
                var expected = o.Value.GetProperty("python")[0].EnumerateArray().Select(v => v.GetInt32()).ToArray();
                var ours = result.Images.Select(l => o.Name == "rows" ? l.Rows : l.Cols).ToArray();
                Assert.That(ours, Is.EqualTo(expected), o.Name);
                continue;
            }
            var shape = o.Value.GetProperty("shape").EnumerateArray().Select(v => v.GetInt64()).ToArray();
            var t = result[o.Name];
            // IdeficsImageProcessor itself returns [n, 3, H, W]; the IDEFICS processor (and this engine) add the sample axis
            var ourShape = family == "idefics" && o.Name == "pixel_values" ? t.shape[1..] : t.shape;
            Assert.That(ourShape, Is.EqualTo(shape), $"{o.Name} shape");
            if (o.Value.TryGetProperty("values", out var values))
                Assert.That(t.to(ScalarType.Float64).data<double>().ToArray(), Is.EqualTo(values.EnumerateArray().Select(v => v.GetDouble()).ToArray()), o.Name);
            if (o.Name == "pixel_attention_mask")
            {
                var m = t.reshape(-1, t.shape[^2], t.shape[^1]).to(ScalarType.Bool);
                Assert.That(m.any(-1).sum(-1).data<long>().ToArray(), Is.EqualTo(o.Value.GetProperty("tile_rows").EnumerateArray().Select(v => v.GetInt64()).ToArray()), "mask rows");
                Assert.That(m.any(-2).sum(-1).data<long>().ToArray(), Is.EqualTo(o.Value.GetProperty("tile_cols").EnumerateArray().Select(v => v.GetInt64()).ToArray()), "mask cols");
            }
        }
        Assert.That(result.Tensors.Keys.Order(), Is.EqualTo(outputs.EnumerateObject().Select(o => o.Name).Where(n => n is not ("rows" or "cols")).Order()));

        // the oracle recorded LlavaNextProcessor._get_number_of_features with one extra (CLS) token, which the
        // processor removes again for the "default" feature strategy
        if (c.TryGetProperty("llava_next_tokens", out var tokens) && tokens.ValueKind == JsonValueKind.Array)
            Assert.That(result.Images.Select(l => l.NumImageTokens).ToArray(), Is.EqualTo(tokens.EnumerateArray().Select(v => v.GetInt32() - 1).ToArray()), "LLaVA-NeXT image tokens");
        if (result.Tensors.TryGetValue("image_grid_thw", out var thw))
        {
            var g = thw.data<long>().ToArray();
            for (int i = 0; i < result.Images.Count; i++)
                Assert.That(result.Images[i].GridThw, Is.EqualTo(((int)g[3 * i], (int)g[3 * i + 1], (int)g[3 * i + 2])));
        }
        for (int i = 0; i < images.Count; i++)
            Assert.That(processor.Layout(images[i].Width, images[i].Height), Is.EqualTo(result.Images[i]), "layout without pixels");

        // pixel values: the oracle keeps a strided sample (indices k·N/n)
        var pv = result["pixel_values"];
        var sample = Samples.Value.Read($"{name}/pixel_values").data<float>().ToArray();
        long n = sample.Length, total = pv.numel();
        var index = new long[n];
        for (long k = 0; k < n; k++) index[k] = total <= n ? k : k * total / n;
        var ours2 = pv.reshape(-1).index_select(0, tensor(index)).data<float>().ToArray();
        Func<long, int> channel = family == "qwen2_vl" ? LevelStats.QwenRows((int)pv.shape[1]) : LevelStats.Chw((int)pv.shape[^2], (int)pv.shape[^1]);
        var stats = LevelStats.Compare(ours2, sample, k => channel(index[k]), processor.Settings.ImageStd);
        TestContext.Out.WriteLine($"{name}: {string.Join("x", pv.shape)}: {stats}");
        Assert.That(stats.MaxLevels, Is.LessThanOrEqualTo(2.0), stats.ToString());
        Assert.That(stats.FractionWithinOne, Is.GreaterThanOrEqualTo(0.99), stats.ToString());
    }
}
