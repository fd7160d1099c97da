using NUnit.Framework;
using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Models;
using SafeCoDe.Torch.Models.Common;
using SafeCoDe.Torch.Models.Idefics;
using SafeCoDe.Torch.Tests.Conformance;
using TorchSharp;
using static TorchSharp.torch;
using static SafeCoDe.Torch.Tests.TestMath;

namespace SafeCoDe.Torch.Tests.Models.Idefics;

/// <summary>
/// IDEFICS v1 behaviour the parity numbers do not isolate: image_attention_mask semantics (prompt and decode steps),
/// the gate for tokens that see no image, per-request cross-attention K/V in the decode state, the decoupled
/// vocabulary, tied and vector-gate checkpoint variants, and the config's Python-side defaults.
/// </summary>
public class IdeficsBackboneTests
{
    private IdeficsBackbone _model = null!;
    private BackboneInputs _real = null!, _noised = null!;
    private readonly List<Tensor> _owned = [];
    private string _fixture = null!;
    private readonly List<string> _tempDirs = [];

    [OneTimeSetUp]
    public void Load()
    {
        _fixture = BackboneConformanceTests.FixtureDir(ModelFamilies.Idefics, "v5");
        _model = (IdeficsBackbone)Backbones.Load(_fixture, CPU, ScalarType.Float32);
        (_real, _noised) = BackboneConformanceTests.ReferenceInputs(_fixture, _owned);
    }

    [OneTimeTearDown]
    public void Unload()
    {
        _model?.Dispose();
        foreach (var t in _owned) t.Dispose();
        foreach (var d in _tempDirs) if (Directory.Exists(d)) Directory.Delete(d, true);
    }


    private static Tensor Mask(BackboneInputs b) => b.Images["image_attention_mask"];

    /// <summary>The same inputs with another image_attention_mask.</summary>
    private static BackboneInputs WithMask(BackboneInputs b, Tensor mask) =>
        b with { Images = new Dictionary<string, Tensor>(b.Images) { ["image_attention_mask"] = mask } };

    /// <summary>Index of the first prompt position that sees the image (the fixture has text on both sides of it).</summary>
    private long FirstSeeing()
    {
        var rows = Mask(_real)[0].select(1, 0).contiguous().data<long>().ToArray();
        return Array.FindIndex(rows, v => v != 0);
    }

    [Test]
    public void PositionsBeforeTheImage_DoNotDependOnIt_PositionsAfterDo()
    {
        using var scope = NewDisposeScope();
        long first = FirstSeeing();
        Assert.That(first, Is.GreaterThan(0).And.LessThan(_real.SeqLen - 1), "the fixture has tokens on both sides of the image");
        var (sr, lr) = _model.Prefill(_real, 0, allLogits: true);
        var (sn, ln) = _model.Prefill(_noised, 0, allLogits: true);
        sr.Dispose(); sn.Dispose();
        for (long p = 0; p < _real.SeqLen; p++)
        {
            double e = RelErr(ln[0][p], lr[0][p]);
            if (p < first) Assert.That(e, Is.LessThan(1e-6), $"position {p} sees no image, so the image must not matter");
            else Assert.That(e, Is.GreaterThan(1e-3), $"position {p} sees the image, so a different image must change it");
        }
    }

    [Test]
    public void AllZeroImageMask_MakesLogitsImageIndependent_AndEqualToATextOnlyPrompt()
    {
        using var scope = NewDisposeScope();
        var none = zeros_like(Mask(_real));
        var (s1, l1) = _model.Prefill(WithMask(_real, none), 2, allLogits: true);
        var (s2, l2) = _model.Prefill(WithMask(_noised, none), 2, allLogits: true);
        var textOnly = new BackboneInputs(_real.InputIds, _real.AttentionMask, new Dictionary<string, Tensor>());
        var (s3, l3) = _model.Prefill(textOnly, 2, allLogits: true);
        using (s1) using (s2) using (s3)
        {
            Assert.That(RelErr(l2, l1), Is.LessThan(1e-6), "no token sees an image: real and noised images give the same logits");
            Assert.That(RelErr(l3, l1), Is.LessThan(1e-6), "the gated layers' dense part still runs: same as a prompt without images");
            Assert.That(s3 is CausalDecodeState { FamilyState: null }, "a text-only prompt keeps no cross K/V");
            var t = tensor(new long[] { 7 });
            var a = _model.Step(s1, t); var b = _model.Step(s2, t); var c = _model.Step(s3, t);
            Assert.That(RelErr(b, a), Is.LessThan(1e-6), "decode steps stay image-independent");
            Assert.That(RelErr(c, a), Is.LessThan(1e-6), "decode steps equal the text-only ones");
        }
        var (s4, l4) = _model.Prefill(_real, 0, allLogits: true);
        s4.Dispose();
        Assert.That(RelErr(l4, l1), Is.GreaterThan(1e-3), "with the fixture's mask the image does matter");
    }

