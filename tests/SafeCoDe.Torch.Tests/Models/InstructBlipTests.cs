using NUnit.Framework;
using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Models;
using SafeCoDe.Torch.Models.InstructBlip;
using SafeCoDe.Torch.Tests.Conformance;
using SafeCoDe.Torch.Verification;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Tests.Models;

/// <summary>InstructBLIP specifics the conformance suite does not cover: the Hub's q_bias/v_bias layout and the instruction path.</summary>
public class InstructBlipTests
{
    private static readonly string V5 = BackboneConformanceTests.FixtureDir(ModelFamilies.InstructBlip, "v5");
    private readonly List<string> _temp = [];
    private readonly List<Tensor> _owned = [];

    [TearDown]
    public void CleanUp()
    {
        foreach (var d in _temp) if (Directory.Exists(d)) Directory.Delete(d, true);
        _temp.Clear();
        foreach (var t in _owned) t.Dispose();
        _owned.Clear();
    }

    /// <summary>
    /// Copies the v5 fixture into a temp folder with its fused <c>self_attn.qkv.bias</c> tensors split the way the
    /// Hub stores them (q_bias, v_bias; the k third is implicit zero). <paramref name="dropVBias"/> leaves v_bias out.
    /// </summary>
    private string HubLayoutCopy(bool dropVBias = false)
    {
        var dir = TestPaths.NewTempDir();
        _temp.Add(dir);
        foreach (var name in new[] { "config.json", "generation_config.json", "reference.safetensors", "preprocessor_config.json" })
            File.Copy(Path.Combine(V5, name), Path.Combine(dir, name));
        var src = SafetensorsFile.Open(Path.Combine(V5, "model.safetensors"));
        var tensors = new Dictionary<string, Tensor>();
        int fused = 0;
        foreach (var name in src.Entries.Keys)
        {
            var t = src.Read(name);
            _owned.Add(t);
            if (!name.EndsWith(".self_attn.qkv.bias")) { tensors[name] = t; continue; }
            fused++;
            long h = t.shape[0] / 3;
            var stem = name[..^"qkv.bias".Length];
            Assert.That(t.narrow(0, h, h).abs().max().item<float>(), Is.Zero, $"{name}: the fixture keeps the k bias zero, as the Hub layout implies");
            tensors[stem + "q_bias"] = t.narrow(0, 0, h).clone();
            if (!dropVBias) tensors[stem + "v_bias"] = t.narrow(0, 2 * h, h).clone();
            _owned.Add(tensors[stem + "q_bias"]);
            if (!dropVBias) _owned.Add(tensors[stem + "v_bias"]);
        }
        Assert.That(fused, Is.EqualTo(2), "the fixture's vision tower has two layers with a fused qkv bias");
        SafetensorsWriter.Write(Path.Combine(dir, "model.safetensors"), tensors, new Dictionary<string, string> { ["format"] = "pt" });
        return dir;
    }

    [Test]
    public void HubQAndVBiasLayout_GivesIdenticalLogits()
    {
        var hub = HubLayoutCopy();
        var hubDir = ModelDirectory.Open(hub);
        Assert.That(SafetensorsFile.Open(Path.Combine(hub, "model.safetensors")).Entries.Keys.Any(k => k.EndsWith("qkv.bias")), Is.False);
        var fused = hubDir.Tensors["vision_model.encoder.layers.0.self_attn.qkv.bias"];
        Assert.That(fused.IsFusedQkvBias, Is.True);
        Assert.That(fused.Shape, Is.EqualTo(new long[] { 96 }));

        var (real, noised) = BackboneConformanceTests.ReferenceInputs(V5, _owned);
        using var a = Backbones.Load(V5, CPU, ScalarType.Float32);
        using var b = Backbones.Load(hubDir, CPU, ScalarType.Float32);
        foreach (var inputs in new[] { real, noised })
        {
            var (sa, la) = a.Prefill(inputs, 0, allLogits: true);
            var (sb, lb) = b.Prefill(inputs, 0, allLogits: true);
            sa.Dispose(); sb.Dispose();
            using (la) using (lb)
            using (var diff = (la - lb).abs().max())
                Assert.That(diff.item<float>(), Is.Zero, "q|0|v assembled from the Hub tensors equals the fused bias bit for bit");
        }

        var r = Verifier.Run(hub, null, CPU, ScalarType.Float32);
        TestContext.Out.WriteLine(r.SummaryLine());
        Assert.That(r.Pass, Is.True, r.SummaryLine());
    }

