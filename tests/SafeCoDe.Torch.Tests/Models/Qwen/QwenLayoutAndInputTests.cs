using NUnit.Framework;
using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Models;
using SafeCoDe.Torch.Models.Common;
using SafeCoDe.Torch.Models.Qwen;
using SafeCoDe.Torch.Tests.Conformance;
using TorchSharp;
using static TorchSharp.torch;
using static SafeCoDe.Torch.Tests.TestMath;

namespace SafeCoDe.Torch.Tests.Models.Qwen;

public class VisionLayoutTests
{
    private static QwenVisionConfig Vision(string family) =>
        ((QwenVLConfig)ModelConfig.Load(BackboneConformanceTests.FixtureDir(family, "v5"))).Vision;

    [Test]
    public void Qwen2VL_PatchesInMergeOrder_OneSegmentPerImage()
    {
        var l = VisionLayout.Build([(1, 4, 6), (1, 2, 2)], Vision(ModelFamilies.Qwen2VL), windowed: false);
        Assert.That(l.NumPatches, Is.EqualTo(28));
        Assert.That(l.TokensPerImage, Is.EqualTo(new long[] { 6, 1 }));
        // the first 2x2 merge unit, then the one to its right
        Assert.That(l.Rows.Take(8), Is.EqualTo(new long[] { 0, 0, 1, 1, 0, 0, 1, 1 }));
        Assert.That(l.Cols.Take(8), Is.EqualTo(new long[] { 0, 1, 0, 1, 2, 3, 2, 3 }));
        Assert.That(l.FullSegments, Is.EqualTo(new long[] { 24, 4 }));
        Assert.That(l.WindowIndex, Is.Null);
    }

    [Test]
    public void Qwen25VL_WindowsOf2x2MergeUnits_AndTheirInverse()
    {
        // fixture window_size 56 px = 2 merge units of 2 patches of 14 px
        var l = VisionLayout.Build([(1, 4, 6), (1, 8, 4)], Vision(ModelFamilies.Qwen25VL), windowed: true);
        // image 0: merged grid 2x3 -> windows {0,1,3,4} and the cut-off {2,5}; image 1: 4x2 -> {6..9} and {10..13}
        Assert.That(l.WindowIndex, Is.EqualTo(new long[] { 0, 1, 3, 4, 2, 5, 6, 7, 8, 9, 10, 11, 12, 13 }));
        Assert.That(l.InverseWindowIndex, Is.EqualTo(new long[] { 0, 1, 4, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13 }));
        Assert.That(l.WindowSegments, Is.EqualTo(new long[] { 16, 8, 16, 16 }));
        Assert.That(l.FullSegments, Is.EqualTo(new long[] { 24, 32 }));
        // the rotary positions follow the permutation: slot 2 holds merge unit 3 (rows 2-3, columns 0-1)
        Assert.That(l.Rows.Skip(8).Take(4), Is.EqualTo(new long[] { 2, 2, 3, 3 }));
        Assert.That(l.Cols.Skip(8).Take(4), Is.EqualTo(new long[] { 0, 1, 0, 1 }));
    }

    [Test]
    public void GridNotDivisibleByMergeSize_Throws()
    {
        Assert.Throws<ArgumentException>(() => VisionLayout.Build([(1, 3, 4)], Vision(ModelFamilies.Qwen2VL), windowed: false));
    }
}

/// <summary>Input checks of the Qwen backbone, on the fixture model and its reference inputs.</summary>
[TestFixture(ModelFamilies.Qwen2VL)]
[TestFixture(ModelFamilies.Qwen25VL)]
public class QwenInputTests(string family)
{
    private IBackbone _model = null!;
    private BackboneInputs _real = null!;
    private readonly List<Tensor> _owned = [];

    [OneTimeSetUp]
    public void Load()
    {
        var dir = BackboneConformanceTests.FixtureDir(family, "v5");
        _model = Backbones.Load(dir, CPU, ScalarType.Float32);
        (_real, _) = BackboneConformanceTests.ReferenceInputs(dir, _owned);
        if (!_real.Images.ContainsKey("mm_token_type_ids"))
        {
            // HF 5.17 made the Qwen2.5-VL reference without token types; give these input checks the processor's form
            var imageId = ((QwenVLConfig)ModelConfig.Load(dir)).ImageTokenId;
            var types = _real.InputIds.eq(imageId).to(ScalarType.Int64);
            _owned.Add(types);
            _real = WithImages(d => d["mm_token_type_ids"] = types);
        }
    }

    [OneTimeTearDown]
    public void Unload()
    {
        _model?.Dispose();
        foreach (var t in _owned) t.Dispose();
    }


    private BackboneInputs WithImages(Action<Dictionary<string, Tensor>> edit)
    {
        var images = new Dictionary<string, Tensor>(_real.Images);
        edit(images);
        return _real with { Images = images };
    }