    /// <summary>
    /// HF's generate gives every new token the prompt's last mask row. With a prompt whose last token sees no image,
    /// a step must equal a full recompute whose appended row is 0, and differ from one whose appended row is 1.
    /// </summary>
    [Test]
    public void DecodeSteps_TakeThePromptsLastMaskRow()
    {
        using var scope = NewDisposeScope();
        long t = _real.SeqLen;
        var mask = Mask(_real).clone();
        mask[0, t - 1, 0] = tensor(0L);
        var prompt = WithMask(_real, mask);
        const long next = 37;
        var (state, _) = _model.Prefill(prompt, 1);
        Tensor step;
        using (state)
        {
            var cs = (CausalDecodeState)state;
            Assert.That(((IdeficsCrossState)cs.FamilyState!).StepImageMask.any().item<bool>(), Is.False, "the kept step mask is the last row");
            step = _model.Step(state, tensor(new[] { next }));
        }
        Tensor Recompute(long row)
        {
            var ids = cat([_real.InputIds, tensor(new[] { next }).view(1, 1)], 1);
            var m = cat([mask, full(1, 1, 1, row, ScalarType.Int64)], 1);
            var inputs = new BackboneInputs(ids, ones_like(ids), new Dictionary<string, Tensor>(_real.Images) { ["image_attention_mask"] = m });
            var (s, l) = _model.Prefill(inputs, 0);
            s.Dispose();
            return l;
        }
        Assert.That(RelErr(step, Recompute(0)), Is.LessThan(1e-5), "the step used the last (all-zero) row");
        Assert.That(RelErr(step, Recompute(1)), Is.GreaterThan(1e-3), "a row that sees the image would give other logits");
    }

    [Test]
    public void CrossKeysAndValues_AreComputedAtPrefill_AndFollowKeepRows()
    {
        using var scope = NewDisposeScope();
        var batch = BatchCollator.Collate([_real, _noised], 0);
        var (both, _) = _model.Prefill(batch, 3);
        var (alone, _) = _model.Prefill(_noised, 3);
        using (both) using (alone)
        {
            var s = (CausalDecodeState)both;
            var cross = (IdeficsCrossState)s.FamilyState!;
            int layers = _model.model.gated_cross_attn_layers.Count;
            Assert.That(layers, Is.EqualTo(_model.Config.Text.NumLayers / ((IdeficsConfig)_model.Config).CrossLayerInterval));
            for (int i = 0; i < layers; i++)
            {
                Assert.That(cross.Keys[i].shape[0], Is.EqualTo(2), $"cross_k.{i} is per row");
                Assert.That(cross.Values[i].shape[0], Is.EqualTo(2), $"cross_v.{i} is per row");
            }
            Assert.That(cross.Keys, Has.Length.EqualTo(layers));
            Assert.That(cross.PromptImageMask, Is.Null, "the prompt-wide mask is released after the prefill");
            var first = tensor(new long[] { 9, 9 });
            _model.Step(both, first);
            _model.Step(alone, first.narrow(0, 1, 1));
            both.KeepRows([1]); // keep the noised row this time
            for (int i = 0; i < layers; i++)
                Assert.That(cross.Keys[i].shape[0], Is.EqualTo(1), $"cross_k.{i} shrank with the rows");
            var l1 = _model.Step(both, tensor(new long[] { 13 }));
            var l2 = _model.Step(alone, tensor(new long[] { 13 }));
            Assert.That(RelErr(l1, l2), Is.LessThan(1e-5), "the kept row decodes with its own image's K/V");
        }
    }

