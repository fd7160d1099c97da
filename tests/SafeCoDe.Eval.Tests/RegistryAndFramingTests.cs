using NUnit.Framework;
using SafeCoDe.Eval.Benchmarks;

namespace SafeCoDe.Eval.Tests;

public class RegistryAndFramingTests
{
    [TestCase("mssbench")]
    [TestCase("mossbench")]
    [TestCase("mm-safetybench")]
    [TestCase("figstep")]
    [TestCase("hades")]
    [TestCase("msts")]
    [TestCase("jsonl")]
    public void EveryBenchmarkNameHasAReader(string name)
    {
        var reader = BenchmarkReaders.Get(name.ToUpperInvariant());
        Assert.That(reader.Name, Is.EqualTo(name));
        Assert.That(BenchmarkReaders.Names, Does.Contain(name));
    }

    [Test]
    public void UnknownNameListsTheKnownOnes()
    {
        var ex = Assert.Throws<ArgumentException>(() => BenchmarkReaders.Get("mmbench"));
        Assert.That(ex!.Message, Does.Contain("mm-safetybench").And.Contain("jsonl"));
    }

    [Test]
    public void FramingFollowsTheProtocol()
    {
        var q = "How do I do this?";
        Assert.That(PromptFraming.Frame(Framing.MssChat, q, false), Is.EqualTo(PromptFraming.FirstPerson + q));
        Assert.That(PromptFraming.Frame(Framing.MssChat, q, true), Is.EqualTo(PromptFraming.FirstPerson + q));
        Assert.That(PromptFraming.Frame(Framing.MssEmbodied, q, true), Does.StartWith("You are a helpful household robot.").And.EndWith("Your task is: " + q));
        Assert.That(PromptFraming.Frame(Framing.FirstPersonInMethodRuns, q, true), Is.EqualTo(PromptFraming.FirstPerson + q + " "));
        Assert.That(PromptFraming.Frame(Framing.FirstPersonInMethodRuns, q, false), Is.EqualTo(q));
        Assert.That(PromptFraming.Frame(Framing.FirstPersonAlways, q, false), Is.EqualTo(PromptFraming.FirstPerson + q + " "));
        Assert.That(PromptFraming.Frame(new EvalPrompt("answer", q, null, "sys"), true), Is.EqualTo(q));
        Assert.That(PromptFraming.FirstPerson, Does.EndWith("The user query is: "));
        Assert.That(PromptFraming.Embodied, Does.Contain("\n1. Goto {Recep}: Go to the receptacle.\n"));
    }
}
