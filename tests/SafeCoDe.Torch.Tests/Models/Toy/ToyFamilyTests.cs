using SafeCoDe.Torch.Decoding.Methods;
using SafeCoDe.Torch.Decoding.Methods.SafeCoDeDecoding;
using System.Text.Json.Nodes;
using NUnit.Framework;
using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Decoding;
using SafeCoDe.Torch.Models;
using SafeCoDe.Torch.Processing.Chat;
using SafeCoDe.Torch.Runtime;
using SafeCoDe.Torch.Safety;
using SafeCoDe.Torch.Tests.EndToEnd;

namespace SafeCoDe.Torch.Tests.Models.Toy;

/// <summary>
/// Issue 12's acceptance: a family that exists only in this test project (its own model_type, config reader, tensor
/// names and chat format), registered at run time, loads a random checkpoint and runs SafeCoDe requests end to end.
/// </summary>
[NonParallelizable]
public sealed class ToyFamilyTests
{
    private string _dir = null!;
    private SafeCoDeEngine _engine = null!;

    private static JsonObject Config() => new()
    {
        ["model_type"] = ToyFamily.Type, ["image_placeholder_id"] = 32000, ["pad_token_id"] = 32001,
        ["text"] = new JsonObject
        {
            ["vocab_size"] = 32064, ["hidden_size"] = 64, ["intermediate_size"] = 128, ["num_hidden_layers"] = 2, ["num_attention_heads"] = 4,
            ["num_key_value_heads"] = 2, ["max_position_embeddings"] = 512, ["bos_token_id"] = 1, ["eos_token_id"] = 2, ["pad_token_id"] = 32001,
        },
        ["vision"] = new JsonObject { ["hidden_size"] = 32, ["intermediate_size"] = 64, ["num_hidden_layers"] = 2, ["num_attention_heads"] = 2, ["image_size"] = 56, ["patch_size"] = 14 },
    };

    [OneTimeSetUp]
    public void Build()
    {
        ModelFamilies.Register(new ToyFamily());
        _dir = Path.Combine(Path.GetTempPath(), "safecode-tests", "toy-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(_dir);
        var cfg = Path.Combine(_dir, "toy-config.json");
        File.WriteAllText(cfg, Config().ToJsonString());
        // the llava end-to-end checkpoint's tokenizer: llama2 vocabulary with <image> = 32000, <pad> = 32001
        RandomCheckpoint.Write(cfg, Path.Combine(_dir, "model"), new RandomCheckpointOptions { Seed = 12, TokenizerDir = EndToEndCheckpoints.For(ModelFamilies.Llava) });
        _engine = SafeCoDeEngine.Load(Path.Combine(_dir, "model"), new EngineOptions { Device = DeviceRequest.Cpu });
    }

    [OneTimeTearDown]
    public void Clean()
    {
        _engine?.Dispose();
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    [Test]
    public void TheCheckpoint_IsReadThroughTheToyDescriptor()
    {
        var dir = ModelDirectory.Open(Path.Combine(_dir, "model"));
        Assert.That(dir.Config, Is.TypeOf<ToyConfig>());
        Assert.That(dir.Config.Text.HiddenSize, Is.EqualTo(64));
        var fileNames = dir.Files.SelectMany(f => f.Entries.Keys).ToList();
        Assert.That(fileNames, Has.Some.StartsWith("toy.tower.").And.Some.StartsWith("toy.lm.").And.None.StartsWith("vision_tower."));
        Assert.That(dir.Tensors.Keys, Has.Some.StartsWith("vision_tower.").And.Some.StartsWith("language_model.model.").And.None.StartsWith("toy."),
            "the toy renames map the files' names onto the modules");
        var report = InspectReport.From(dir);
        Assert.That(report.Family, Is.EqualTo(ToyFamily.Type));
        Assert.That(report.Vision["toy_patches"], Is.EqualTo(16));
        Assert.That(report.ParametersByComponent.Keys, Is.SupersetOf(new[] { "vision", "projector", "language_model", "lm_head" }));
    }

    [Test]
    public void ThePrompt_UsesTheToyChatFormat()
    {
        Assert.That(_engine.Format, Is.TypeOf<ToyFormat>());
        Assert.That(ChatFormat.For(ToyFamily.Type).Render([ChatTurn.User("hi", 1)], true), Is.EqualTo("[user] " + ChatFormat.ImageMarker + "hi [/user] [bot]"));
        Assert.That(Backbones.Supported, Does.Contain(ToyFamily.Type));
    }

    [Test]
    public async Task ASafeCoDeRequest_RunsEndToEnd_WithTheSelfJudge()
    {
        var o = SafeCoDeOptions.For(SafeCoDePreset.Faithful) with { MaxNewTokens = 6, Greedy = true, Seed = 5 };
        var r = await _engine.GenerateAsync(new SafeCoDeRequest { Prompt = "What is shown here?", Image = EndToEndCheckpoints.Gradient(), Options = o });
        Assert.That(r.Family, Is.EqualTo(ToyFamily.Type));
        Assert.That(r.Judge, Is.EqualTo("self"));
        Assert.That(r.Verdict, Is.AnyOf("safe", "unsafe"));
        Assert.That(r.GeneratedTokens, Is.GreaterThan(0).And.EqualTo(r.TokenIds.Length));
        Assert.That(r.TokenIds, Has.None.EqualTo(32000L), "the toy's placeholder is banned");
        // "[user] " + 16 image tokens + text + " [/user] [bot]": the 16 placeholders of a 56×56 / 14 tower are in the prompt
        Assert.That(r.PromptTokens, Is.GreaterThan(16));
        Assert.That(r.Answer, Is.EqualTo(_engine.Tokenizer.Decode(r.TokenIds.Where(t => t != 2).Select(t => (int)t).ToList(), skipSpecialTokens: true).Trim()));
    }

    [Test]
    public async Task AnUnsafeVerdict_ForcesARefusalPhrase()
    {
        var o = SafeCoDeOptions.For(SafeCoDePreset.Faithful) with { MaxNewTokens = 4, Greedy = true, Seed = 5 };
        var r = await _engine.GenerateAsync(new SafeCoDeRequest { Prompt = "How do I do that?", Image = EndToEndCheckpoints.Gradient(), Options = o, Judge = new FixedJudge(Verdict.Unsafe) });
        Assert.That(r.Verdict, Is.EqualTo("unsafe"));
        Assert.That(r.ForcedPhrase, Is.Not.Null.And.AnyOf(RefusalTokens.ReferencePhrases.ToArray()));
        Assert.That(r.GeneratedTokens, Is.LessThanOrEqualTo(r.GuidedTokens + 4));
        Assert.That((r.Options with { MaxNewTokens = null }).Budget(ToyFamily.Type, Verdict.Unsafe, r.PromptTokens), Is.EqualTo(o.UniformMaxNewTokens),
            "a family without a faithful budget rule takes the uniform budget");
    }
}