    [Test]
    public void DecoupledVocabulary_EmbedsAndScoresTheAdditionalTokens()
    {
        using var scope = NewDisposeScope();
        var cfg = (IdeficsConfig)_model.Config;
        long vocab = cfg.Text.VocabSize;
        Assert.That(cfg.AdditionalVocabSize, Is.GreaterThan(0));
        Assert.That(_model.VocabSize, Is.EqualTo(vocab + cfg.AdditionalVocabSize));
        var emb = _model.model.embed_tokens;
        var rows = emb.Forward(tensor(new[] { 3L, vocab, vocab + 1 }).view(1, 3));
        Assert.That(rows.shape, Is.EqualTo(new long[] { 1, 3, cfg.Text.HiddenSize }));
        Assert.That(rows[0][0].eq(emb.weight[3]).all().item<bool>(), Is.True, "ids below vocab_size use the base table");
        Assert.That(rows[0][1].eq(emb.additional_embedding!.weight[0]).all().item<bool>(), Is.True, "vocab_size maps to additional row 0");
        Assert.That(rows[0][2].eq(emb.additional_embedding!.weight[1]).all().item<bool>(), Is.True, "vocab_size+1 maps to additional row 1");

        var x = randn(2, cfg.Text.HiddenSize);
        var logits = _model.lm_head.Forward(x);
        Assert.That(logits.shape, Is.EqualTo(new long[] { 2, _model.VocabSize }));
        var expectedExtra = x.matmul(_model.lm_head.additional_fc!.weight.t());
        Assert.That(RelErr(logits.narrow(1, vocab, cfg.AdditionalVocabSize), expectedExtra), Is.LessThan(1e-6), "additional_fc scores are appended");
        var (s, prefill) = _model.Prefill(_real, 0);
        s.Dispose();
        Assert.That(prefill.shape[1], Is.EqualTo(_model.VocabSize));
        var outOfRange = _real with { InputIds = _real.InputIds.clone() };
        outOfRange.InputIds[0, 1] = tensor(_model.VocabSize);
        var ex = Assert.Throws<ArgumentException>(() => _model.Prefill(outOfRange, 0));
        Assert.That(ex!.Message, Does.Contain("input_ids"));
    }

    [Test]
    public void PixelValuesWithoutImageAttentionMask_IsAClearError()
    {
        var images = new Dictionary<string, Tensor>(_real.Images);
        images.Remove("image_attention_mask");
        var ex = Assert.Throws<ArgumentException>(() => _model.Prefill(_real with { Images = images }, 1));
        Assert.That(ex!.Message, Does.Contain("image_attention_mask"));
        using var wrong = zeros(1, _real.SeqLen, 2, ScalarType.Int64);
        var ex2 = Assert.Throws<ArgumentException>(() => _model.Prefill(WithMask(_real, wrong), 1));
        Assert.That(ex2!.Message, Does.Contain("image_attention_mask"));
    }

    /// <summary>A copy of the fixture folder with a rewritten config and tensor set.</summary>
    private string Variant(Func<string, string> config, Func<Dictionary<string, Tensor>, Dictionary<string, Tensor>> tensors)
    {
        var dir = TestPaths.NewTempDir();
        _tempDirs.Add(dir);
        File.WriteAllText(Path.Combine(dir, "config.json"), config(File.ReadAllText(Path.Combine(_fixture, "config.json"))));
        var f = SafetensorsFile.Open(Path.Combine(_fixture, "model.safetensors"));
        var all = f.Entries.Keys.ToDictionary(k => k, k => f.Read(k));
        var result = tensors(all);
        SafetensorsWriter.Write(Path.Combine(dir, "model.safetensors"), result);
        foreach (var t in all.Values.Concat(result.Values).Distinct(ReferenceEqualityComparer.Instance)) ((Tensor)t!).Dispose();
        return dir;
    }

    private Tensor Logits(string dir)
    {
        using var m = Backbones.Load(dir, CPU, ScalarType.Float32);
        var (s, l) = m.Prefill(_real, 0, allLogits: true);
        s.Dispose();
        return l;
    }

