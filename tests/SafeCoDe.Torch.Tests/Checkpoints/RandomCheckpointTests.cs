using NUnit.Framework;
using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Models;
using SafeCoDe.Torch.Tests.Conformance;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Tests.Checkpoints;

public class RandomCheckpointTests
{
    private string _tmp = null!;
    [SetUp] public void MakeTemp() => _tmp = TestPaths.NewTempDir();
    [TearDown] public void RemoveTemp() { try { Directory.Delete(_tmp, true); } catch (IOException) { } }

    private static string Fixture(string rel) => Path.Combine(TestPaths.Root, "weights", "fixtures", rel);

    /// <summary>One config per family with a backbone (the module defines the tensors to write).</summary>
    public static IEnumerable<string> Families() => ModelDirectoryTests.AllFixtureFolders()
        .Where(f => f.EndsWith("/v5") && Backbones.Supported.Contains(f.Split('/')[0]));

    [TestCaseSource(nameof(Families))]
    public void WritesAHubLayoutCheckpointThatLoadsAndRuns(string rel)
    {
        var family = rel.Split('/')[0];
        var dir = Path.Combine(_tmp, family);
        RandomCheckpoint.Write(Path.Combine(Fixture(rel), "config.json"), dir, new RandomCheckpointOptions { Seed = 3 });
        var fixture = ModelDirectory.Open(Fixture(rel));
        var ours = ModelDirectory.Open(dir);
        Assert.That(ours.Tensors.Keys.Order(), Is.EqualTo(fixture.Tensors.Keys.Order()), "same canonical tensors as HF's own checkpoint");
        Assert.That(InspectReport.From(ours).ParameterCount, Is.EqualTo(InspectReport.From(fixture).ParameterCount));
        Assert.That(File.Exists(Path.Combine(dir, "generation_config.json")) && File.Exists(Path.Combine(dir, "preprocessor_config.json")), Is.True);
        if (family is "llava" or "llava_next")
            Assert.That(ours.Files[0].Entries.Keys, Has.Some.StartsWith("vision_tower.vision_model."), "Hub names");
        if (family == "instructblip")
            Assert.That(ours.Files[0].Entries.Keys, Has.Some.EndsWith("self_attn.q_bias").And.None.EndsWith("qkv.bias"), "Hub q/v bias layout");
        using var model = Backbones.Load(dir, CPU, ScalarType.Float32);
        var owned = new List<Tensor>();
        var (real, _) = BackboneConformanceTests.ReferenceInputs(Fixture(rel), owned);
        var (s, l) = model.Prefill(real, 2);
        using (s) using (l)
        {
            Assert.That(l.isfinite().all().item<bool>(), Is.True);
            Assert.That(l.std().item<float>(), Is.GreaterThan(0.1f), "random weights give varied logits");
        }
        foreach (var t in owned) t.Dispose();
    }

    [Test]
    public void SameSeedSameWeights_ShardsWithAnIndex()
    {
        var cfg = Path.Combine(Fixture("llava/hub"), "config.json");
        RandomCheckpoint.Write(cfg, Path.Combine(_tmp, "a"), new RandomCheckpointOptions { Seed = 5 });
        RandomCheckpoint.Write(cfg, Path.Combine(_tmp, "b"), new RandomCheckpointOptions { Seed = 5, ShardBytes = 200_000 });
        RandomCheckpoint.Write(cfg, Path.Combine(_tmp, "c"), new RandomCheckpointOptions { Seed = 6, DType = ScalarType.BFloat16 });
        var a = ModelDirectory.Open(Path.Combine(_tmp, "a"));
        var b = ModelDirectory.Open(Path.Combine(_tmp, "b"));
        var c = ModelDirectory.Open(Path.Combine(_tmp, "c"));
        Assert.That(b.Files.Count, Is.GreaterThan(1));
        Assert.That(b.IndexPath, Is.Not.Null);
        const string name = "language_model.model.layers.1.mlp.up_proj.weight";
        using var ta = a.Tensors[name].Read();
        using var tb = b.Tensors[name].Read();
        using var tc = c.Tensors[name].Read(ScalarType.Float32);
        Assert.That((ta - tb).abs().max().item<float>(), Is.EqualTo(0f));
        Assert.That((ta - tc).abs().max().item<float>(), Is.GreaterThan(0.01f));
        Assert.That(c.Tensors[name].DType, Is.EqualTo(SafetensorsDType.BF16));
    }
}
