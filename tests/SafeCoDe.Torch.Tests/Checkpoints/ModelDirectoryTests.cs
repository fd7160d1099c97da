using System.Text.Json;
using System.Text.Json.Nodes;
using NUnit.Framework;
using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Models;
using SafeCoDe.Torch.Tests.Conformance;
using TorchSharp;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Tests.Checkpoints;

public class ModelDirectoryTests
{
    public static IEnumerable<string> AllFixtureFolders() =>
        ModelFamilies.All.SelectMany(f => new[] { "hub", "v5" }.Select(v => f + "/" + v))
            .Where(p => Directory.Exists(Path.Combine(TestPaths.Root, "weights", "fixtures", p)));

    private static string Fixture(string rel) => Path.Combine(TestPaths.Root, "weights", "fixtures", rel);

    private string _tmp = null!;
    [SetUp] public void MakeTemp() => _tmp = TestPaths.NewTempDir();
    [TearDown] public void RemoveTemp() { try { Directory.Delete(_tmp, true); } catch (IOException) { } }

    /// <summary>Copies a fixture folder (optionally without some files) to a scratch folder.</summary>
    private string CopyFixture(string rel, params string[] skip)
    {
        var src = Fixture(rel);
        var dst = Path.Combine(_tmp, rel.Replace('/', '_'));
        Directory.CreateDirectory(dst);
        foreach (var f in Directory.GetFiles(src))
            if (!skip.Contains(Path.GetFileName(f))) File.Copy(f, Path.Combine(dst, Path.GetFileName(f)));
        return dst;
    }

    [Test]
    public void ThirteenFixtureFoldersExist() => Assert.That(AllFixtureFolders().Count(), Is.EqualTo(13));

    [TestCaseSource(nameof(AllFixtureFolders))]
    public void InspectReadsEveryFixture(string rel)
    {
        var m = ModelDirectory.Open(Fixture(rel));
        var r = InspectReport.From(m);
        Assert.That(r.Family, Is.EqualTo(rel.Split('/')[0]));
        Assert.That(r.ConfigLayout, Is.EqualTo(rel.EndsWith("hub") ? "transformers-4" : "transformers-5"));
        Assert.That(r.TensorCount, Is.GreaterThan(20));
        Assert.That(r.ParametersByComponent.Keys, Does.Contain("vision").And.Contain("language_model"));
        Assert.That(r.ParameterCount, Is.EqualTo(r.ParametersByComponent.Values.Sum()));
        // the text model summary must come from the file (fixtures: 2 layers, hidden 64, vocab 512, 4 heads, 2 kv heads)
        Assert.That(m.Config.Text.NumLayers, Is.EqualTo(2));
        Assert.That(m.Config.Text.HiddenSize, Is.EqualTo(64));
        Assert.That(m.Config.Text.VocabSize, Is.EqualTo(512));
        Assert.That(m.Config.Text.NumHeads, Is.EqualTo(4));
        var json = JsonNode.Parse(r.ToJson())!;
        Assert.That(json["parameter_count"]!.GetValue<long>(), Is.EqualTo(r.ParameterCount));
        Assert.That(r.ToText(), Does.Contain(r.Family));
    }

    [TestCase("llava")]
    [TestCase("llava_next")]
    [TestCase("qwen2_vl")]
    [TestCase("qwen2_5_vl")]
    [TestCase("idefics")]
    [TestCase("idefics3")]
    public void BothLayoutsOfAFamily_ReportTheSameParametersAndConfig(string family)
    {
        var hub = ModelDirectory.Open(Fixture(family + "/hub"));
        var v5 = ModelDirectory.Open(Fixture(family + "/v5"));
        var rh = InspectReport.From(hub);
        var rv = InspectReport.From(v5);
        Assert.That(rh.ParameterCount, Is.EqualTo(rv.ParameterCount));
        Assert.That(rh.ParametersByComponent, Is.EqualTo(rv.ParametersByComponent));
        Assert.That(hub.Tensors.Keys.Order(), Is.EqualTo(v5.Tensors.Keys.Order()), "canonical names agree across layouts");
        Assert.That(hub.Config.Text with { ModelType = "" }, Is.EqualTo(v5.Config.Text with { ModelType = "" }).Using<TextConfig>(SameText));
        Assert.That(rh.Vision, Is.EqualTo(rv.Vision));
    }

