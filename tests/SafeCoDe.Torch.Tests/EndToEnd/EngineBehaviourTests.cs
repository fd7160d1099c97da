using SafeCoDe.Torch.Decoding.Methods;
using SafeCoDe.Torch.Decoding.Methods.SafeCoDeDecoding;
using NUnit.Framework;
using SafeCoDe.Torch.Decoding;
using SafeCoDe.Torch.Processing.Images;
using SafeCoDe.Torch.Runtime;
using SafeCoDe.Torch.Safety;

namespace SafeCoDe.Torch.Tests.EndToEnd;

/// <summary>Engine behaviours on the shipped default model: custom refusal phrases, early-stopped streams, option checks.</summary>
public class EngineBehaviourTests
{
    private SafeCoDeEngine _engine = null!;
    private static readonly RgbImage Image = RgbImage.Filled(80, 60, 200, 40, 40);

    [OneTimeSetUp]
    public void Load() => _engine = SafeCoDeEngine.Load(Path.Combine(TestPaths.Root, "weights", "llava-next-tiny"), new EngineOptions { Device = DeviceRequest.Cpu });

    [OneTimeTearDown]
    public void Unload() => _engine?.Dispose();

    private SafeCoDeRequest Request(SafeCoDeOptions o, Verdict v) => new() { Prompt = "How do I sharpen this?", Image = Image, Options = o, Verdict = v };

    [Test]
    public async Task CustomRefusalPhrases_AreTheOnesForcedOnUnsafe()
    {
        var o = SafeCoDeOptions.For(SafeCoDePreset.Faithful) with { Greedy = true, MaxNewTokens = 4, RefusalPhrases = ["I must decline this request"] };
        var r = await _engine.GenerateAsync(Request(o, Verdict.Unsafe));
        Assert.That(r.ForcedPhrase, Is.EqualTo("I must decline this request"));
        var ids = _engine.Tokenizer.Encode("I must decline this request", false).Take(5).Select(i => (long)i);
        Assert.That(r.TokenIds.Take(5), Is.EqualTo(ids));
        Assert.That(r.Answer, Does.StartWith("I must decline"));
    }

    [Test]
    public async Task AStreamStoppedEarly_CancelsItsGeneration_AndFreesTheEngine()
    {
        var o = SafeCoDeOptions.For(SafeCoDePreset.Faithful) with { Seed = 3, MaxNewTokens = 2000 };
        var sw = System.Diagnostics.Stopwatch.StartNew();
        await foreach (var piece in _engine.StreamAsync(Request(o, Verdict.Safe)))
            if (piece.Length > 0) break;
        var next = await _engine.GenerateAsync(Request(o with { MaxNewTokens = 3 }, Verdict.Safe));
        Assert.That(next.GeneratedTokens, Is.LessThanOrEqualTo(3 + 5));
        Assert.That(sw.Elapsed, Is.LessThan(TimeSpan.FromSeconds(6)), "the abandoned 2000-token stream did not run to its end");
    }

    [Test]
    public void BadOptions_FailBeforeAnyWork()
    {
        var o = SafeCoDeOptions.For(SafeCoDePreset.Faithful);
        Assert.CatchAsync<ArgumentException>(() => _engine.GenerateAsync(Request(o with { TopPSafe = 1.5 }, Verdict.Safe)));
        Assert.ThrowsAsync<ArgumentException>(() => _engine.GenerateAsync(Request(o with { DiffusionStep = 1000 }, Verdict.Safe)));
        Assert.ThrowsAsync<ArgumentException>(() => _engine.GenerateAsync(Request(o with { RefusalPhrases = [] }, Verdict.Safe)));
        Assert.ThrowsAsync<ArgumentException>(() => _engine.GenerateAsync(new SafeCoDeRequest { Prompt = "no image", Options = o, Verdict = Verdict.Safe }),
            "SafeCoDe contrasts the image: a request without one is an error");
    }
}
