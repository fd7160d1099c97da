using SafeCoDe.Torch.Decoding.Methods;
using SafeCoDe.Torch.Decoding.Noise;
using SafeCoDe.Torch.Decoding.Sessions;
using SafeCoDe.Torch.Decoding.Methods.SafeCoDeDecoding;
using NUnit.Framework;
using SafeCoDe.Torch.Decoding;
using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Processing;
using SafeCoDe.Torch.Processing.Chat;
using SafeCoDe.Torch.Processing.Images;
using SafeCoDe.Torch.Processing.Tokenizers;
using SafeCoDe.Torch.Runtime;
using SafeCoDe.Torch.Safety;

namespace SafeCoDe.Torch.Tests.EndToEnd;

/// <summary>
/// Issue 6's acceptance on CPU: a random-weight checkpoint of each family with a real tokenizer, loaded by
/// <see cref="SafeCoDeEngine"/> and run on an image in every decode mode.
/// </summary>
[TestFixtureSource(typeof(ModelFamilies), nameof(ModelFamilies.All))]
public sealed class FamilyEndToEndTests(string family)
{
    private SafeCoDeEngine _engine = null!;
    private ITokenizer _tokenizer = null!;
    private readonly RgbImage _image = EndToEndCheckpoints.Gradient();
    private const string Prompt = "What is shown in this picture?";

    private static SafeCoDeOptions Opts() => SafeCoDeOptions.For(SafeCoDePreset.Faithful) with { MaxNewTokens = 6, Greedy = true, Seed = 3 };

    private static DecodingOptions Opts(string mode) => DecodingMethods.Defaults(mode) with { MaxNewTokens = 6, Greedy = true, Seed = 3 };

    [OneTimeSetUp]
    public void Load()
    {
        var dir = EndToEndCheckpoints.For(family);
        _engine = SafeCoDeEngine.Load(dir, new EngineOptions { Device = DeviceRequest.Cpu });
        _tokenizer = TokenizerLoader.Load(dir); // a second, independent load of the folder's tokenizer
    }

    [OneTimeTearDown]
    public void Unload() => _engine?.Dispose();

    private Task<SafeCoDeResult> Run(DecodingOptions o, ISafetyJudge? judge = null, RgbImage? image = null, string prompt = Prompt) =>
        _engine.GenerateAsync(new SafeCoDeRequest { Prompt = prompt, Image = image ?? _image, Options = o, Judge = judge });

    private void AssertConsistent(SafeCoDeResult r)
    {
        Assert.That(r.Family, Is.EqualTo(family));
        Assert.That(r.GeneratedTokens, Is.EqualTo(r.TokenIds.Length).And.GreaterThan(0));
        Assert.That(r.Answer, Is.EqualTo(_tokenizer.Decode(r.TokenIds.Select(t => (int)t).ToList(), skipSpecialTokens: true).Trim()),
            "the answer is the tokenizer's decode of the generated ids");
        Assert.That(r.GuidedText, Is.EqualTo(_tokenizer.Decode(r.TokenIds.Take(r.GuidedTokens).Select(t => (int)t).ToList(), skipSpecialTokens: true)));
        var placeholder = _tokenizer.TokenToId(EndToEndCheckpoints.ImageTokenText(family))!.Value;
        Assert.That(r.TokenIds, Has.None.EqualTo((long)placeholder), "image placeholders are banned while decoding");
        Assert.That(r.TokenIds, Has.All.InRange(0L, _engine.Model.VocabSize - 1));
        Assert.That(r.Timings.TotalMs, Is.GreaterThan(0));
        Assert.That(r.Timings.TotalMs, Is.GreaterThanOrEqualTo(r.Timings.PrefillMs));
    }

    [Test]
    public async Task ThePromptStyleOfOneRequest_CanDifferFromTheEngines()
    {
        // the reference style (e.g. Qwen's extra "\nassistant:", InstructBLIP's answer marker) per request; InstructBLIP
        // must keep its Q-Former ids on that path too
        var official = await Run(Opts("vanilla"));
        var reference = await _engine.GenerateAsync(new SafeCoDeRequest { Prompt = Prompt, Image = _image, Options = Opts("vanilla"), PromptStyle = PromptStyle.Reference });
        AssertConsistent(reference);
        if (family is ModelFamilies.Qwen2VL or ModelFamilies.Qwen25VL or ModelFamilies.InstructBlip or ModelFamilies.Idefics)
            Assert.That(reference.PromptTokens, Is.Not.EqualTo(official.PromptTokens), "the reference prompt differs from the official one");
    }