    [Test]
    public void HubLayout_WithAQBiasButNoVBias_IsRejectedByName()
    {
        var hub = HubLayoutCopy(dropVBias: true);
        var ex = Assert.Throws<SafetensorsFormatException>(() => ModelDirectory.Open(hub));
        Assert.That(ex!.Message, Does.Contain("q_bias").And.Contain("v_bias"));
    }

    [Test]
    public void TheInstructionChangesTheImageTokens_AndRightPaddingItChangesNothing()
    {
        var (real, _) = BackboneConformanceTests.ReferenceInputs(V5, _owned);
        using var model = (InstructBlipBackbone)Backbones.Load(V5, CPU, ScalarType.Float32);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var pixels = real.Image("pixel_values")!;
        var ids = real.Image("qformer_input_ids")!;
        var mask = real.Image("qformer_attention_mask")!;
        var baseline = model.ImageFeatures(pixels, ids, mask);
        Assert.That(baseline.shape, Is.EqualTo(new long[] { 1, 8, 64 }), "num_query_tokens features of the text width");

        // another instruction → other query outputs (the Q-Former reads the instruction)
        var other = (ids + 1).remainder(300);
        var changed = model.ImageFeatures(pixels, other, mask);
        Assert.That(((changed - baseline).norm() / baseline.norm()).item<float>(), Is.GreaterThan(1e-3));

        // HF's positions run over the full row and padding keys are masked: right padding leaves the queries unchanged
        var padded = cat([ids, zeros(1, 3, ScalarType.Int64)], 1);
        var paddedMask = cat([mask, zeros(1, 3, ScalarType.Int64)], 1);
        var same = model.ImageFeatures(pixels, padded, paddedMask);
        Assert.That(((same - baseline).norm() / baseline.norm()).item<float>(), Is.LessThan(1e-6));
        // …and the mask is what makes it so: unmasked padding tokens do change them
        var unmasked = model.ImageFeatures(pixels, padded, ones_like(paddedMask));
        Assert.That(((unmasked - baseline).norm() / baseline.norm()).item<float>(), Is.GreaterThan(1e-3));
    }

    [Test]
    public void PixelsWithoutTheInstruction_AreRejectedByName()
    {
        var (real, _) = BackboneConformanceTests.ReferenceInputs(V5, _owned);
        using var model = Backbones.Load(V5, CPU, ScalarType.Float32);
        var noInstruction = real with { Images = new Dictionary<string, Tensor> { ["pixel_values"] = real.Image("pixel_values")! } };
        var ex = Assert.Throws<ArgumentException>(() => model.Prefill(noInstruction, 0));
        Assert.That(ex!.Message, Does.Contain("qformer_input_ids"));
    }

    [Test]
    public void ConfigWithoutImageTokenIndex_IsRejectedWithTheFieldName()
    {
        var dir = TestPaths.NewTempDir();
        _temp.Add(dir);
        var json = File.ReadAllText(Path.Combine(V5, "config.json")).Replace("\"image_token_index\": 511,", "");
        File.WriteAllText(Path.Combine(dir, "config.json"), json);
        var cfg = (InstructBlipConfig)ModelConfig.Load(dir);
        Assert.That(cfg.ImageTokenId, Is.Null);
        var ex = Assert.Throws<ConfigException>(() => new InstructBlipBackbone(cfg, new SafeCoDe.Torch.Models.Common.ParamFactory(CPU, ScalarType.Float32)).Dispose());
        Assert.That(ex!.Message, Does.Contain("image_token_index"));
    }
}