    private static bool SameText(TextConfig a, TextConfig b) =>
        a.VocabSize == b.VocabSize && a.HiddenSize == b.HiddenSize && a.IntermediateSize == b.IntermediateSize && a.NumLayers == b.NumLayers
        && a.NumHeads == b.NumHeads && a.NumKvHeads == b.NumKvHeads && a.HeadDim == b.HeadDim && a.RmsNormEps == b.RmsNormEps
        && a.Rope.Theta == b.Rope.Theta && a.Rope.Type == b.Rope.Type && (a.Rope.MropeSection ?? []).SequenceEqual(b.Rope.MropeSection ?? [])
        && a.TieWordEmbeddings == b.TieWordEmbeddings && a.AttentionBias == b.AttentionBias && a.EosTokenIds.SequenceEqual(b.EosTokenIds);

    [Test]
    public void QwenHubConfig_CarriesTheMissingVisionDefaults()
    {
        var path = Path.Combine(_tmp, "config.json");
        File.WriteAllText(path, """
            {"model_type": "qwen2_vl", "hidden_size": 1536, "num_hidden_layers": 28, "num_attention_heads": 12, "num_key_value_heads": 2,
             "intermediate_size": 8960, "vocab_size": 151936, "rope_theta": 1000000.0, "tie_word_embeddings": true,
             "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]},
             "vision_config": {"hidden_size": 1536, "in_chans": 3, "spatial_patch_size": 14}}
            """);
        var c = (QwenVLConfig)ModelConfig.Load(path);
        Assert.That(c.Vision.Depth, Is.EqualTo(32));
        Assert.That(c.Vision.EmbedDim, Is.EqualTo(1280));
        Assert.That(c.Vision.NumHeads, Is.EqualTo(16));
        Assert.That(c.Vision.IntermediateSize, Is.EqualTo(5120));
        Assert.That(c.Vision.OutHiddenSize, Is.EqualTo(1536));
        Assert.That(c.Vision.PatchSize, Is.EqualTo(14));
        Assert.That(c.Vision.HiddenAct, Is.EqualTo("quick_gelu"));
        Assert.That(c.Text.HeadDim, Is.EqualTo(128));
        Assert.That(c.Text.Rope.MropeSection, Is.EqualTo(new[] { 16, 24, 24 }));
        Assert.That(c.ImageTokenId, Is.EqualTo(151655));
        Assert.That(c.Text.TieWordEmbeddings, Is.True);
    }

    [Test]
    public void LlavaConfigWithoutVisionConfig_UsesClipL336()
    {
        var path = Path.Combine(_tmp, "config.json");
        File.WriteAllText(path, """{"model_type": "llava", "text_config": {"model_type": "llama", "vocab_size": 32064}}""");
        var c = (LlavaConfig)ModelConfig.Load(path);
        Assert.That((c.Vision.HiddenSize, c.Vision.NumLayers, c.Vision.ImageSize, c.Vision.PatchSize), Is.EqualTo((1024, 24, 336, 14)));
        Assert.That((c.Text.HiddenSize, c.Text.NumLayers, c.Text.NumKvHeads, c.ImageTokenId), Is.EqualTo((4096, 32, 32, 32000)));
    }

    // --- malformed configs: a typed error naming the file and the field ---