    [Test]
    public void Prompt_HasExactlyTheImageTokensOfTheLayout()
    {
        using var processed = _engine.Images.Process([_image]);
        int expected = EndToEndCheckpoints.ExpectedImageTokens[family];
        int fromLayout = family == ModelFamilies.Idefics ? processed.Images.Count : processed.TotalImageTokens;
        Assert.That(fromLayout, Is.EqualTo(expected), "image processor layout");

        var qformer = family == ModelFamilies.InstructBlip ? TokenizerLoader.LoadQFormer(_engine.Directory.Dir) : null;
        var builder = new PromptBuilder(_engine.Directory.Config, _tokenizer, ChatFormat.For(family), qformer);
        var encoded = builder.Encode([ChatTurn.User(Prompt, 1)], processed.Images);
        long imageId = _tokenizer.TokenToId(EndToEndCheckpoints.ImageTokenText(family))!.Value;
        Assert.That(encoded.Ids.Count(i => i == imageId), Is.EqualTo(expected));
        Assert.That(_tokenizer.Decode(encoded.Ids.Select(i => (int)i).ToList(), skipSpecialTokens: true), Does.Contain(Prompt));

        var r = Run(Opts("vanilla")).GetAwaiter().GetResult();
        Assert.That(r.PromptTokens, Is.EqualTo(encoded.Length), "the engine ran the prompt built here");
    }

    [Test]
    public async Task SafeCoDe_SafeVerdict_ContrastsThenContinues()
    {
        var o = Opts();
        var r = await Run(o, new FixedJudge(Verdict.Safe));
        AssertConsistent(r);
        Assert.That(r.Verdict, Is.EqualTo("safe"));
        Assert.That(r.Judge, Is.EqualTo("fixed:safe"));
        Assert.That(r.ForcedPhrase, Is.Null);
        Assert.That(r.GuidedTokens, Is.InRange(0, o.MaxSteps));
        Assert.That(r.GeneratedTokens, Is.LessThanOrEqualTo(r.GuidedTokens + 6));
        Assert.That(r.Options.Seed, Is.EqualTo(3));
    }

    [Test]
    public async Task SafeCoDe_UnsafeVerdict_StartsWithTheForcedRefusalPhrase()
    {
        var o = Opts();
        var r = await Run(o, new FixedJudge(Verdict.Unsafe));
        AssertConsistent(r);
        Assert.That(r.Verdict, Is.EqualTo("unsafe"));
        Assert.That(r.ForcedPhrase, Is.Not.Null.And.AnyOf(RefusalTokens.ReferencePhrases.ToArray()));
        var phrase = _tokenizer.Encode(r.ForcedPhrase!, false).Select(i => (long)i).Take(o.MaxSteps).ToArray();
        Assert.That(phrase, Is.Not.Empty);
        Assert.That(r.TokenIds.Take(phrase.Length), Is.EqualTo(phrase), $"forced '{r.ForcedPhrase}'");
        Assert.That(r.GuidedTokens, Is.EqualTo(phrase.Length));
        var phraseText = _tokenizer.Decode(phrase.Select(i => (int)i).ToList(), skipSpecialTokens: true).Trim();
        Assert.That(r.Answer, Does.StartWith(phraseText));
    }

    [Test]
    public async Task Vcd_And_Vanilla_RunWithoutAJudge()
    {
        foreach (var mode in new[] { "vcd", "vanilla" })
        {
            var r = await Run(Opts(mode), new FixedJudge(Verdict.Unsafe)); // the judge is not consulted outside SafeCoDe mode
            AssertConsistent(r);
            Assert.That(r.Verdict, Is.Null, mode);
            Assert.That(r.Judge, Is.Null);
            Assert.That(r.GuidedTokens, Is.Zero);
            Assert.That(r.Timings.JudgeMs, Is.Zero);
            Assert.That(r.GeneratedTokens, Is.LessThanOrEqualTo(6));
            Assert.That(r.Options.Method, Is.EqualTo(mode));
        }
    }

    [Test]
    public async Task Greedy_And_SeededSampling_Reproduce()
    {
        var judge = new FixedJudge(Verdict.Safe);
        var g1 = await Run(Opts(), judge);
        var again = await Run(Opts(), judge);
        Assert.That(again.TokenIds, Is.EqualTo(g1.TokenIds), "greedy with the same seed");

        var sampled = Opts() with { Greedy = false, Seed = 1234, TemperatureSafe = 1.5, TopPSafe = 1.0 };
        var s1 = await Run(sampled, judge);
        var s2 = await Run(sampled, judge);
        AssertConsistent(s1);
        Assert.That(s2.TokenIds, Is.EqualTo(s1.TokenIds), "seeded sampling");
        Assert.That(s2.Answer, Is.EqualTo(s1.Answer));

        var v = Opts("vanilla") with { Greedy = false, Seed = 77, TemperatureSafe = 1.5, TopPSafe = 1.0 };
        Assert.That((await Run(v)).TokenIds, Is.EqualTo((await Run(v)).TokenIds), "seeded vanilla sampling");
    }

