using SafeCoDe.Torch.Decoding.Methods;
using SafeCoDe.Torch.Decoding.Methods.SafeCoDeDecoding;
using NUnit.Framework;
using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Decoding;
using SafeCoDe.Torch.Safety;
using SafeCoDe.Torch.Tests.Conformance;

namespace SafeCoDe.Torch.Tests.Decoding;

public class GuidedRulesTests
{
    [TestCase(" The cat", true)]
    [TestCase("The", false)]
    [TestCase(" I see", false)]          // first word of one character
    [TestCase(" the cat sat", false)]     // lower case
    [TestCase("\n  Yes it is", true)]
    [TestCase("\"Hello there", false)]    // starts with a quote, not a letter
    public void EarlyExitRule(string prefix, bool exit) => Assert.That(SafeCoDePlan.NaturalStart(prefix), Is.EqualTo(exit));

    private sealed class MapCodec(Dictionary<long, string> pieces) : ITokenCodec
    {
        public long[] Encode(string text) => pieces.Where(kv => text.Contains(kv.Value.Trim())).Select(kv => kv.Key).ToArray();
        public string Decode(IReadOnlyList<long> ids, bool skipSpecialTokens = false) => string.Concat(ids.Select(i => pieces[i]));
    }

    [Test]
    public void CorruptionRule_FirstTokenForMostFamilies_ExactTokensForQwen()
    {
        var codec = new MapCodec(new() { [1] = " ok", [2] = " |", [3] = "$", [4] = " fine", [5] = "MS" });
        Assert.That(SafeCoDePlan.Corrupt(ModelFamilies.Llava, [2, 4], codec), Is.True);
        Assert.That(SafeCoDePlan.Corrupt(ModelFamilies.Llava, [1, 2], codec), Is.False, "only the first token is seen");
        Assert.That(SafeCoDePlan.Corrupt(ModelFamilies.Qwen25VL, [1, 3], codec), Is.True, "a token decoding to exactly '$'");
        Assert.That(SafeCoDePlan.Corrupt(ModelFamilies.Qwen25VL, [1, 2], codec), Is.False, "' |' is not exactly '|'");
        Assert.That(SafeCoDePlan.Corrupt(ModelFamilies.Idefics, [5], codec), Is.True);
    }

    [Test]
    public void PhraseChoice_RanksBySummedProbability_ThenPrefersKeywords()
    {
        var codec = new ToyCodec(100);
        var phrases = new[] { "Hello", "I am sorry", "As an AI" };
        var rt = new RefusalTokens(phrases, codec, 100);
        var probs = new float[100];
        foreach (var id in codec.Encode("Hello")) probs[id] += 0.5f;          // highest score, no keyword
        foreach (var id in codec.Encode("I am sorry")) probs[id] += 0.05f;    // lower, has "sorry"
        Assert.That(rt.ChoosePhrase(probs, 20, RefusalTokens.ReferenceKeywords), Is.EqualTo(1));
        Assert.That(rt.ChoosePhrase(probs, 1, RefusalTokens.ReferenceKeywords), Is.EqualTo(0), "top-1 keeps only 'Hello'");
        Assert.That(rt.ChoosePhrase(probs, 20, ["as an ai"]), Is.EqualTo(2), "lower-case keyword matches 'As an AI'");
        Assert.That(rt.ChoosePhrase(probs, 20, ["As an AI"]), Is.EqualTo(0), "the reference's mixed-case keyword never matches");
        Assert.That(rt.Union, Is.Ordered.And.Unique);
    }

    [TestCase(ModelFamilies.Llava, Verdict.Unsafe, 20)]
    [TestCase(ModelFamilies.LlavaNext, Verdict.Safe, 256)]
    [TestCase(ModelFamilies.Qwen2VL, Verdict.Unsafe, 30)]
    [TestCase(ModelFamilies.Qwen25VL, Verdict.Safe, 256)]
    [TestCase(ModelFamilies.InstructBlip, Verdict.Unsafe, 1024)]
    [TestCase(ModelFamilies.Idefics, Verdict.Safe, 1024 - 100)]
    [TestCase(ModelFamilies.Idefics3, Verdict.Unsafe, 1024 - 100)]
    public void FaithfulBudgets(string family, Verdict v, int expected)
    {
        Assert.That(SafeCoDeOptions.For(SafeCoDePreset.Faithful).Budget(family, v, 100), Is.EqualTo(expected));
        Assert.That(SafeCoDeOptions.For(SafeCoDePreset.Paper).Budget(family, v, 100), Is.EqualTo(512), "paper: uniform");
        Assert.That((SafeCoDeOptions.For(SafeCoDePreset.Faithful) with { MaxNewTokens = 7 }).Budget(family, v, 100), Is.EqualTo(7));
    }

    [Test]
    public void PresetsDifferExactlyWhereTheyShould()
    {
        var f = SafeCoDeOptions.For(SafeCoDePreset.Faithful);
        var p = SafeCoDeOptions.For(SafeCoDePreset.Paper);
        var differing = typeof(SafeCoDeOptions).GetProperties().Where(pr => pr.Name != "EqualityContract" && !Equals(pr.GetValue(f), pr.GetValue(p))).Select(pr => pr.Name).Order().ToArray();
        Assert.That(differing, Is.EqualTo(new[] { "CorruptionRollback", "HalveAlphaOnSafe", "Preset", "Unsafe", "UnsafeNeedsTwoSteps" }));
        Assert.That(((VcdOptions)DecodingMethods.Defaults("vcd")).Alpha, Is.EqualTo(1.0));
    }
}