    [TestCase("""{"text_config": {}}""", "model_type", "missing")]
    [TestCase("""{"model_type": 7}""", "model_type", "expected a string")]
    [TestCase("""{"model_type": "gpt9"}""", "model_type", "unsupported model_type 'gpt9'")]
    [TestCase("""{"model_type": "llava", "text_config": {"hidden_size": "big"}}""", "text_config.hidden_size", "expected an integer")]
    [TestCase("""{"model_type": "llava", "text_config": {"rope_parameters": {"rope_theta": "x"}}}""", "text_config.rope_parameters.rope_theta", "expected a number")]
    [TestCase("""{"model_type": "llava", "vision_feature_select_strategy": "middle"}""", "vision_feature_select_strategy", "expected \"default\" or \"full\"")]
    [TestCase("""{"model_type": "llava_next", "image_grid_pinpoints": [[336, "a"]]}""", "image_grid_pinpoints[0][1]", "expected an integer")]
    [TestCase("""{"model_type": "qwen2_vl", "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]}, "vision_config": {"depth": 2.5}}""", "vision_config.depth", "expected an integer")]
    [TestCase("""{"model_type": "qwen2_vl", "rope_theta": 10000}""", "mrope_section", "M-RoPE")]
    [TestCase("""{"model_type": "llava", "text_config": {"num_attention_heads": 8, "num_key_value_heads": 3}}""", "text_config.num_key_value_heads", "not a multiple")]
    [TestCase("""{"model_type": "instructblip", "text_config": {"model_type": "t5"}}""", "text_config.model_type", "not supported")]
    [TestCase("""{"model_type": "idefics", "vision_config": []}""", "vision_config", "expected an object")]
    [TestCase("""[1, 2]""", null, "not a JSON object")]
    [TestCase("""{"model_type": "llava",""", null, "not valid JSON")]
    public void MalformedConfig_IsATypedErrorNamingTheField(string json, string? field, string message)
    {
        var path = Path.Combine(_tmp, "config.json");
        File.WriteAllText(path, json);
        var ex = Assert.Throws<ConfigException>(() => ModelConfig.Load(path))!;
        Assert.That(ex.FilePath, Is.EqualTo(path));
        if (field is null) Assert.That(ex.Item, Is.Null);
        else Assert.That(ex.Item, Does.EndWith(field));
        Assert.That(ex.Message, Does.Contain(message));
    }

    [Test]
    public void MissingConfigFile_IsATypedError()
    {
        var dir = CopyFixture("llava/hub", "config.json");
        var ex = Assert.Throws<ConfigException>(() => ModelDirectory.Open(dir))!;
        Assert.That(ex.FilePath, Does.EndWith("config.json"));
        Assert.That(ex.Message, Does.Contain("file not found"));
    }

    [Test]
    public void MissingWeights_IsATypedError()
    {
        var dir = CopyFixture("llava/hub", "model.safetensors", "reference.safetensors");
        var ex = Assert.Throws<CheckpointException>(() => ModelDirectory.Open(dir))!;
        Assert.That(ex.Message, Does.Contain("no model.safetensors"));
    }

    // --- tensor-level strictness ---

    private string RewriteWeights(string rel, Func<string, string?> rename, IEnumerable<KeyValuePair<string, Tensor>>? extra = null)
    {
        var dir = CopyFixture(rel, "model.safetensors");
        var src = SafetensorsFile.Open(Path.Combine(Fixture(rel), "model.safetensors"));
        var tensors = new List<KeyValuePair<string, Tensor>>();
        foreach (var name in src.Entries.Keys)
            if (rename(name) is { } n) tensors.Add(new(n, src.Read(name)));
        if (extra is not null) tensors.AddRange(extra);
        SafetensorsWriter.Write(Path.Combine(dir, "model.safetensors"), tensors);
        foreach (var t in tensors) t.Value.Dispose();
        return dir;
    }

    [Test]
    public void MissingTensor_IsListedByName()
    {
        var dir = RewriteWeights("llava/hub", n => n == "language_model.model.layers.1.mlp.up_proj.weight" ? null : n);
        var ex = Assert.Throws<TensorMismatchException>(() => Backbones.Load(dir, CPU, ScalarType.Float32).Dispose())!;
        Assert.That(ex.Missing, Is.EqualTo(new[] { "language_model.model.layers.1.mlp.up_proj.weight" }));
        Assert.That(ex.Unexpected, Is.Empty);
        Assert.That(ex.Message, Does.Contain("missing tensors: language_model.model.layers.1.mlp.up_proj.weight"));
    }

    [Test]
    public void UnexpectedTensor_IsListedByName()
    {
        var dir = RewriteWeights("llava/hub", n => n, [new("language_model.model.layers.9.mlp.up_proj.weight", zeros(4, 4))]);
        var ex = Assert.Throws<TensorMismatchException>(() => Backbones.Load(dir, CPU, ScalarType.Float32).Dispose())!;
        Assert.That(ex.Unexpected, Is.EqualTo(new[] { "language_model.model.layers.9.mlp.up_proj.weight" }));
        Assert.That(ex.Missing, Is.Empty);
    }

    [Test]
    public void WrongShape_IsListedWithBothShapes()
    {
        var dir = RewriteWeights("llava/hub", n => n == "multi_modal_projector.linear_2.bias" ? null : n, [new("multi_modal_projector.linear_2.bias", zeros(65))]);
        var ex = Assert.Throws<TensorMismatchException>(() => Backbones.Load(dir, CPU, ScalarType.Float32).Dispose())!;
        Assert.That(ex.WrongShape.Single(), Does.Contain("multi_modal_projector.linear_2.bias").And.Contain("[65]").And.Contain("[64]"));
    }