    [Test]
    public async Task StreamAsync_PiecesConcatenateToTheAnswer()
    {
        foreach (var (o, verdict) in new (DecodingOptions, Verdict)[] { (Opts(), Verdict.Unsafe), (Opts() with { Greedy = false, Seed = 5, TemperatureSafe = 1.5 }, Verdict.Safe), (Opts("vcd"), Verdict.Safe) })
        {
            var request = new SafeCoDeRequest { Prompt = Prompt, Image = _image, Options = o, Judge = new FixedJudge(verdict) };
            var pieces = new List<string>();
            await foreach (var p in _engine.StreamAsync(request)) pieces.Add(p);
            var full = await _engine.GenerateAsync(request);
            Assert.That(string.Concat(pieces).Trim(), Is.EqualTo(full.Answer), $"{o.Method} {verdict}");
            Assert.That(pieces, Has.All.Not.Contain("\uFFFD"), "no broken UTF-8 characters");

            var viaCallback = new List<string>();
            var withCallback = await _engine.GenerateAsync(request with { OnText = viaCallback.Add });
            Assert.That(viaCallback, Is.EqualTo(pieces), "OnText sees the same pieces");
            Assert.That(withCallback.TokenIds, Is.EqualTo(full.TokenIds));
        }
    }

    [Test]
    public async Task ImageBytes_And_ImagePath_GiveTheSameAnswerAsTheDecodedImage()
    {
        var png = EndToEndCheckpoints.Png(_image);
        var path = Path.Combine(TestPaths.NewTempDir(), "scene.png");
        await File.WriteAllBytesAsync(path, png);
        try
        {
            var o = Opts();
            var judge = new FixedJudge(Verdict.Safe);
            var a = await Run(o, judge);
            var b = await _engine.GenerateAsync(new SafeCoDeRequest { Prompt = Prompt, ImageBytes = png, Options = o, Judge = judge });
            var c = await _engine.GenerateAsync(new SafeCoDeRequest { Prompt = Prompt, ImagePath = path, Options = o, Judge = judge });
            Assert.That(b.TokenIds, Is.EqualTo(a.TokenIds));
            Assert.That(c.TokenIds, Is.EqualTo(a.TokenIds));
        }
        finally { Directory.Delete(Path.GetDirectoryName(path)!, true); }
    }
    private sealed class Codec(ITokenizer t) : ITokenCodec
    {
        public long[] Encode(string text) => t.Encode(text, false).Select(i => (long)i).ToArray();
        public string Decode(IReadOnlyList<long> ids, bool skipSpecialTokens = false) => t.Decode(ids.Select(i => (int)i).ToList(), skipSpecialTokens);
    }

    [Test]
    public async Task BatchedBranches_EqualSeparatePasses_AndTheEngine([Values(Verdict.Safe, Verdict.Unsafe)] Verdict verdict)
    {
        var o = Opts() with { Seed = 17, EarlyExit = false };
        var engineResult = await Run(o, new FixedJudge(verdict));

        using var scope = TorchSharp.torch.NewDisposeScope();
        var builder = new PromptBuilder(_engine.Directory.Config, _engine.Tokenizer, _engine.Format,
            family == ModelFamilies.InstructBlip ? TokenizerLoader.LoadQFormer(_engine.Directory.Dir) : null);
        using var real = _engine.Images.Process([_image]);
        using var noisedPixels = _engine.Images.Process([PixelNoise.Apply(_image, o.NoiseStd, 17)]);
        var encoded = builder.Encode([ChatTurn.User(Prompt, 1)], real.Images);
        var realIn = builder.Inputs(encoded, real, _engine.Model.DType);
        var noisedIn = builder.Inputs(encoded, noisedPixels, _engine.Model.DType);
        var eos = SafeCoDe.Torch.Verification.Verifier.EosIds(_engine.Directory).Concat(
            new[] { _tokenizer.Eos?.Id, _tokenizer.TokenToId("<end_of_utterance>"), _tokenizer.TokenToId("<|im_end|>") }.Where(i => i is not null).Select(i => (long)i!.Value)).Distinct().ToArray();
        var banned = new[] { "<image>", "<fake_token_around_image>", "<|image_pad|>", "<|video_pad|>", "<global-img>" }
            .Select(_tokenizer.TokenToId).Where(i => i is not null).Select(i => (long)i!.Value)
            .Concat(SafeCoDe.Torch.Models.Backbones.PlaceholderTokenIds(_engine.Directory.Config)).Distinct().ToArray();
        int capacity = o.Budget(family, verdict, encoded.Length) + o.MaxSteps + 1;
        var codec = new Codec(_tokenizer);

        using var batched = DecodeSessions.Open(_engine.Model, realIn, noisedIn, capacity, _tokenizer.Pad?.Id ?? 0);
        var b = MethodDecoder.Decode(_engine.Model, batched, verdict, o, codec, _engine.Refusal, eos, encoded.Length, bannedIds: banned);
        using var separate = DecodeSessions.OpenSeparate(_engine.Model, realIn, noisedIn, capacity);
        var sep = MethodDecoder.Decode(_engine.Model, separate, verdict, o, codec, _engine.Refusal, eos, encoded.Length, bannedIds: banned);

        Assert.That(b.Tokens, Is.EqualTo(sep.Tokens), "one batch of [real, noised] = two batch-1 passes");
        Assert.That(b.GuidedTokens, Is.EqualTo(sep.GuidedTokens));
        Assert.That(b.ForcedPhrase, Is.EqualTo(sep.ForcedPhrase));
        Assert.That(engineResult.TokenIds, Is.EqualTo(b.Tokens), "the engine decodes the same way");
    }
}