    [Test]
    public void TiedCheckpoint_WithoutLmHead_EqualsAnUntiedOneWithCopiedTables()
    {
        using var scope = NewDisposeScope();
        var tied = Variant(c => c.Replace("\"tie_word_embeddings\": false", "\"tie_word_embeddings\": true"), t =>
        {
            var r = new Dictionary<string, Tensor>(t);
            r.Remove("lm_head.weight"); r.Remove("lm_head.additional_fc.weight");
            return r;
        });
        var copied = Variant(c => c, t => new Dictionary<string, Tensor>(t)
        {
            ["lm_head.weight"] = t["model.embed_tokens.weight"].clone(),
            ["lm_head.additional_fc.weight"] = t["model.embed_tokens.additional_embedding.weight"].clone(),
        });
        Assert.That(((IdeficsConfig)ModelConfig.Load(tied)).Text.TieWordEmbeddings, Is.True);
        var lt = Logits(tied);
        var lc = Logits(copied);
        var original = Logits(_fixture);
        Assert.That(RelErr(lt, lc), Is.LessThan(1e-6), "tying copies both the base and the additional table");
        Assert.That(RelErr(lt, original), Is.GreaterThan(1e-3), "the fixture's own lm head differs from its embeddings");
    }

    [Test]
    public void VectorGates_WithTheFixturesValuesRepeated_GiveTheSameLogits()
    {
        using var scope = NewDisposeScope();
        long hidden = _model.Config.Text.HiddenSize;
        var dir = Variant(c => c.Replace("\"alpha_type\": \"float\"", "\"alpha_type\": \"vector\""), t =>
            t.ToDictionary(kv => kv.Key, kv => kv.Key.Contains(".alpha_") ? kv.Value.view(1, 1, 1).expand(1, 1, hidden).contiguous() : kv.Value));
        Assert.That(((IdeficsConfig)ModelConfig.Load(dir)).AlphaType, Is.EqualTo("vector"));
        using var m = (IdeficsBackbone)Backbones.Load(dir, CPU, ScalarType.Float32);
        Assert.That(m.model.gated_cross_attn_layers[0].alpha_dense.shape, Is.EqualTo(new long[] { 1, 1, hidden }));
        var (s, l) = m.Prefill(_real, 0, allLogits: true);
        s.Dispose();
        var (s0, l0) = _model.Prefill(_real, 0, allLogits: true);
        s0.Dispose();
        Assert.That(RelErr(l, l0), Is.LessThan(1e-6));
    }

    [Test]
    public void Config_CarriesPythonDefaults_AndReadsTheResamplerSwitchFromTheRoot()
    {
        var dir = TestPaths.NewTempDir();
        _tempDirs.Add(dir);
        File.WriteAllText(Path.Combine(dir, "config.json"),
            """{"model_type": "idefics", "perceiver_config": {"use_resampler": true}, "vision_config": {}}""");
        var c = (IdeficsConfig)ModelConfig.Load(dir);
        Assert.That(c.Perceiver.UseResampler, Is.False, "IdeficsModel reads config.use_resampler, not perceiver_config's");
        Assert.That(c.Text.PadTokenId, Is.EqualTo(0));
        Assert.That(c.Text.BosTokenId, Is.EqualTo(1));
        Assert.That(c.Text.EosTokenIds, Is.EqualTo(new[] { 2 }));
        Assert.That((c.Text.VocabSize, c.Text.HiddenSize, c.Text.NumLayers, c.Text.RmsNormEps), Is.EqualTo((32000, 4096, 32, 1e-6)));
        Assert.That((c.Vision.HiddenSize, c.Vision.IntermediateSize, c.Vision.NumLayers, c.Vision.ImageSize, c.Vision.PatchSize),
            Is.EqualTo((768, 5120, 32, 224, 14)));
        Assert.That((c.Perceiver.NumLatents, c.Perceiver.Depth, c.Perceiver.NumHeads, c.Perceiver.HeadDim), Is.EqualTo((64, 6, 16, 96)));
        Assert.That((c.AdditionalVocabSize, c.CrossLayerInterval, c.AlphaType, c.QkLayerNorms), Is.EqualTo((0, 1, "float", false)));

        File.WriteAllText(Path.Combine(dir, "config.json"), """{"model_type": "idefics", "alpha_type": "matrix"}""");
        var ex = Assert.Throws<ConfigException>(() => ModelConfig.Load(dir));
        Assert.That(ex!.Message, Does.Contain("alpha_type"));
    }
}