    [Test]
    public void BothLayoutsInOneCheckpoint_IsAnError()
    {
        var dir = RewriteWeights("llava/hub", n => n, [new("vision_tower.post_layernorm.bias", zeros(32))]);
        var ex = Assert.Throws<SafetensorsFormatException>(() => ModelDirectory.Open(dir))!;
        Assert.That(ex.Message, Does.Contain("vision_tower.post_layernorm.bias"));
    }

    /// <summary>transformers ≥ 4.52 saves LLaVA under model.language_model / model.vision_tower / lm_head: same canonical names, same logits.</summary>
    [Test]
    public void Transformers452TensorNames_LoadToIdenticalLogits()
    {
        static string NewName(string n) =>
            n.StartsWith("language_model.model.") ? "model.language_model." + n["language_model.model.".Length..]
            : n.StartsWith("language_model.lm_head.") ? "lm_head." + n["language_model.lm_head.".Length..]
            : n.StartsWith("vision_tower.vision_model.") ? "model.vision_tower." + n["vision_tower.vision_model.".Length..]
            : n.StartsWith("multi_modal_projector.") ? "model." + n
            : n == "image_newline" ? "model.image_newline" : n;
        var dir = RewriteWeights("llava_next/hub", NewName);
        Assert.That(SafetensorsFile.Open(Path.Combine(dir, "model.safetensors")).Entries.Keys, Has.Some.StartsWith("model.language_model."));
        var owned = new List<Tensor>();
        var (real, _) = BackboneConformanceTests.ReferenceInputs(Fixture("llava_next/hub"), owned);
        using var a = Backbones.Load(Fixture("llava_next/hub"), CPU, ScalarType.Float32);
        using var b = Backbones.Load(dir, CPU, ScalarType.Float32);
        var (sa, la) = a.Prefill(real, 0, allLogits: true);
        var (sb, lb) = b.Prefill(real, 0, allLogits: true);
        using (sa) using (sb) using (la) using (lb)
            Assert.That((la - lb).abs().max().item<float>(), Is.EqualTo(0f));
        foreach (var t in owned) t.Dispose();
    }

    [Test]
    public void ShardedCheckpointWithIndex_LoadsLikeTheSingleFile()
    {
        var rel = "llava/v5";
        var dir = CopyFixture(rel, "model.safetensors");
        var src = SafetensorsFile.Open(Path.Combine(Fixture(rel), "model.safetensors"));
        var names = src.Entries.Keys.Order().ToList();
        var map = new JsonObject();
        for (int s = 0; s < 2; s++)
        {
            var file = $"model-0000{s + 1}-of-00002.safetensors";
            var part = names.Where((_, i) => i % 2 == s).Select(n => new KeyValuePair<string, Tensor>(n, src.Read(n))).ToList();
            SafetensorsWriter.Write(Path.Combine(dir, file), part);
            foreach (var p in part) { map[p.Key] = file; p.Value.Dispose(); }
        }
        File.WriteAllText(Path.Combine(dir, "model.safetensors.index.json"), new JsonObject { ["metadata"] = new JsonObject(), ["weight_map"] = map }.ToJsonString());
        var m = ModelDirectory.Open(dir);
        Assert.That(m.Files, Has.Count.EqualTo(2));
        Assert.That(m.Tensors.Keys.Order(), Is.EqualTo(ModelDirectory.Open(Fixture(rel)).Tensors.Keys.Order()));
        var r = SafeCoDe.Torch.Verification.Verifier.Run(dir, null, CPU, ScalarType.Float32);
        Assert.That(r.Pass, Is.True, r.SummaryLine());

        // an index entry pointing at a shard that lacks the tensor is an error naming both
        map[names[0]] = "model-00002-of-00002.safetensors";
        File.WriteAllText(Path.Combine(dir, "model.safetensors.index.json"), new JsonObject { ["weight_map"] = JsonNode.Parse(map.ToJsonString()) }.ToJsonString());
        var ex = Assert.Throws<SafetensorsFormatException>(() => ModelDirectory.Open(dir))!;
        Assert.That(ex.Item, Is.EqualTo(names[0]));
        Assert.That(ex.FilePath, Does.EndWith("model-00002-of-00002.safetensors"));
    }
}