    [Test]
    public void MissingTokenTypes_AreDerivedFromTheImageTokenId()
    {
        using var scope = NewDisposeScope();
        Assert.That(_real.Images.ContainsKey("mm_token_type_ids"), "the fixture carries mm_token_type_ids");
        var without = WithImages(d => d.Remove("mm_token_type_ids"));
        var (s1, a) = _model.Prefill(_real, 0, allLogits: true);
        // the flag is a constructor option: a second backbone with it, on the same weights
        var cfg = (QwenVLConfig)_model.Config;
        using (var deriving = new QwenVLBackbone(cfg, new ParamFactory(CPU, ScalarType.Float32), derivePositionsWithoutTokenTypes: true))
        {
            WeightLoader.Load(deriving, ModelDirectory.Open(Path.GetDirectoryName(cfg.ConfigPath)!), QwenVLBackbone.Tied(cfg));
            deriving.eval();
            Assert.That(deriving.DerivePositionsWithoutTokenTypes, Is.True);
            Assert.That(((QwenVLBackbone)_model).DerivePositionsWithoutTokenTypes, Is.False, "the default follows HF 5.x");
            var (s2, b) = deriving.Prefill(without, 0, allLogits: true);
            s2.Dispose();
            Assert.That(RelErr(b, a), Is.LessThan(1e-6));
        }
        var (s3, c) = _model.Prefill(without, 0, allLogits: true);
        s1.Dispose(); s3.Dispose();
        if (family == ModelFamilies.Qwen25VL)
            Assert.That(RelErr(c, a), Is.GreaterThan(0.1), "by default Qwen2.5-VL follows HF 5.x: no token types, plain text positions");
        else
            Assert.That(RelErr(c, a), Is.LessThan(1e-6), "Qwen2-VL always derives them");
    }

    [Test]
    public void TokenTypesDisagreeingWithTheImageTokens_Throw()
    {
        using var scope = NewDisposeScope();
        var types = _real.Images["mm_token_type_ids"].clone();
        types[0, 0] = tensor(1L);
        var ex = Assert.Throws<ArgumentException>(() => _model.Prefill(WithImages(d => d["mm_token_type_ids"] = types), 0).State.Dispose());
        Assert.That(ex!.Message, Does.Contain("disagree"));
    }

    [Test]
    public void VideoInputs_AreRejected()
    {
        using var scope = NewDisposeScope();
        var types = _real.Images["mm_token_type_ids"].clone();
        types.masked_fill_(types.eq(1), 2);
        Assert.Throws<NotSupportedException>(() => _model.Prefill(WithImages(d => d["mm_token_type_ids"] = types), 0).State.Dispose());
        var grid = _real.Images["image_grid_thw"];
        Assert.Throws<NotSupportedException>(() => _model.Prefill(WithImages(d => d["video_grid_thw"] = grid), 0).State.Dispose());
    }

    [Test]
    public void GridDisagreeingWithPixelRows_Throws()
    {
        using var scope = NewDisposeScope();
        var grid = tensor(new long[] { 1, 4, 4 }).view(1, 3); // 16 patches, pixel_values has 24
        var ex = Assert.Throws<ArgumentException>(() => _model.Prefill(WithImages(d => d["image_grid_thw"] = grid), 0).State.Dispose());
        Assert.That(ex!.Message, Does.Contain("pixel_values"));
    }

    [Test]
    public void ImageTokensWithoutPixels_Throw()
    {
        using var scope = NewDisposeScope();
        var noImages = WithImages(d => { d.Remove("pixel_values"); d.Remove("image_grid_thw"); });
        Assert.Throws<ArgumentException>(() => _model.Prefill(noImages, 0).State.Dispose());
    }
}

public class QwenConfigTests
{
    [Test]
    public void FlatHubConfig_TakesThePythonClassDefaults()
    {
        var dir = TestPaths.NewTempDir();
        try
        {
            // a Hub-style flat config that names almost nothing: every other value comes from the transformers classes
            File.WriteAllText(Path.Combine(dir, "config.json"),
                """{"model_type": "qwen2_5_vl", "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]}, "vision_config": {"hidden_size": 1280}}""");
            var c = (QwenVLConfig)ModelConfig.Load(dir);
            Assert.That((c.Text.HiddenSize, c.Text.NumLayers, c.Text.NumHeads, c.Text.NumKvHeads, c.Text.IntermediateSize),
                Is.EqualTo((8192, 80, 64, 8, 29568)));
            Assert.That(c.Text.RmsNormEps, Is.EqualTo(1e-5));
            Assert.That(c.Text.MaxPositions, Is.EqualTo(32768));
            Assert.That(c.Text.Rope.Theta, Is.EqualTo(1e6));
            Assert.That(c.Text.AttentionBias, Is.True);
            var v = c.Vision;
            Assert.That((v.Depth, v.EmbedDim, v.OutHiddenSize, v.NumHeads, v.IntermediateSize), Is.EqualTo((32, 1280, 3584, 16, 3420)));
            Assert.That((v.WindowSize, v.TokensPerSecond, v.PatchSize, v.SpatialMergeSize, v.TemporalPatchSize), Is.EqualTo((112, 4, 14, 2, 2)));
            Assert.That(v.FullAttBlockIndexes, Is.EqualTo(new[] { 7, 15, 23, 31 }));
            Assert.That(v.HiddenAct, Is.EqualTo("silu"));
            Assert.That(v.RopeTheta, Is.EqualTo(10000.0));
            Assert.That((c.ImageTokenId, c.VisionStartTokenId), Is.EqualTo((151655, 151652)));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Test]
    public void MropeSectionNotMatchingTheHeadSize_IsAConfigError()
    {
        var dir = TestPaths.NewTempDir();
        try
        {
            File.WriteAllText(Path.Combine(dir, "config.json"),
                """{"model_type": "qwen2_vl", "hidden_size": 64, "num_attention_heads": 4, "num_key_value_heads": 2, "rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 4]}}""");
            var ex = Assert.Throws<ConfigException>(() => ModelConfig.Load(dir));
            Assert.That(ex!.Message, Does.Contain("mrope_section"));
        }
        finally { Directory.Delete(dir, true); }
    }
}
